#include "boot/decompress.h"

#include <bzlib.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

namespace hyve::boot {

namespace {

constexpr uint32_t kLz4LegacyMagic = 0x184c2102;
// The legacy lz4 format has no block-size field; the kernel and the lz4 tool use 8 MiB.
constexpr size_t kLz4LegacyBlockBytes = 8 * layout::MiB;
// zlib and libbz2 count in 32-bit units: feed them at most this much per call.
constexpr size_t kMaxChunk = 1 * layout::GiB;
// Upper bound for the dictionary/window memory a stream may ask for: xz -9 needs 64 MiB,
// zstd --ultra -22 a 128 MiB window. A 118-byte .lzma header asking for a 940 MiB
// dictionary (found by the initrd fuzz target) cost almost a second of allocation under
// the old 1 GiB bound; a few bytes of input must not buy that much host memory.
constexpr uint64_t kDecoderMemoryLimit = 256 * layout::MiB;
constexpr int kZstdWindowLogMax = 28;

bool startsWith(std::span<const uint8_t> data, std::initializer_list<uint8_t> magic) {
  return data.size() >= magic.size() && std::equal(magic.begin(), magic.end(), data.begin());
}

uint32_t readLe32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

[[noreturn]] void fail(Compression format, const std::string& what) {
  throw DecompressError(std::string("corrupt ") + compressionName(format) + " data: " + what);
}

[[noreturn]] void failTruncated(Compression format) {
  throw DecompressError(std::string(compressionName(format)) + " stream is truncated");
}

// The caller's buffer as a decoder sees it: writable space, and the size limit enforced
// as output is committed.
class Output {
 public:
  Output(ReservedBuffer& out, uint64_t limit, Compression format) : out_(out), limit_(limit), format_(format) {}
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  // Writable space after the produced bytes: at least `minimum` bytes. May reach past the
  // limit (by decodeBuffer()'s slack) so that a stream which overshoots is caught by commit().
  std::span<uint8_t> spare(size_t minimum = 1) {
    auto space = out_.spare();
    if (space.size() < minimum) overLimit();
    return space;
  }

  void commit(size_t produced) {
    out_.commit(produced);
    if (out_.size() > limit_) overLimit();
  }

 private:
  [[noreturn]] void overLimit() const {
    throw DecompressError(std::string(compressionName(format_)) + " data expands beyond the " +
                          std::to_string(limit_ / layout::MiB) + " MiB limit");
  }

  ReservedBuffer& out_;
  uint64_t limit_;
  Compression format_;
};

size_t decodeGzip(std::span<const uint8_t> in, Output& out) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw DecompressError("gzip: cannot initialise zlib");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&stream, inflateEnd);
  size_t fed = 0;
  for (;;) {
    if (stream.avail_in == 0 && fed < in.size()) {
      size_t chunk = std::min(in.size() - fed, kMaxChunk);
      stream.next_in = const_cast<Bytef*>(in.data() + fed);
      stream.avail_in = static_cast<uInt>(chunk);
      fed += chunk;
    }
    auto space = out.spare();
    stream.next_out = space.data();
    stream.avail_out = static_cast<uInt>(std::min(space.size(), kMaxChunk));
    uInt before = stream.avail_out;
    int rc = inflate(&stream, Z_NO_FLUSH);
    out.commit(before - stream.avail_out);
    if (rc == Z_STREAM_END) return stream.total_in;
    if (rc == Z_BUF_ERROR && stream.avail_in == 0 && fed == in.size()) failTruncated(Compression::Gzip);
    if (rc != Z_OK && rc != Z_BUF_ERROR) fail(Compression::Gzip, stream.msg ? stream.msg : "inflate error " + std::to_string(rc));
  }
}

std::string lzmaMessage(lzma_ret rc) {
  switch (rc) {
    case LZMA_FORMAT_ERROR: return "bad header";
    case LZMA_OPTIONS_ERROR: return "unsupported options";
    case LZMA_DATA_ERROR: return "data error";
    case LZMA_MEM_ERROR: return "out of memory";
    case LZMA_MEMLIMIT_ERROR: return "needs more than " + std::to_string(kDecoderMemoryLimit / layout::MiB) + " MiB of decoder memory";
    default: return "liblzma error " + std::to_string(rc);
  }
}

