#include "net/slirp_backend.h"

#include "util/error.h"
#include "util/seccomp.h"
#include "util/event_fd.h"

#include <poll.h>
#include <slirp/libslirp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace hyve::net {

namespace {

in_addr address(uint32_t hostOrder) { return in_addr{htonl(hostOrder)}; }

int64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

short toPoll(int events) {
  short out = 0;
  if (events & SLIRP_POLL_IN) out |= POLLIN;
  if (events & SLIRP_POLL_OUT) out |= POLLOUT;
  if (events & SLIRP_POLL_PRI) out |= POLLPRI;
  if (events & SLIRP_POLL_ERR) out |= POLLERR;
  if (events & SLIRP_POLL_HUP) out |= POLLHUP;
  return out;
}

int fromPoll(short revents) {
  int out = 0;
  if (revents & POLLIN) out |= SLIRP_POLL_IN;
  if (revents & POLLOUT) out |= SLIRP_POLL_OUT;
  if (revents & POLLPRI) out |= SLIRP_POLL_PRI;
  if (revents & POLLERR) out |= SLIRP_POLL_ERR;
  if (revents & POLLHUP) out |= SLIRP_POLL_HUP;
  return out;
}

}  // namespace

struct SlirpBackend::Timer {
  SlirpTimerCb callback;
  void* opaque;
  int64_t expireMs = -1;  // -1: not armed
};

// libslirp's callbacks: C functions with the backend as their opaque pointer.
struct SlirpBackend::Callbacks {
  static SlirpBackend& self(void* opaque) { return *static_cast<SlirpBackend*>(opaque); }

  static ssize_t sendPacket(const void* data, size_t length, void* opaque) {
    SlirpBackend& b = self(opaque);
    if (b.toGuest_.push({static_cast<const uint8_t*>(data), length})) signalEventFd(b.wake_.get());
    else ++b.droppedToGuest_;  // slirp's TCP retransmits at a lower pace
    return static_cast<ssize_t>(length);
  }
  static void guestError(const char*, void*) {}  // a misbehaving guest is the guest's business
  static int64_t clockNs(void*) { return nowNs(); }
  static void* timerNew(SlirpTimerCb callback, void* callbackOpaque, void* opaque) {
    auto& timers = self(opaque).timers_;
    timers.push_back(std::make_unique<Timer>(Timer{callback, callbackOpaque}));
    return timers.back().get();
  }
  static void timerFree(void* timer, void* opaque) {
    auto& timers = self(opaque).timers_;
    std::erase_if(timers, [&](const auto& t) { return t.get() == timer; });
  }
  static void timerMod(void* timer, int64_t expireMs, void*) { static_cast<Timer*>(timer)->expireMs = expireMs; }
  static void registerPollFd(int, void*) {}
  static void unregisterPollFd(int, void*) {}
  static void notify(void*) {}  // the loop polls again every turn anyway

  static int addPoll(int fd, int events, void* opaque) {
    auto& fds = *self(opaque).polling_;
    fds.push_back({fd, toPoll(events), 0});
    return static_cast<int>(fds.size() - 1);
  }
  static int revents(int index, void* opaque) {
    auto& fds = *self(opaque).polling_;
    if (index < 0 || static_cast<size_t>(index) >= fds.size()) return 0;
    return fromPoll(fds[static_cast<size_t>(index)].revents);
  }
};

namespace {

const SlirpCb kCallbacks = {
    .send_packet = SlirpBackend::Callbacks::sendPacket,
    .guest_error = SlirpBackend::Callbacks::guestError,
    .clock_get_ns = SlirpBackend::Callbacks::clockNs,
    .timer_new = SlirpBackend::Callbacks::timerNew,
    .timer_free = SlirpBackend::Callbacks::timerFree,
    .timer_mod = SlirpBackend::Callbacks::timerMod,
    .register_poll_fd = SlirpBackend::Callbacks::registerPollFd,
    .unregister_poll_fd = SlirpBackend::Callbacks::unregisterPollFd,
    .notify = SlirpBackend::Callbacks::notify,
    .init_completed = nullptr,
    .timer_new_opaque = nullptr,
};

}  // namespace

