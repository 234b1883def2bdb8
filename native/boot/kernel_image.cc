#include "boot/kernel_image.h"

#include "core/layout.h"
#include "util/file.h"

#include <elf.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace hyve::boot {

namespace {

constexpr uint64_t kMaxKernelFileBytes = 1 * layout::GiB;
// xloadflags, which says whether the 64-bit entry exists, arrived with protocol 2.12.
constexpr uint16_t kMinBootProtocol = 0x020c;
constexpr size_t kSectorBytes = 512;
constexpr size_t kMaxElfSegments = 64;

std::string hex(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

[[noreturn]] void badKernel(const std::string& name, const std::string& what) {
  throw Error(ErrorCode::BadKernel, name + ": " + what);
}

template <typename T>
T readAt(std::span<const uint8_t> data, size_t offset) {
  T value;
  std::memcpy(&value, data.data() + offset, sizeof(T));
  return value;
}

// True if [offset, offset+length) lies inside a buffer of `size` bytes, without overflow.
bool fits(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

std::optional<uint32_t> findPvhEntry(std::span<const uint8_t> notes) {
  size_t pos = 0;
  while (fits(pos, sizeof(Elf64_Nhdr), notes.size())) {
    auto note = readAt<Elf64_Nhdr>(notes, pos);
    size_t nameAt = pos + sizeof(Elf64_Nhdr);
    uint64_t nameSpan = (uint64_t(note.n_namesz) + 3) & ~uint64_t(3);
    uint64_t descSpan = (uint64_t(note.n_descsz) + 3) & ~uint64_t(3);
    if (!fits(nameAt, nameSpan, notes.size()) || !fits(nameAt + nameSpan, descSpan, notes.size())) break;
    size_t descAt = nameAt + nameSpan;
    bool isXen = note.n_namesz == 4 && std::memcmp(notes.data() + nameAt, "Xen", 4) == 0;
    if (isXen && note.n_type == kXenElfnotePhys32Entry && (note.n_descsz == 4 || note.n_descsz == 8)) {
      // Linux emits it as a pointer-sized value; the entry itself is 32-bit by definition.
      uint64_t entry = note.n_descsz == 4 ? readAt<uint32_t>(notes, descAt) : readAt<uint64_t>(notes, descAt);
      if (entry <= UINT32_MAX) return static_cast<uint32_t>(entry);
    }
    pos = descAt + descSpan;
  }
  return std::nullopt;
}

}  // namespace

bool looksLikeElf(std::span<const uint8_t> image) {
  return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

ElfKernel parseElfKernel(std::span<const uint8_t> image, const std::string& name) {
  if (image.size() < sizeof(Elf64_Ehdr) || !looksLikeElf(image)) badKernel(name, "not an ELF file");
  auto header = readAt<Elf64_Ehdr>(image, 0);
  if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB ||
      header.e_machine != EM_X86_64) {
    badKernel(name, "ELF file is not a little-endian ELF64 x86-64 image");
  }
  if (header.e_type != ET_EXEC) badKernel(name, "ELF file is not an executable (e_type " + std::to_string(header.e_type) + ")");
  if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0 || header.e_phnum > kMaxElfSegments ||
      !fits(header.e_phoff, uint64_t(header.e_phnum) * sizeof(Elf64_Phdr), image.size())) {
    badKernel(name, "ELF program headers are missing or lie outside the file");
  }

  ElfKernel kernel{};
  kernel.physicalStart = UINT64_MAX;
  std::optional<uint64_t> entry;
  for (size_t i = 0; i < header.e_phnum; ++i) {
    auto ph = readAt<Elf64_Phdr>(image, header.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_NOTE && fits(ph.p_offset, ph.p_filesz, image.size()) && !kernel.pvhEntry) {
      kernel.pvhEntry = findPvhEntry(image.subspan(ph.p_offset, ph.p_filesz));
    }
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    std::string segment = "ELF segment " + std::to_string(i);
    if (ph.p_filesz > ph.p_memsz || !fits(ph.p_offset, ph.p_filesz, image.size())) {
      badKernel(name, segment + " lies outside the file");
    }
    if (ph.p_paddr > UINT64_MAX - ph.p_memsz) badKernel(name, segment + " wraps around the address space");
    if (ph.p_paddr < layout::kHighRamStart) {
      badKernel(name, segment + " at " + hex(ph.p_paddr) + " overlaps the firmware and boot area below 1 MiB");
    }
    kernel.segments.push_back({ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_paddr});
    kernel.physicalStart = std::min(kernel.physicalStart, ph.p_paddr);
    kernel.physicalEnd = std::max(kernel.physicalEnd, ph.p_paddr + ph.p_memsz);
    // x86 vmlinux has a physical e_entry; other linkers use the virtual one. Accept both.
    if (header.e_entry >= ph.p_vaddr && header.e_entry - ph.p_vaddr < ph.p_memsz) {
      entry = header.e_entry - ph.p_vaddr + ph.p_paddr;
    } else if (!entry && header.e_entry >= ph.p_paddr && header.e_entry - ph.p_paddr < ph.p_memsz) {
      entry = header.e_entry;
    }
  }
  if (kernel.segments.empty()) badKernel(name, "ELF file has no loadable segments");
  if (!entry) badKernel(name, "ELF entry point " + hex(header.e_entry) + " is outside every loadable segment");
  kernel.entry = *entry;
  return kernel;
}

std::optional<BzImageInfo> parseBzImage(std::span<const uint8_t> file, const std::string& name) {
  constexpr size_t kJumpOffset = 0x200;
  constexpr size_t kMagicOffset = 0x202;
  if (file.size() < kMagicOffset + 4 || readAt<uint32_t>(file, kMagicOffset) != kSetupHeaderMagic) return std::nullopt;

  BzImageInfo info{};
  // The header ends where the short jump at 0x200 lands: 0x202 + its displacement.
  size_t headerEnd = kMagicOffset + file[kJumpOffset + 1];
  info.headerBytes = std::min(headerEnd - kSetupHeaderOffset, sizeof(SetupHeader));
  if (headerEnd > file.size()) badKernel(name, "bzImage setup header is cut off (file is " + std::to_string(file.size()) + " bytes)");
  std::memcpy(&info.header, file.data() + kSetupHeaderOffset, info.headerBytes);
  const SetupHeader& h = info.header;

  if (h.version < kMinBootProtocol) {
    char version[16];
    std::snprintf(version, sizeof version, "%u.%02u", h.version >> 8, h.version & 0xff);
    badKernel(name, std::string("bzImage uses boot protocol ") + version +
                        ", too old for the 64-bit entry (need 2.12, Linux 3.8 or newer)");
  }
  if (!(h.xloadflags & kXlfKernel64)) badKernel(name, "bzImage is a 32-bit kernel (no 64-bit entry point in xloadflags)");

  size_t setupSectors = h.setupSects == 0 ? 4 : h.setupSects;
  info.protectedModeOffset = (setupSectors + 1) * kSectorBytes;
  if (info.protectedModeOffset >= file.size()) {
    badKernel(name, "bzImage is truncated: its " + std::to_string(setupSectors) + " setup sectors reach past the end of the " +
                        std::to_string(file.size()) + "-byte file");
  }
  uint64_t protectedModeBytes = uint64_t(h.syssize) * 16;
  if (!fits(info.protectedModeOffset, protectedModeBytes, file.size())) {
    badKernel(name, "bzImage is truncated: the kernel needs " + std::to_string(info.protectedModeOffset + protectedModeBytes) +
                        " bytes but the file has " + std::to_string(file.size()));
  }
  info.payloadOffset = info.protectedModeOffset + h.payloadOffset;
  info.payloadBytes = h.payloadLength;
  if (!fits(info.payloadOffset, info.payloadBytes, file.size())) {
    badKernel(name, "bzImage is truncated: its compressed payload (" + std::to_string(info.payloadBytes) +
                        " bytes at offset " + std::to_string(info.payloadOffset) + ") extends past the end of the " +
                        std::to_string(file.size()) + "-byte file");
  }
  return info;
}

const char* kernelPathName(KernelPath path) {
  switch (path) {
    case KernelPath::HostDecompressed: return "host-decompressed";
    case KernelPath::GuestDecompressor: return "guest-decompressor";
    case KernelPath::Elf: return "elf";
  }
  return "elf";
}

namespace {

// Unpacks a bzImage's payload into kernel.vmlinux, or records why the guest must do it.
void unpackBzImage(KernelImage& kernel, const std::string& name, uint64_t limit) {
  auto payload = std::span<const uint8_t>(kernel.file).subspan(kernel.bzImage->payloadOffset, kernel.bzImage->payloadBytes);
  kernel.compression = detectCompression(payload);
  kernel.path = KernelPath::GuestDecompressor;
  if (kernel.compression == Compression::None) {
    kernel.fallbackReason = "payload has no recognised compression magic";
    return;
  }
  if (!canDecompress(kernel.compression)) {
    kernel.fallbackReason = std::string("the host has no ") + compressionName(kernel.compression) + " decoder";
    return;
  }
  // Most formats are followed by the uncompressed size (le32); gzip carries it inside. It
  // is only checked afterwards: nothing is allocated on a file's say-so.
  uint32_t trailer = payload.size() >= 4 ? readAt<uint32_t>(payload, payload.size() - 4) : 0;
  auto started = std::chrono::steady_clock::now();
  size_t consumed = 0;
  try {
    kernel.vmlinux = decodeBuffer(limit);
    consumed = decodeStream(kernel.compression, payload, kernel.vmlinux, limit);
  } catch (const DecompressError& e) {
    badKernel(name, std::string("bzImage payload cannot be decompressed: ") + e.what());
  }
  kernel.decompressMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (consumed + 4 == payload.size() && trailer != static_cast<uint32_t>(kernel.vmlinux.size())) {
    badKernel(name, "bzImage payload decompressed to " + std::to_string(kernel.vmlinux.size()) +
                        " bytes but the image records " + std::to_string(trailer));
  }
  try {
    kernel.elf = parseElfKernel(kernel.vmlinux, name);
    kernel.path = KernelPath::HostDecompressed;
  } catch (const Error& e) {
    kernel.fallbackReason = std::string("decompressed payload is not a loadable vmlinux (") + e.what() + ")";
    kernel.vmlinux.reset();
  }
}

}  // namespace

KernelImage openKernel(const std::string& path, uint64_t limit) {
  KernelImage kernel;
  kernel.file = readRegularFile(path, "kernel", ErrorCode::BadKernel, kMaxKernelFileBytes);
  kernel.bzImage = parseBzImage(kernel.file, path);
  if (kernel.bzImage) {
    kernel.format = "bzImage";
    unpackBzImage(kernel, path, limit);
    return kernel;
  }
  if (!looksLikeElf(kernel.file)) {
    badKernel(path, "not a Linux kernel image: no bzImage setup header and not an ELF64 x86-64 file");
  }
  kernel.format = "vmlinux";
  kernel.path = KernelPath::Elf;
  kernel.elf = parseElfKernel(kernel.file, path);
  return kernel;
}

}  // namespace hyve::boot