size_t decodeLzma(Compression format, std::span<const uint8_t> in, Output& out) {
  lzma_stream stream = LZMA_STREAM_INIT;
  lzma_ret rc = format == Compression::Xz ? lzma_stream_decoder(&stream, kDecoderMemoryLimit, 0)
                                          : lzma_alone_decoder(&stream, kDecoderMemoryLimit);
  if (rc != LZMA_OK) throw DecompressError(std::string(compressionName(format)) + ": cannot initialise liblzma");
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&stream, lzma_end);
  stream.next_in = in.data();
  stream.avail_in = in.size();
  for (;;) {
    auto space = out.spare();
    stream.next_out = space.data();
    stream.avail_out = space.size();
    rc = lzma_code(&stream, LZMA_RUN);
    size_t produced = space.size() - stream.avail_out;
    out.commit(produced);
    if (rc == LZMA_STREAM_END) return stream.total_in;
    if (rc == LZMA_BUF_ERROR || (rc == LZMA_OK && stream.avail_in == 0 && produced == 0)) failTruncated(format);
    if (rc != LZMA_OK) fail(format, lzmaMessage(rc));
  }
}

size_t decodeBzip2(std::span<const uint8_t> in, Output& out) {
  bz_stream stream{};
  if (BZ2_bzDecompressInit(&stream, 0, 0) != BZ_OK) throw DecompressError("bzip2: cannot initialise libbz2");
  std::unique_ptr<bz_stream, int (*)(bz_stream*)> guard(&stream, BZ2_bzDecompressEnd);
  size_t fed = 0;
  for (;;) {
    if (stream.avail_in == 0 && fed < in.size()) {
      size_t chunk = std::min(in.size() - fed, kMaxChunk);
      stream.next_in = reinterpret_cast<char*>(const_cast<uint8_t*>(in.data() + fed));
      stream.avail_in = static_cast<unsigned>(chunk);
      fed += chunk;
    }
    auto space = out.spare();
    stream.next_out = reinterpret_cast<char*>(space.data());
    stream.avail_out = static_cast<unsigned>(std::min(space.size(), kMaxChunk));
    unsigned before = stream.avail_out;
    int rc = BZ2_bzDecompress(&stream);
    size_t produced = before - stream.avail_out;
    out.commit(produced);
    if (rc == BZ_STREAM_END) return uint64_t(stream.total_in_hi32) << 32 | stream.total_in_lo32;
    if (rc != BZ_OK) fail(Compression::Bzip2, rc == BZ_MEM_ERROR ? "out of memory" : "bad block data");
    if (stream.avail_in == 0 && fed == in.size() && produced == 0) failTruncated(Compression::Bzip2);
  }
}

size_t decodeZstd(std::span<const uint8_t> in, Output& out) {
  // Bound the input to exactly one frame so whatever follows it is left for the caller.
  size_t frameBytes = ZSTD_findFrameCompressedSize(in.data(), in.size());
  if (ZSTD_isError(frameBytes)) fail(Compression::Zstd, ZSTD_getErrorName(frameBytes));
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!context) throw DecompressError("zstd: cannot create a decoder");
  ZSTD_DCtx_setParameter(context.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax);
  ZSTD_inBuffer input{in.data(), frameBytes, 0};
  for (;;) {
    auto space = out.spare();
    ZSTD_outBuffer output{space.data(), space.size(), 0};
    size_t rc = ZSTD_decompressStream(context.get(), &output, &input);
    out.commit(output.pos);
    if (ZSTD_isError(rc)) fail(Compression::Zstd, ZSTD_getErrorName(rc));
    if (rc == 0) return frameBytes;
    if (input.pos == input.size && output.pos == 0) failTruncated(Compression::Zstd);
  }
}

