// Host-side decompression of the formats Linux uses for its kernel payload and initramfs.
// The formats are recognised by their leading magic bytes, never by file names.
#pragma once

#include "core/layout.h"
#include "util/reserved_buffer.h"

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace hyve::boot {

enum class Compression { None, Gzip, Bzip2, Lzma, Xz, Lzo, Lz4Legacy, Zstd };

// "gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd", or "none".
const char* compressionName(Compression format);

// The format whose magic `data` starts with, or None.
Compression detectCompression(std::span<const uint8_t> data);

// Lzo is recognised (so it can be named) but has no host decoder.
bool canDecompress(Compression format);

// Refuses decompression bombs: more output than this is an error. Callers that know the
// machine cap lower (what the guest's RAM could hold).
constexpr uint64_t kMaxDecompressedBytes = 1 * layout::GiB;

// An empty buffer for decodeStream() output of at most `limit` bytes: address space for the
// limit plus the most a decoder writes past it before the overshoot is noticed (one 8 MiB
// lz4 block). Memory is used only as output is produced, so a bomb stops at the limit
// instead of at a multiple of it.
ReservedBuffer decodeBuffer(uint64_t limit);

// Corrupt, truncated or oversized input. The message names the format; callers add the
// file name and turn it into the right hyve::Error code.
class DecompressError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Decodes the single stream of `format` at the start of `input`, appending its output to
// `out` (from decodeBuffer(); it may already hold data, and `limit` caps its total size).
// Returns how many input bytes the stream occupied, so a caller can look at what follows
// it. The cost is linear in the bytes produced: nothing already in `out` is touched again.
// Throws DecompressError.
size_t decodeStream(Compression format, std::span<const uint8_t> input, ReservedBuffer& out, uint64_t limit);

}  // namespace hyve::boot