SlirpBackend::SlirpBackend(const std::vector<PortForward>& forwards)
    : wake_(newEventFd()), input_(newEventFd()), stop_(newEventFd()) {
  SlirpConfig config{};
  config.version = 1;
  config.in_enabled = true;
  config.vnetwork = address(kUserNetwork);
  config.vnetmask = address(0xffffff00);
  config.vhost = address(kUserGateway);
  config.vhostname = "hyve";
  config.vdhcp_start = address(kUserGuest);
  config.vnameserver = address(kUserDns);
  config.if_mtu = kMtu;
  config.if_mru = kMtu;
  config.disable_host_loopback = false;  // the gateway reaches 127.0.0.1: the point of it
  slirp_ = slirp_new(&config, &kCallbacks, this);
  if (!slirp_) throw Error(ErrorCode::Internal, "user networking: libslirp could not start");
  for (const PortForward& f : forwards) {
    if (slirp_add_hostfwd(slirp_, f.udp, address(0x7f000001), f.hostPort, address(kUserGuest), f.guestPort) < 0) {
      std::string what = std::string(f.udp ? "udp" : "tcp") + " 127.0.0.1:" + std::to_string(f.hostPort) + " -> guest port " +
                         std::to_string(f.guestPort);
      slirp_cleanup(slirp_);
      throw Error(ErrorCode::BadConfig, "user networking: cannot forward " + what + ": the host port is taken or not allowed");
    }
  }
  thread_ = std::thread(&SlirpBackend::run, this);
}

SlirpBackend::~SlirpBackend() {
  signalEventFd(stop_.get());
  if (thread_.joinable()) thread_.join();
  slirp_cleanup(slirp_);
}

bool SlirpBackend::transmit(std::span<const uint8_t> frame) {
  if (!toSlirp_.push(frame)) {
    inputWasFull_ = true;
    // The backend may have drained the queue between the push and the flag: look again.
    if (!toSlirp_.push(frame)) return false;
  }
  signalEventFd(input_.get());
  return true;
}

bool SlirpBackend::receive(std::vector<uint8_t>& frame) { return toGuest_.pop(frame); }

void SlirpBackend::clearWake() { drainEventFd(wake_.get()); }

std::string SlirpBackend::failure() const {
  std::lock_guard lock(failureMutex_);
  return failure_;
}

void SlirpBackend::fail(const std::string& why) {
  std::lock_guard lock(failureMutex_);
  failure_ = why;
}

void SlirpBackend::run() {
  seccomp::confineThread("slirp");
  std::vector<pollfd> fds;
  std::vector<uint8_t> frame;
  polling_ = &fds;
  for (;;) {
    fds.clear();
    fds.push_back({stop_.get(), POLLIN, 0});
    fds.push_back({input_.get(), POLLIN, 0});
    uint32_t timeoutMs = 1000;
    slirp_pollfds_fill(slirp_, &timeoutMs, Callbacks::addPoll, this);
    int64_t nowMs = nowNs() / 1'000'000;
    for (const auto& t : timers_) {
      if (t->expireMs >= 0) timeoutMs = static_cast<uint32_t>(std::clamp<int64_t>(t->expireMs - nowMs, 0, timeoutMs));
    }
    int ready = ::poll(fds.data(), fds.size(), static_cast<int>(timeoutMs));
    if (ready < 0 && errno != EINTR) {
      fail(std::string("user networking stopped: poll: ") + std::strerror(errno));
      signalEventFd(wake_.get());
      return;
    }
    if (ready > 0 && fds[0].revents) return;
    slirp_pollfds_poll(slirp_, ready < 0, Callbacks::revents, this);
    if (ready > 0 && fds[1].revents) {
      drainEventFd(input_.get());
      while (toSlirp_.pop(frame)) slirp_input(slirp_, frame.data(), static_cast<int>(frame.size()));
      if (inputWasFull_.exchange(false)) signalEventFd(wake_.get());  // the NIC may send again
    }
    nowMs = nowNs() / 1'000'000;
    for (size_t i = 0; i < timers_.size(); ++i) {  // a callback may add or free timers
      Timer& t = *timers_[i];
      if (t.expireMs < 0 || t.expireMs > nowMs) continue;
      t.expireMs = -1;
      t.callback(t.opaque);
    }
  }
}

}  // namespace hyve::net
