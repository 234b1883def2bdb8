#include "boot/initrd.h"

#include "boot/kernel_image.h"
#include "util/error.h"
#include "util/file.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

namespace hyve::boot {

namespace {

constexpr size_t kCpioHeaderBytes = 110;  // "070701" + 13 fields of 8 hex digits
constexpr size_t kCpioFileSizeField = 6;
constexpr size_t kCpioNameSizeField = 11;

bool fits(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }
uint64_t align4(uint64_t value) { return (value + 3) & ~uint64_t(3); }

bool isCpioHeader(std::span<const uint8_t> data, size_t pos) {
  return fits(pos, 6, data.size()) && std::memcmp(data.data() + pos, "07070", 5) == 0 &&
         (data[pos + 5] == '1' || data[pos + 5] == '2');
}

std::optional<uint32_t> cpioField(std::span<const uint8_t> data, size_t header, size_t field) {
  uint32_t value = 0;
  for (size_t i = 0; i < 8; ++i) {
    uint8_t c = data[header + 6 + field * 8 + i];
    uint32_t digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    else return std::nullopt;
    value = value << 4 | digit;
  }
  return value;
}

// Offset just past the newc archive starting at `start` (its "TRAILER!!!" entry and
// padding), or nullopt if the headers are malformed. Padding is relative to each header,
// which the kernel requires to be 4-byte aligned within the initramfs.
std::optional<size_t> cpioArchiveEnd(std::span<const uint8_t> data, size_t start) {
  static constexpr char kTrailer[] = "TRAILER!!!";
  size_t pos = start;
  while (pos < data.size()) {
    if (!isCpioHeader(data, pos) || !fits(pos, kCpioHeaderBytes, data.size())) return std::nullopt;
    auto fileBytes = cpioField(data, pos, kCpioFileSizeField);
    auto nameBytes = cpioField(data, pos, kCpioNameSizeField);
    if (!fileBytes || !nameBytes || !fits(pos + kCpioHeaderBytes, *nameBytes, data.size())) return std::nullopt;
    bool trailer = *nameBytes == sizeof kTrailer && std::memcmp(data.data() + pos + kCpioHeaderBytes, kTrailer, sizeof kTrailer) == 0;
    uint64_t next = pos + align4(kCpioHeaderBytes + *nameBytes) + align4(*fileBytes);
    if (next > data.size()) {
      // The last member may lack its final padding; anything shorter is truncated.
      if (pos + align4(kCpioHeaderBytes + *nameBytes) + *fileBytes > data.size()) return std::nullopt;
      next = data.size();
    }
    pos = static_cast<size_t>(next);
    if (trailer) break;
  }
  return pos;
}

void padTo4(ReservedBuffer& out) { out.appendFill(align4(out.size()) - out.size(), 0); }

}  // namespace

InitrdImage unpackInitrd(std::vector<uint8_t> file, const std::string& name, uint64_t limit) {
  InitrdImage image;
  image.fileBytes = file.size();
  auto passThrough = [&](std::string compression) {
    image.compression = std::move(compression);
    image.original = std::move(file);
    image.unpacked.reset();
    return std::move(image);
  };
  std::span<const uint8_t> data(file);
  // Address space for the limit, memory only for what is written: each piece appends
  // without touching the ones before it, so the cost is linear in the bytes produced.
  ReservedBuffer& out = image.unpacked;
  out = decodeBuffer(limit);
  std::vector<std::string> formats;
  Compression lastFormat = Compression::None;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data[pos] == 0) {
      pos = static_cast<size_t>(std::find_if(data.begin() + pos, data.end(), [](uint8_t b) { return b != 0; }) - data.begin());
      continue;
    }
    Compression format = detectCompression(data.subspan(pos));
    if (format != Compression::None) {
      if (!canDecompress(format)) return passThrough(std::string(compressionName(format)) + " (left to the guest)");
      auto started = std::chrono::steady_clock::now();
      try {
        pos += decodeStream(format, data.subspan(pos), out, limit);
      } catch (const DecompressError& e) {
        throw Error(ErrorCode::BadInitrd, name + ": " + e.what() + " (at offset " + std::to_string(pos) + ")");
      }
      image.decompressMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      padTo4(out);
      lastFormat = format;
      if (std::find(formats.begin(), formats.end(), compressionName(format)) == formats.end()) {
        formats.push_back(compressionName(format));
      }
      continue;
    }
    auto end = isCpioHeader(data, pos) ? cpioArchiveEnd(data, pos) : std::nullopt;
    if (!end) {
      // Without anything compressed so far, this may be a filesystem image or an
      // initramfs the guest understands better: hand it over untouched.
      if (formats.empty()) return passThrough("none");
      // Legacy lz4 has no end marker: a cut-off last block looks like trailing data.
      bool afterLz4 = lastFormat == Compression::Lz4Legacy;
      throw Error(ErrorCode::BadInitrd, name + ": unrecognised data at offset " + std::to_string(pos) +
                                            " after the compressed initramfs" +
                                            (afterLz4 ? " (or a truncated lz4 stream)" : ""));
    }
    if (out.size() + (*end - pos) > limit) {
      throw Error(ErrorCode::BadInitrd, name + ": unpacked initramfs exceeds the " + std::to_string(limit / layout::MiB) + " MiB limit");
    }
    out.append(data.subspan(pos, *end - pos));
    padTo4(out);
    lastFormat = Compression::None;
    pos = *end;
  }
  if (formats.empty()) return passThrough("none");
  image.isUnpacked = true;
  for (const auto& format : formats) image.compression += (image.compression.empty() ? "" : "+") + format;
  return image;
}

InitrdImage loadInitrd(const std::string& path, uint64_t limit) {
  return unpackInitrd(readRegularFile(path, "initrd", ErrorCode::BadInitrd, limit), path, limit);
}

}  // namespace hyve::boot
