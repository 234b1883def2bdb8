// Loads a Linux kernel, initrd and command line into guest memory the way xhyve's
// `-f kexec,kernel,initrd,cmdline` does, and returns the boot CPU's entry state.
//
// A bzImage is unpacked on the host (its own decompressor never runs) and its vmlinux
// entered at the 64-bit entry; if the host cannot unpack it, the bzImage is loaded per
// the boot protocol and decompresses itself. A plain vmlinux ELF is loaded directly.
#pragma once

#include "boot/cpu_state.h"
#include "core/guest_memory.h"

#include <cstdint>
#include <string>

namespace hyve {

enum class BootProtocol {
  Auto,     // the Linux 64-bit boot protocol
  Linux64,  // same, stated explicitly
  Pvh,      // the ELF's Xen PVH note: 32-bit protected mode, EBX = hvm_start_info
};

struct BootConfig {
  std::string kernelPath;
  std::string initrdPath;  // empty: none
  std::string cmdline;
  BootProtocol protocol = BootProtocol::Auto;
  uint64_t acpiRsdpAddress = 0;  // 0: the kernel scans the BIOS area itself
};

struct BootReport {
  std::string kernelFormat;    // "bzImage" or "vmlinux"
  std::string compression;     // "gzip", "xz", "zstd", "lz4", "bzip2", "lzma", "lzo", or "none"
  std::string path;            // "host-decompressed", "guest-decompressor" or "elf"
  std::string fallbackReason;  // why a bzImage decompresses itself; empty otherwise
  std::string protocol;        // "linux64" or "pvh"
  double decompressMs = 0;
  uint64_t kernelStart = 0;    // guest-physical range reserved for the kernel, incl. bss/init_size
  uint64_t kernelEnd = 0;
  uint64_t entryAddress = 0;
  uint64_t initrdAddress = 0;  // 0 and size 0: no initrd
  uint64_t initrdSize = 0;     // bytes the guest receives (after host decompression)
  uint64_t initrdFileBytes = 0;
  std::string initrdCompression = "none";
  double initrdDecompressMs = 0;
  bool hasPvhNote = false;
  uint32_t pvhEntry = 0;
};

struct LoadedLinux {
  BootReport report;
  BootCpuState cpu;  // for vCPU 0; the others wait for INIT/SIPI as usual
};

// Throws Error(BadKernel / BadInitrd / BadConfig) with a message naming the file and what
// is wrong with it, or how much memory the image needs.
LoadedLinux loadLinux(const GuestMemory& memory, const BootConfig& config);

// Reads and unpacks a kernel file without a VM (benchmarks, tests, diagnostics).
struct KernelInfo {
  std::string format;          // "bzImage" or "vmlinux"
  std::string compression;
  uint64_t payloadBytes = 0;   // compressed payload (bzImage) or file size (vmlinux)
  uint64_t decompressedBytes = 0;  // vmlinux size after host decompression; 0 if the host cannot
  double decompressMs = 0;
};

KernelInfo inspectKernel(const std::string& path);

}  // namespace hyve
