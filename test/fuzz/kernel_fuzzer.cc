// libFuzzer target: the kernel loader (native/boot/): the bzImage setup header, every
// host decompressor of its payload, the vmlinux ELF parser, placement in guest RAM, the
// zero page and the e820 map. The input is the kernel file, loaded through loadLinux()
// exactly as a boot does, into a 64 MiB guest (the unpack cap follows guest RAM).
// Whatever the input, loading succeeds or throws hyve::Error(BadKernel or BadConfig);
// sanitizers catch the rest. Built and run by scripts/fuzz.sh; seeds in
// test/fuzz/corpus/kernel/.
#include "boot/linux_loader.h"
#include "core/guest_memory.h"
#include "util/error.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

// One memfd for every run: the loader opens "kernel files" by path, and /proc/self/fd/N
// of a memfd is a regular file, with no file left behind.
int kernelFile() {
  static int fd = ::memfd_create("hyve-fuzz-kernel", MFD_CLOEXEC);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hyve::GuestMemory memory(64ull << 20);
  int fd = kernelFile();
  if (fd < 0 || ::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) __builtin_trap();
  hyve::BootConfig config;
  config.kernelPath = "/proc/self/fd/" + std::to_string(fd);
  config.cmdline = "console=ttyS0";
  try {
    hyve::LoadedLinux loaded = hyve::loadLinux(memory, config);
    if (loaded.report.kernelEnd > memory.totalBytes() + (4ull << 30)) __builtin_trap();  // placed inside the guest
  } catch (const hyve::Error& e) {
    if (e.code() != hyve::ErrorCode::BadKernel && e.code() != hyve::ErrorCode::BadConfig) __builtin_trap();
  }
  return 0;
}
