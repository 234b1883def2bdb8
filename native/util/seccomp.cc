#include "util/seccomp.h"

#include "util/error.h"

#include <seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace hyve::seccomp {

namespace {

constexpr size_t kNameSize = 16;  // a thread name: 15 characters and the NUL

// The first violation in this process. A signal handler can reach nothing else, so this
// is the one process-wide record: `claimed` picks the first thread, `recorded` publishes
// its fields to violation().
struct ViolationRecord {
  std::atomic<bool> claimed{false};
  std::atomic<bool> recorded{false};
  int syscall = -1;            // kNotLoaded: the thread's filter could not be loaded
  char thread[kNameSize] = {};
  char problem[160] = {};      // why, for kNotLoaded
};
constexpr int kNotLoaded = -1;
ViolationRecord g_violation;

// The calling thread's name, set by confineThread() before its filter is loaded (so the
// handler never touches thread-local storage for the first time).
thread_local char t_threadName[kNameSize] = {};

// Async-signal-safe: copies, an atomic, write(2) to stderr.
void onSigsys(int, siginfo_t* info, void* context) {
  int nr = info->si_syscall;
  bool expected = false;
  if (g_violation.claimed.compare_exchange_strong(expected, true)) {
    g_violation.syscall = nr;
    std::memcpy(g_violation.thread, t_threadName, kNameSize);
    g_violation.recorded.store(true, std::memory_order_release);
  }
  char line[96] = "hyve: seccomp: thread ";
  size_t n = std::strlen(line);
  for (size_t i = 0; t_threadName[i] && i < kNameSize && n < sizeof line - 40; ++i) line[n++] = t_threadName[i];
  const char* middle = " made a forbidden system call, number ";
  for (size_t i = 0; middle[i]; ++i) line[n++] = middle[i];
  char digits[12];
  size_t d = 0;
  unsigned value = static_cast<unsigned>(nr);
  do digits[d++] = static_cast<char>('0' + value % 10); while ((value /= 10) && d < sizeof digits);
  while (d) line[n++] = digits[--d];
  line[n++] = '\n';
  (void)!::write(STDERR_FILENO, line, n);
  // The call is not executed; it fails with EPERM while the machine ends.
  static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RAX] = -EPERM;
}

void installHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = onSigsys;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO;
    if (::sigaction(SIGSYS, &action, nullptr) != 0) throwErrno(ErrorCode::Internal, "cannot install the SIGSYS handler");
  });
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

void allow(scmp_filter_ctx ctx, std::string_view role, std::string_view calls) {
  size_t at = 0;
  while (at < calls.size()) {
    size_t end = calls.find(' ', at);
    if (end == std::string_view::npos) end = calls.size();
    std::string name(calls.substr(at, end - at));
    at = end + 1;
    if (name.empty()) continue;
    bool anyIoctl = name == "any-ioctl";  // not only KVM's (seccomp_filters.cc: slirp, sanitizer builds)
    if (anyIoctl) name = "ioctl";
    bool unixSocket = name == "unix-socket";  // socket(AF_UNIX, ...) only
    if (unixSocket) name = "socket";
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      throw Error(ErrorCode::Internal, "seccomp allowlist of '" + std::string(role) + "' names an unknown system call: " + name);
    }
    int rc;
    if (name == "ioctl" && !anyIoctl) {
      // KVM's ioctls only: their type byte (bits 8-15 of the request) is KVMIO, 0xae.
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0xae00));
    } else if (unixSocket) {
      // vsock's host side opens UNIX sockets and nothing else.
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ~0u, AF_UNIX));
    } else if (name == "mmap" || name == "mprotect") {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    } else {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (rc != 0) throw Error(ErrorCode::Internal, "seccomp: cannot allow " + name + ": " + std::strerror(-rc));
  }
}

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace

bool enabled() {
  const char* setting = std::getenv("HYVE_SECCOMP");
  return !(setting && std::strcmp(setting, "off") == 0);
}

namespace {

void load(std::string_view role) {
  std::string name = "hyve-" + std::string(role);
  name.resize(std::min(name.size(), kNameSize - 1));
  std::memcpy(t_threadName, name.c_str(), name.size() + 1);
  pthread_setname_np(pthread_self(), t_threadName);
  if (!enabled()) return;

  const Role* found = nullptr;
  for (const Role& r : roles()) {
    if (r.name == role) found = &r;
  }
  installHandler();
  // Unlisted roles are logged (kernel audit log), not stopped: a thread added without an
  // allowlist keeps working, and says so.
  std::unique_ptr<void, FilterDeleter> ctx(seccomp_init(found ? SCMP_ACT_TRAP : SCMP_ACT_LOG));
  if (!ctx) throw Error(ErrorCode::Internal, "seccomp: cannot create a filter");
  allow(ctx.get(), role, commonCalls());
  if (found) allow(ctx.get(), role, found->calls);
  if (sanitized()) allow(ctx.get(), role, sanitizerCalls());
  if (!found) {
    std::string notice = "hyve: seccomp: thread role '" + std::string(role) +
                         "' has no allowlist in native/util/seccomp_filters.cc; its calls are only logged\n";
    (void)!::write(STDERR_FILENO, notice.data(), notice.size());
  }
  // Not SCMP_FLTATR_CTL_TSYNC: the filter is this thread's (and its future children's).
  int rc = seccomp_load(ctx.get());
  if (rc != 0) throw Error(ErrorCode::Internal, std::string("seccomp_load: ") + std::strerror(-rc));
}

}  // namespace

void confineThread(std::string_view role) noexcept {
  try {
    load(role);
  } catch (const std::exception& e) {
    // Not thrown: device threads have nowhere to throw to. The machine ends instead, as
    // for a forbidden call (fail closed).
    bool expected = false;
    if (g_violation.claimed.compare_exchange_strong(expected, true)) {
      g_violation.syscall = kNotLoaded;
      std::memcpy(g_violation.thread, t_threadName, kNameSize);
      std::strncpy(g_violation.problem, e.what(), sizeof g_violation.problem - 1);
      g_violation.recorded.store(true, std::memory_order_release);
    }
  }
}

std::string violation() {
  if (!g_violation.recorded.load(std::memory_order_acquire)) return {};
  int nr = g_violation.syscall;
  if (nr == kNotLoaded) {
    return "thread " + std::string(g_violation.thread) + " could not load its seccomp filter: " + g_violation.problem +
           " (HYVE_SECCOMP=off runs without filters)";
  }
  char* resolved = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  std::string call = resolved ? resolved : "system call";
  std::free(resolved);
  return "thread " + std::string(g_violation.thread) + " made a system call its seccomp filter forbids: " + call + " (" +
         std::to_string(nr) + "); the allowlists are in native/util/seccomp_filters.cc, HYVE_SECCOMP=off disables them";
}

}  // namespace hyve::seccomp
