// The seccomp allowlists of every thread that serves the guest, in one place.
//
// Adding a thread: pick a role name, add one line below with the calls it makes beyond
// commonCalls(), and call seccomp::confineThread("role") first thing in the thread. A
// virtio device names its worker's role through VirtioDevice::threadRole(). A role that
// is missing here still runs, under a filter that only logs (and a notice on stderr).
// Find what a thread calls with `strace -f -e trace=all` on the VM process, or run with
// the filter on: a forbidden call ends the VM with an error naming it.
#include "util/seccomp.h"

#include <array>

namespace hyve::seccomp {

namespace {

constexpr std::string_view kCommon =
    // locks and condition variables; clocks (normally the vDSO) and timed waits
    "futex clock_gettime clock_nanosleep nanosleep gettimeofday sched_yield restart_syscall "
    // malloc (arenas, large blocks; never executable memory) and glibc's thread exit,
    // which returns the stack with madvise and blocks signals first
    "mmap munmap mprotect brk madvise exit rt_sigprocmask "
    // returning from a signal handler (the vCPU kick, SIGSYS itself)
    "rt_sigreturn "
    // stderr diagnostics, and the eventfds that wake Node's event loop (console output
    // and the exit callback go through napi thread-safe functions)
    "write "
    // abort() and pthread_kill(): how a thread ends the process or kicks a vCPU
    "getpid gettid tgkill "
    // the size of a restored VM's memory file, which must not shrink under it
    // (GuestMemory::fileChanged), and sigaction for the SIGBUS fallback
    "fstat newfstatat rt_sigaction";

constexpr std::array kRoles = {
    // KVM_RUN and register access ("ioctl" is KVM's ioctls only); getrandom for the PVM
    // RDRAND/RDSEED fixup; disk I/O, because AHCI runs each command on the vCPU thread that
    // writes its PxCI bit.
    Role{"vcpu", "ioctl getrandom preadv pwritev pread64 pwrite64 fdatasync fallocate"},
    // Wakes vCPUs now and then to find a machine that halted for good.
    Role{"halt-watch", ""},
    // The profiler's clock: kicks each vCPU out of KVM_RUN.
    Role{"profiler", ""},
    // Timer threads raising interrupt lines (KVM_IRQ_LINE).
    Role{"hpet", "ioctl"},
    Role{"rtc", "ioctl"},
    // virtio workers: wait on the doorbell eventfds, interrupt through KVM_SIGNAL_MSI or
    // KVM_IRQ_LINE, plus the device's own I/O.
    Role{"virtio-blk", "poll ppoll read ioctl preadv pwritev pread64 pwrite64 fdatasync fallocate"},
    Role{"virtio-rng", "poll ppoll read ioctl getrandom"},
    // virtio-net: a tap's frames (read, writev); libslirp's frames go through a queue and
    // an eventfd to the slirp thread.
    Role{"virtio-net", "poll ppoll read readv writev ioctl"},
    // virtio-console: the named ports' bytes over their UNIX sockets; a peer that hung up
    // is closed here. (Role names stay short: a thread name holds 15 characters.)
    Role{"virtio-con", "poll ppoll read ioctl recvmsg sendmsg close"},
    // virtio-console's port watcher: accepts a peer on a port's listening socket.
    Role{"con-ports", "poll ppoll read accept4 close"},
    // libslirp's thread is a user-mode TCP/IP stack: it opens, connects and serves host
    // sockets for the guest's connections, forwards, DNS and ping (FIONREAD on them, hence
    // any ioctl), and reads /etc/resolv.conf for the host's DNS server. No process, file
    // write or memory-execute calls.
    Role{"slirp",
         "poll ppoll read readv writev recvfrom sendto recvmsg sendmsg socket connect bind listen accept accept4 "
         "getsockname getpeername setsockopt getsockopt shutdown close fcntl any-ioctl open openat stat fstat "
         "newfstatat lseek getrandom"},
    // vsock's host side through an epoll set: accepts clients, connects to <socket>_P for
    // the guest (UNIX sockets only), moves bytes, closes.
    Role{"virtio-vsock", "poll ppoll read ioctl epoll_wait epoll_pwait epoll_ctl unix-socket connect accept4 recvfrom sendto sendmsg readv shutdown close"},
};

// ASan's allocator maps and unmaps its own memory and reads /proc/self/maps on errors;
// its memory-accessibility probe writes through a pipe (pipe2, fcntl); its reports check
// whether stderr is a terminal (a non-KVM ioctl, hence "any-ioctl"); UBSan prints its
// report. None of this is in a release build.
constexpr std::string_view kSanitizer =
    "open openat close read readlink fstat newfstatat lseek getrlimit prlimit64 sigaltstack pipe2 fcntl any-ioctl";

}  // namespace

std::span<const Role> roles() { return kRoles; }
std::string_view commonCalls() { return kCommon; }
std::string_view sanitizerCalls() { return kSanitizer; }

}  // namespace hyve::seccomp
