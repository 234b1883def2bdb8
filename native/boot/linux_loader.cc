#include "boot/linux_loader.h"

#include "boot/boot_params.h"
#include "boot/e820.h"
#include "boot/initrd.h"
#include "boot/kernel_image.h"
#include "core/layout.h"
#include "util/error.h"

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

namespace hyve {

namespace {

using namespace boot;

// The boot structures below 1 MiB must not overlap each other.
static_assert(layout::kGdt + 5 * 8 <= layout::kPvhStartInfo);
static_assert(layout::kPvhStartInfo + 0x1000 <= layout::kBootParams);
static_assert(layout::kBootParams + sizeof(BootParams) < layout::kBootStack && layout::kBootStack < layout::kPml4);
static_assert(layout::kCmdline + layout::kCmdlineMax <= layout::kEbdaStart);

constexpr uint64_t kPageBytes = 4096;
constexpr uint32_t kDefaultInitrdAddrMax = 0x7fffffff;
constexpr size_t kVmlinuxCmdlineMax = 2047;  // x86 COMMAND_LINE_SIZE (2048) minus the NUL
constexpr size_t kPre206CmdlineMax = 255;
constexpr uint16_t kSynthesisedProtocol = 0x020f;
constexpr uint64_t kStartup64Offset = 0x200;  // 64-bit entry, from the protected-mode code start
constexpr uint16_t kHeapEndPtr = 0xfe00;
// Where hvm_start_info's companions go, inside its page.
constexpr uint64_t kPvhModlist = layout::kPvhStartInfo + 0x40;
constexpr uint64_t kPvhMemmap = layout::kPvhStartInfo + 0x80;
constexpr size_t kPvhMemmapMax = (0x1000 - 0x80) / sizeof(HvmMemmapEntry);

std::string hex(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

std::string mib(uint64_t bytes) { return std::to_string((bytes + layout::MiB - 1) / layout::MiB); }
uint64_t alignUp(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }
uint64_t alignDown(uint64_t value, uint64_t alignment) { return value / alignment * alignment; }

// Refuses [start, end) unless it is guest RAM, saying how much memory would make it fit.
std::span<uint8_t> requireRam(const GuestMemory& memory, const std::string& what, uint64_t start, uint64_t end) {
  auto span = memory.slice(start, end - start);
  if (span.data() != nullptr && span.size() == end - start) return span;
  if (end <= layout::kPciHoleStart) {
    throw Error(ErrorCode::BadConfig, what + " needs guest RAM up to " + hex(end) + ": give the VM at least " + mib(end) +
                                          " MiB (it has " + mib(memory.totalBytes()) + " MiB)");
  }
  throw Error(ErrorCode::BadKernel, what + " occupies [" + hex(start) + ", " + hex(end) +
                                        "), which is not RAM (the 32-bit PCI hole starts at " + hex(layout::kPciHoleStart) + ")");
}

struct PlacedKernel {
  uint64_t start, end, entry;
};

PlacedKernel loadElfKernel(const GuestMemory& memory, const KernelImage& kernel, const std::string& name) {
  const ElfKernel& elf = *kernel.elf;
  uint64_t end = elf.physicalEnd;
  // The decompressed kernel's early code uses up to init_size from its start (page tables, brk).
  if (kernel.bzImage) end = std::max(end, elf.physicalStart + kernel.bzImage->header.initSize);
  requireRam(memory, name, elf.physicalStart, end);
  std::span<const uint8_t> image = kernel.elfBytes();
  for (const auto& segment : elf.segments) {
    auto destination = requireRam(memory, name, segment.physicalAddress, segment.physicalAddress + segment.memoryBytes);
    std::memcpy(destination.data(), image.data() + segment.fileOffset, segment.fileBytes);
    std::memset(destination.data() + segment.fileBytes, 0, segment.memoryBytes - segment.fileBytes);
  }
  return {elf.physicalStart, end, elf.entry};
}

// Plain boot protocol: the protected-mode code goes where the kernel wants to run, and
// decompresses itself in place (or, if not relocatable, moves to pref_address).
PlacedKernel loadSelfDecompressing(const GuestMemory& memory, const KernelImage& kernel, const std::string& name) {
  const BzImageInfo& bz = *kernel.bzImage;
  const SetupHeader& h = bz.header;
  uint64_t preferred = h.prefAddress >= layout::kHighRamStart ? h.prefAddress : layout::kKernelLoad;
  uint64_t alignment = std::has_single_bit(h.kernelAlignment) ? h.kernelAlignment : 2 * layout::MiB;
  auto code = std::span<const uint8_t>(kernel.file).subspan(bz.protectedModeOffset);
  // pref_address comes from the file: aligning it, or adding the code or init_size to it,
  // must not wrap past 2^64 (that loaded the kernel at guest-physical 0). The ELF path
  // refuses such segments the same way.
  uint64_t span = std::max<uint64_t>(code.size(), h.initSize);
  if (preferred > UINT64_MAX - (alignment - 1) - span) {
    throw Error(ErrorCode::BadKernel, name + ": bzImage pref_address " + hex(h.prefAddress) + " with its " + std::to_string(span) +
                                          " bytes wraps around the address space");
  }
  uint64_t load = h.relocatableKernel ? alignUp(preferred, alignment) : layout::kHighRamStart;
  uint64_t runtime = h.relocatableKernel ? load : preferred;
  uint64_t start = std::min(load, runtime);
  uint64_t end = std::max(load + code.size(), runtime + h.initSize);
  requireRam(memory, name, start, end);
  std::memcpy(requireRam(memory, name, load, load + code.size()).data(), code.data(), code.size());
  return {start, end, load + kStartup64Offset};
}

size_t cmdlineLimit(const KernelImage& kernel) {
  size_t limit = kVmlinuxCmdlineMax;
  if (kernel.bzImage) limit = kernel.bzImage->header.version >= 0x0206 ? kernel.bzImage->header.cmdlineSize : kPre206CmdlineMax;
  return std::min<size_t>(limit, layout::kCmdlineMax - 1);
}

SetupHeader synthesisedHeader() {
  SetupHeader h{};
  h.bootFlag = kBootFlag;
  h.header = kSetupHeaderMagic;
  h.version = kSynthesisedProtocol;
  h.loadflags = kLoadedHigh;
  h.initrdAddrMax = kDefaultInitrdAddrMax;
  h.kernelAlignment = 2 * layout::MiB;
  h.xloadflags = kXlfKernel64;
  h.cmdlineSize = kVmlinuxCmdlineMax;
  return h;
}

void writeZeroPage(const GuestMemory& memory, const KernelImage& kernel, uint64_t codeLoad, const BootReport& report,
                   const std::vector<E820Entry>& e820, uint64_t rsdp) {
  auto params = std::make_unique<BootParams>();  // value-initialised: all zero
  params->hdr = kernel.bzImage ? kernel.bzImage->header : synthesisedHeader();
  SetupHeader& h = params->hdr;
  h.typeOfLoader = kLoaderTypeUndefined;
  h.loadflags = static_cast<uint8_t>((h.loadflags | kLoadedHigh | kCanUseHeap) & ~kKaslrFlag);
  h.heapEndPtr = kHeapEndPtr;
  h.setupData = 0;
  if (codeLoad != 0) h.code32Start = static_cast<uint32_t>(codeLoad);
  h.cmdLinePtr = static_cast<uint32_t>(layout::kCmdline);
  params->extCmdLinePtr = static_cast<uint32_t>(layout::kCmdline >> 32);
  h.ramdiskImage = static_cast<uint32_t>(report.initrdAddress);
  params->extRamdiskImage = static_cast<uint32_t>(report.initrdAddress >> 32);
  h.ramdiskSize = static_cast<uint32_t>(report.initrdSize);
  params->extRamdiskSize = static_cast<uint32_t>(report.initrdSize >> 32);
  params->acpiRsdpAddr = rsdp;
  if (e820.size() > kZeroPageE820Max) throw Error(ErrorCode::Internal, "e820 map has too many entries for the zero page");
  for (size_t i = 0; i < e820.size(); ++i) {
    params->e820Table[i] = {e820[i].address, e820[i].size, static_cast<uint32_t>(e820[i].type)};
  }
  params->e820Entries = static_cast<uint8_t>(e820.size());
  if (!memory.writeObject(layout::kBootParams, *params)) throw Error(ErrorCode::Internal, "zero page does not fit in guest RAM");
}

void writePvhStartInfo(const GuestMemory& memory, const BootReport& report, const std::vector<E820Entry>& e820,
                       uint64_t rsdp) {
  HvmStartInfo info{};
  info.magic = kHvmStartMagic;
  info.version = 1;
  info.cmdlinePaddr = layout::kCmdline;
  info.rsdpPaddr = rsdp;
  if (report.initrdSize != 0) {
    info.nrModules = 1;
    info.modlistPaddr = kPvhModlist;
    memory.writeObject(kPvhModlist, HvmModlistEntry{report.initrdAddress, report.initrdSize, 0, 0});
  }
  if (e820.size() > kPvhMemmapMax) throw Error(ErrorCode::Internal, "e820 map has too many entries for the PVH start info");
  for (size_t i = 0; i < e820.size(); ++i) {
    memory.writeObject(kPvhMemmap + i * sizeof(HvmMemmapEntry),
                       HvmMemmapEntry{e820[i].address, e820[i].size, static_cast<uint32_t>(e820[i].type), 0});
  }
  info.memmapPaddr = kPvhMemmap;
  info.memmapEntries = static_cast<uint32_t>(e820.size());
  if (!memory.writeObject(layout::kPvhStartInfo, info)) throw Error(ErrorCode::Internal, "PVH start info does not fit in guest RAM");
}

// Highest page-aligned spot below the kernel's initrd ceiling and the end of low RAM.
uint64_t placeInitrd(const GuestMemory& memory, const KernelImage& kernel, uint64_t kernelEnd, uint64_t size,
                     const std::string& name) {
  uint64_t addrMax = kernel.bzImage ? kernel.bzImage->header.initrdAddrMax : kDefaultInitrdAddrMax;
  uint64_t ceiling = std::min<uint64_t>(addrMax + 1, memory.lowRamEnd());
  uint64_t floor = alignUp(kernelEnd, kPageBytes);
  if (size > ceiling || alignDown(ceiling - size, kPageBytes) < floor) {
    uint64_t needed = floor + alignUp(size, kPageBytes);
    std::string reason = needed > addrMax + 1 ? " and the kernel accepts an initrd only below " + hex(addrMax + 1)
                                              : ": give the VM at least " + mib(needed) + " MiB";
    throw Error(ErrorCode::BadConfig, "initrd " + name + " (" + mib(size) + " MiB) does not fit between the kernel's end at " +
                                          hex(floor) + " and the top of low RAM at " + hex(memory.lowRamEnd()) + reason);
  }
  return alignDown(ceiling - size, kPageBytes);
}

// The most a kernel payload or an initrd may unpack to: what the guest's RAM could hold
// (anything larger cannot be loaded anyway), and never past the decompression-bomb cap.
uint64_t unpackLimit(const GuestMemory& memory) { return std::min<uint64_t>(memory.totalBytes(), kMaxDecompressedBytes); }

}  // namespace

LoadedLinux loadLinux(const GuestMemory& memory, const BootConfig& config) {
  KernelImage kernel = openKernel(config.kernelPath, unpackLimit(memory));
  LoadedLinux loaded;
  BootReport& report = loaded.report;
  report.kernelFormat = kernel.format;
  report.compression = compressionName(kernel.compression);
  report.path = kernelPathName(kernel.path);
  report.fallbackReason = kernel.fallbackReason;
  report.decompressMs = kernel.decompressMs;
  report.hasPvhNote = kernel.elf && kernel.elf->pvhEntry;
  report.pvhEntry = report.hasPvhNote ? *kernel.elf->pvhEntry : 0;

  size_t limit = cmdlineLimit(kernel);
  if (config.cmdline.size() > limit) {
    throw Error(ErrorCode::BadConfig, "kernel command line is " + std::to_string(config.cmdline.size()) +
                                          " bytes; " + config.kernelPath + " accepts at most " + std::to_string(limit));
  }
  if (config.cmdline.find('\0') != std::string::npos) {
    throw Error(ErrorCode::BadConfig, "kernel command line contains a NUL byte");
  }
  bool pvh = config.protocol == BootProtocol::Pvh;
  if (pvh && !report.hasPvhNote) {
    throw Error(ErrorCode::BadConfig, "PVH boot requested, but " + config.kernelPath +
                                          (kernel.path == KernelPath::GuestDecompressor
                                               ? " could not be unpacked on the host (" + kernel.fallbackReason + ")"
                                               : " has no Xen PVH entry note (CONFIG_PVH)"));
  }

  PlacedKernel placed = kernel.path == KernelPath::GuestDecompressor ? loadSelfDecompressing(memory, kernel, config.kernelPath)
                                                                     : loadElfKernel(memory, kernel, config.kernelPath);
  report.kernelStart = placed.start;
  report.kernelEnd = placed.end;
  report.entryAddress = pvh ? report.pvhEntry : placed.entry;
  report.protocol = pvh ? "pvh" : "linux64";
  // The loaded bytes are in guest RAM now; free them before reading a possibly large initrd.
  kernel.vmlinux.reset();
  std::vector<uint8_t>().swap(kernel.file);

  if (!config.initrdPath.empty()) {
    // Capped at what the guest's RAM could hold: an initrd that still does not fit gets
    // placeInitrd's message.
    InitrdImage initrd = loadInitrd(config.initrdPath, unpackLimit(memory));
    report.initrdFileBytes = initrd.fileBytes;
    report.initrdCompression = initrd.compression;
    report.initrdDecompressMs = initrd.decompressMs;
    std::span<const uint8_t> data = initrd.data();
    report.initrdSize = data.size();
    if (!data.empty()) {
      report.initrdAddress = placeInitrd(memory, kernel, placed.end, data.size(), config.initrdPath);
      if (!memory.write(report.initrdAddress, data.data(), data.size())) {
        throw Error(ErrorCode::Internal, "initrd placement outside guest RAM");
      }
    }
  }

  std::vector<char> cmdline(config.cmdline.begin(), config.cmdline.end());
  cmdline.push_back('\0');
  if (!memory.write(layout::kCmdline, cmdline.data(), cmdline.size())) {
    throw Error(ErrorCode::Internal, "command line area is not guest RAM");
  }

  std::vector<E820Entry> e820 = buildE820Map(memory);
  uint64_t codeLoad = kernel.path == KernelPath::GuestDecompressor ? placed.entry - kStartup64Offset : 0;
  writeZeroPage(memory, kernel, codeLoad, report, e820, config.acpiRsdpAddress);
  if (pvh) writePvhStartInfo(memory, report, e820, config.acpiRsdpAddress);
  writeBootTables(memory);
  loaded.cpu = pvh ? pvhEntry(report.pvhEntry) : longModeEntry(placed.entry);
  return loaded;
}

KernelInfo inspectKernel(const std::string& path) {
  KernelImage kernel = openKernel(path);
  KernelInfo info;
  info.format = kernel.format;
  info.compression = compressionName(kernel.compression);
  info.payloadBytes = kernel.bzImage ? kernel.bzImage->payloadBytes : kernel.file.size();
  info.decompressedBytes = kernel.path == KernelPath::HostDecompressed ? kernel.vmlinux.size()
                           : kernel.path == KernelPath::Elf           ? kernel.file.size()
                                                                      : 0;
  info.decompressMs = kernel.decompressMs;
  return info;
}

}  // namespace hyve
