// Per-thread seccomp-bpf filters (Firecracker's model): once set up, every thread that
// serves the guest (vCPUs, device workers, timers, watchers) confines itself to the
// system calls its role needs. The allowlists are in util/seccomp_filters.cc.
//
// A forbidden call is not executed: the thread gets SIGSYS, the handler records the call
// and makes it return -EPERM, and the machine ends with an error naming the call
// (Machine polls violation()). HYVE_SECCOMP=off in the environment skips the filters,
// for debugging.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace hyve::seccomp {

// Names the calling thread "hyve-<role>" and installs the role's filter (for this thread
// and threads it creates later). A role missing from the table gets a logging filter
// that allows everything (and says so on stderr), so a new thread works before its
// allowlist exists. A filter that cannot be loaded is recorded as a violation.
void confineThread(std::string_view role) noexcept;

// The first forbidden call a confined thread of this process made, as a sentence naming
// the thread and the call; empty if none.
std::string violation();

// Filters are on unless HYVE_SECCOMP=off.
bool enabled();

// The allowlists (seccomp_filters.cc): system call names separated by spaces. "ioctl"
// allows KVM's ioctls only, and mmap/mprotect never map executable memory.
struct Role {
  std::string_view name;
  std::string_view calls;  // beyond commonCalls()
};
std::span<const Role> roles();
// What every confined thread may call (thread end, locks, clocks, memory allocation).
std::string_view commonCalls();
// Extra calls of the sanitizer runtimes, in an ASan/UBSan build only.
std::string_view sanitizerCalls();

}  // namespace hyve::seccomp
