#include "core/guest_memory.h"

#include "core/layout.h"
#include "util/error.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>

namespace hyve {

namespace {

// The file-backed guest RAM of this process (a VM process runs one machine): all the
// SIGBUS handler can reach, so it lives here rather than in the GuestMemory.
std::atomic<uintptr_t> g_fileMappingStart{0};
std::atomic<uintptr_t> g_fileMappingEnd{0};
std::atomic<bool> g_fileFault{false};
uintptr_t g_pageSize = 4096;

// Async-signal-safe: atomics and mmap. A fault inside the file-backed RAM (its file was
// truncated) gets a zero page, so the thread carries on and the machine ends the VM with
// fileChanged()'s explanation; any other fault gets the default action, as before.
void onSigbus(int signal, siginfo_t* info, void*) {
  auto address = reinterpret_cast<uintptr_t>(info->si_addr);
  if (address >= g_fileMappingStart.load() && address < g_fileMappingEnd.load()) {
    void* page = reinterpret_cast<void*>(address & ~(g_pageSize - 1));
    if (::mmap(page, g_pageSize, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
      g_fileFault.store(true);
      return;
    }
  }
  struct sigaction fallback{};
  fallback.sa_handler = SIG_DFL;
  ::sigaction(signal, &fallback, nullptr);  // returning repeats the access: the default death
}

void watchFileMapping(uintptr_t start, uintptr_t end) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    g_pageSize = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    struct sigaction action{};
    action.sa_sigaction = onSigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGBUS, &action, nullptr) != 0) throwErrno(ErrorCode::Internal, "cannot install the SIGBUS handler");
  });
  g_fileFault.store(false);
  g_fileMappingEnd.store(0);
  g_fileMappingStart.store(start);
  g_fileMappingEnd.store(end);
}

}  // namespace

GuestMemory::GuestMemory(uint64_t bytes) : totalBytes_(bytes) {
  validateSize();
  mapping_ = Mapping::anonymous(bytes);
  layOutRegions();
}

GuestMemory::GuestMemory(uint64_t bytes, int fd, std::string name) : totalBytes_(bytes), fileName_(std::move(name)) {
  validateSize();
  // MAP_NORESERVE: a restored guest is charged only for the pages it writes.
  void* addr = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  if (addr == MAP_FAILED) throwErrno(ErrorCode::Memory, "cannot map the snapshot's guest memory");
  mapping_ = Mapping(addr, bytes);
  file_.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!file_.valid()) throwErrno(ErrorCode::Internal, "cannot keep the snapshot's memory file open");
  watchFileMapping(reinterpret_cast<uintptr_t>(addr), reinterpret_cast<uintptr_t>(addr) + bytes);
  layOutRegions();
}

GuestMemory::~GuestMemory() {
  if (file_.valid() && g_fileMappingStart.load() == reinterpret_cast<uintptr_t>(mapping_.data())) {
    g_fileMappingEnd.store(0);
    g_fileMappingStart.store(0);
  }
}

std::string GuestMemory::fileChanged() const {
  if (!file_.valid()) return {};
  struct stat st{};
  if (::fstat(file_.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) < totalBytes_) {
    return fileName_ + " is " + std::to_string(st.st_size) + " bytes now, shorter than the " + std::to_string(totalBytes_) +
           " bytes of guest memory mapped from it: it was truncated or rewritten while the VM ran (a restored VM reads its "
           "memory from that file; leave a snapshot alone while copies of it run)";
  }
  if (g_fileFault.load()) {
    return fileName_ + " changed while the VM ran: guest memory mapped from it could no longer be read (leave a snapshot "
           "alone while copies of it run)";
  }
  return {};
}

void GuestMemory::validateSize() const {
  if (totalBytes_ < 16 * layout::MiB || totalBytes_ % (2 * layout::MiB) != 0) {
    throw Error(ErrorCode::BadConfig, "guest memory must be a multiple of 2 MiB and at least 16 MiB, got " +
                                          std::to_string(totalBytes_) + " bytes");
  }
}

void GuestMemory::layOutRegions() {
  uint64_t below = std::min(totalBytes_, layout::kPciHoleStart);
  regions_.push_back({0, below, mapping_.data()});
  if (totalBytes_ > below) {
    regions_.push_back({layout::kPciHoleEnd, totalBytes_ - below, mapping_.data() + below});
  }
}

uint64_t GuestMemory::lowRamEnd() const { return regions_.front().size; }

std::span<uint8_t> GuestMemory::slice(uint64_t gpa, uint64_t length) const {
  for (const auto& region : regions_) {
    if (gpa >= region.guestAddress && gpa - region.guestAddress <= region.size &&
        length <= region.size - (gpa - region.guestAddress)) {
      return {region.host + (gpa - region.guestAddress), static_cast<size_t>(length)};
    }
  }
  return {};
}

bool GuestMemory::read(uint64_t gpa, void* out, uint64_t length) const {
  auto span = slice(gpa, length);
  if (span.size() != length || (length != 0 && span.data() == nullptr)) return false;
  if (length != 0) std::memcpy(out, span.data(), length);
  return true;
}

bool GuestMemory::write(uint64_t gpa, const void* data, uint64_t length) const {
  auto span = slice(gpa, length);
  if (span.size() != length || (length != 0 && span.data() == nullptr)) return false;
  if (length != 0) std::memcpy(span.data(), data, length);
  return true;
}

}  // namespace hyve
