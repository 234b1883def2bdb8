// Reading an initrd and unpacking its compressed parts on the host, so the guest gets plain
// cpio. Linux accepts an initramfs made of several pieces back to back: uncompressed newc
// cpio archives (e.g. early microcode), compressed archives in any format it knows, and
// zero padding between them; this walks the same sequence.
#pragma once

#include "boot/decompress.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hyve::boot {

struct InitrdImage {
  std::vector<uint8_t> original;  // the file as read, when it is passed through unchanged
  ReservedBuffer unpacked;        // the unpacked cpio, when any part was compressed
  bool isUnpacked = false;
  std::string compression;     // "none", a format name, or several joined by '+' ("gzip+zstd")
  uint64_t fileBytes = 0;
  double decompressMs = 0;

  // What the guest receives.
  std::span<const uint8_t> data() const { return isUnpacked ? unpacked.bytes() : std::span<const uint8_t>(original); }
};

// Unpacks `file` (already read). Data with no compressed part, or that is not an
// initramfs at all (an old-style filesystem image), is passed through unchanged, as is an
// initramfs containing a format the host cannot decode (lzo: the guest kernel may).
// Throws Error(BadInitrd) naming `name` for corrupt compressed data or junk between pieces.
InitrdImage unpackInitrd(std::vector<uint8_t> file, const std::string& name, uint64_t limit = kMaxDecompressedBytes);

// Reads `path` and unpacks it. Throws Error(BadInitrd) if it cannot be read, or if the
// file or what it unpacks to is larger than `limit` (the loader passes the guest's RAM).
InitrdImage loadInitrd(const std::string& path, uint64_t limit = kMaxDecompressedBytes);

}  // namespace hyve::boot
