// Reading and validating a Linux kernel file without touching guest memory: bzImage
// (setup header, payload, host decompression) and vmlinux ELF64 (load segments, entry
// points). Every offset taken from the file is bounds-checked; the file is untrusted.
#pragma once

#include "boot/boot_params.h"
#include "boot/decompress.h"
#include "util/error.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hyve::boot {

struct ElfLoadSegment {
  uint64_t fileOffset;
  uint64_t fileBytes;
  uint64_t memoryBytes;  // >= fileBytes; the rest is zero-filled (bss)
  uint64_t physicalAddress;
};

struct ElfKernel {
  std::vector<ElfLoadSegment> segments;
  uint64_t entry;                    // physical address of the 64-bit entry
  std::optional<uint32_t> pvhEntry;  // XEN_ELFNOTE_PHYS32_ENTRY, if the image has one
  uint64_t physicalStart;            // lowest byte any segment occupies
  uint64_t physicalEnd;              // one past the highest (including bss)
};

bool looksLikeElf(std::span<const uint8_t> image);

// Throws Error(BadKernel) prefixed with `name` if `image` is not a loadable x86-64 ELF.
ElfKernel parseElfKernel(std::span<const uint8_t> image, const std::string& name);

struct BzImageInfo {
  SetupHeader header;             // the file's header; fields past its end are zero
  size_t headerBytes;             // bytes of header the file carries, from offset 0x1f1
  size_t protectedModeOffset;     // file offset of the 32/64-bit code: (setup_sects + 1) * 512
  size_t payloadOffset;           // file offset of the compressed vmlinux
  size_t payloadBytes;
};

// nullopt if the file has no "HdrS" setup header. Throws Error(BadKernel) if it has one but
// is truncated, too old for the 64-bit boot protocol, or 32-bit only.
std::optional<BzImageInfo> parseBzImage(std::span<const uint8_t> file, const std::string& name);

enum class KernelPath { HostDecompressed, GuestDecompressor, Elf };
const char* kernelPathName(KernelPath path);  // "host-decompressed", "guest-decompressor", "elf"

// A kernel file read and unpacked as far as the host can.
struct KernelImage {
  std::string format;  // "bzImage" or "vmlinux"
  Compression compression = Compression::None;
  KernelPath path = KernelPath::Elf;
  std::string fallbackReason;      // why a bzImage is left to its own decompressor
  std::vector<uint8_t> file;
  ReservedBuffer vmlinux;          // the decompressed payload, on the host-decompressed path
  std::optional<BzImageInfo> bzImage;
  std::optional<ElfKernel> elf;    // describes elfBytes(), unless the guest decompresses
  double decompressMs = 0;

  std::span<const uint8_t> elfBytes() const {
    return path == KernelPath::HostDecompressed ? vmlinux.bytes() : std::span<const uint8_t>(file);
  }
};

// Throws Error(BadKernel) for a missing, unreadable, unrecognised, truncated or corrupt file,
// or one whose payload unpacks to more than `limit` bytes (the loader passes the guest's RAM).
KernelImage openKernel(const std::string& path, uint64_t limit = kMaxDecompressedBytes);

}  // namespace hyve::boot