// The kernel's lz4 format: the legacy magic, then blocks of [le32 compressed size][data],
// each expanding to at most 8 MiB. A repeated magic starts a new stream; zero padding, a
// size trailer or the start of some other data ends it.
size_t decodeLz4Legacy(std::span<const uint8_t> in, Output& out) {
  size_t pos = 4;
  size_t blocks = 0;
  const size_t maxBlock = static_cast<size_t>(LZ4_compressBound(static_cast<int>(kLz4LegacyBlockBytes)));
  while (in.size() - pos >= 4) {
    uint32_t blockBytes = readLe32(in.data() + pos);
    if (blockBytes == kLz4LegacyMagic) {
      pos += 4;
      continue;
    }
    if (blockBytes == 0 || blockBytes > in.size() - pos - 4) break;
    if (blockBytes > maxBlock) fail(Compression::Lz4Legacy, "block of " + std::to_string(blockBytes) + " bytes exceeds the format's maximum");
    auto space = out.spare(kLz4LegacyBlockBytes);
    int produced = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos + 4),
                                       reinterpret_cast<char*>(space.data()), static_cast<int>(blockBytes),
                                       static_cast<int>(kLz4LegacyBlockBytes));
    if (produced < 0) fail(Compression::Lz4Legacy, "bad block at offset " + std::to_string(pos));
    out.commit(static_cast<size_t>(produced));
    pos += 4 + blockBytes;
    ++blocks;
  }
  if (blocks == 0) failTruncated(Compression::Lz4Legacy);
  return pos;
}

}  // namespace

const char* compressionName(Compression format) {
  switch (format) {
    case Compression::None: return "none";
    case Compression::Gzip: return "gzip";
    case Compression::Bzip2: return "bzip2";
    case Compression::Lzma: return "lzma";
    case Compression::Xz: return "xz";
    case Compression::Lzo: return "lzo";
    case Compression::Lz4Legacy: return "lz4";
    case Compression::Zstd: return "zstd";
  }
  return "none";
}

Compression detectCompression(std::span<const uint8_t> data) {
  if (startsWith(data, {0x1f, 0x8b})) return Compression::Gzip;
  if (startsWith(data, {'B', 'Z', 'h'}) && data.size() > 3 && data[3] >= '1' && data[3] <= '9') return Compression::Bzip2;
  if (startsWith(data, {0x5d, 0x00, 0x00})) return Compression::Lzma;
  if (startsWith(data, {0xfd, '7', 'z', 'X', 'Z', 0x00})) return Compression::Xz;
  if (startsWith(data, {0x89, 'L', 'Z', 'O'})) return Compression::Lzo;
  if (startsWith(data, {0x02, 0x21, 0x4c, 0x18})) return Compression::Lz4Legacy;
  if (startsWith(data, {0x28, 0xb5, 0x2f, 0xfd})) return Compression::Zstd;
  return Compression::None;
}

bool canDecompress(Compression format) { return format != Compression::None && format != Compression::Lzo; }

ReservedBuffer decodeBuffer(uint64_t limit) { return ReservedBuffer(limit + kLz4LegacyBlockBytes + 1); }

size_t decodeStream(Compression format, std::span<const uint8_t> input, ReservedBuffer& out, uint64_t limit) {
  if (detectCompression(input) != format || !canDecompress(format)) {
    throw DecompressError(std::string("no ") + compressionName(format) + " stream to decode");
  }
  if (out.capacity() < limit + kLz4LegacyBlockBytes + 1) throw DecompressError("output buffer smaller than its limit (use decodeBuffer)");
  Output output(out, limit, format);
  switch (format) {
    case Compression::Gzip: return decodeGzip(input, output);
    case Compression::Xz:
    case Compression::Lzma: return decodeLzma(format, input, output);
    case Compression::Bzip2: return decodeBzip2(input, output);
    case Compression::Zstd: return decodeZstd(input, output);
    case Compression::Lz4Legacy: return decodeLz4Legacy(input, output);
    case Compression::None:
    case Compression::Lzo: break;
  }
  throw DecompressError(std::string("no host decoder for ") + compressionName(format));
}

}  // namespace hyve::boot
