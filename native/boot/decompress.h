// Host-side decompression of the formats Linux uses for its kernel payload and initramfs.
// The formats are recognised by their leading magic bytes, never by file names.
#pragma once

#include "core/layout.h"

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

// Refuses decompression bombs: more output than this is an error.
constexpr uint64_t kMaxDecompressedBytes = 1 * layout::GiB;

// Corrupt, truncated or oversized input. The message names the format; callers add the
// file name and turn it into the right hyve::Error code.
class DecompressError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Decodes the single stream of `format` at the start of `input`, appending its output to
// `out` (which may already hold data; `limit` caps its total size). Returns how many input
// bytes the stream occupied, so a caller can look at what follows it. `sizeHint` (0 = none)
// pre-sizes the output. Throws DecompressError.
size_t decodeStream(Compression format, std::span<const uint8_t> input, std::vector<uint8_t>& out,
                    uint64_t limit = kMaxDecompressedBytes, uint64_t sizeHint = 0);

}  // namespace hyve::boot
