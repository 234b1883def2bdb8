// The user-mode backend: libslirp in-process, on a thread of its own. The guest's network
// is QEMU's familiar one: 10.0.2.0/24, gateway 10.0.2.2 (which reaches the host's
// loopback: a test's server on 127.0.0.1 is 10.0.2.2 to the guest), DNS at 10.0.2.3
// (slirp relays it to the host's resolver), the guest's DHCP lease 10.0.2.15. Host ports
// forward to guest ports, listening on 127.0.0.1 only. No root, no host configuration.
//
// libslirp is not thread-safe, so every call into it happens on the backend thread; the
// NIC's worker only touches the two bounded frame queues.
#pragma once

#include "net/frame_queue.h"
#include "net/net_backend.h"
#include "util/unique_fd.h"

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct Slirp;

namespace hyve::net {

struct PortForward {
  bool udp = false;
  uint16_t hostPort = 0;  // on 127.0.0.1; the caller picks a free one for "any"
  uint16_t guestPort = 0;
};

// The addresses the guest sees (host byte order).
constexpr uint32_t kUserNetwork = 0x0a000200;  // 10.0.2.0/24
constexpr uint32_t kUserGateway = 0x0a000202;
constexpr uint32_t kUserDns = 0x0a000203;
constexpr uint32_t kUserGuest = 0x0a00020f;

class SlirpBackend final : public NetBackend {
 public:
  // Queue bounds each way: enough for a TCP window of full frames.
  static constexpr size_t kQueueFrames = 512;
  static constexpr size_t kQueueBytes = 4 << 20;

  // Throws Error(BadConfig) naming the forward when a host port cannot be listened on.
  explicit SlirpBackend(const std::vector<PortForward>& forwards);
  ~SlirpBackend() override;
  SlirpBackend(const SlirpBackend&) = delete;
  SlirpBackend& operator=(const SlirpBackend&) = delete;

  bool transmit(std::span<const uint8_t> frame) override;
  bool receive(std::vector<uint8_t>& frame) override;
  int wakeFd() const override { return wake_.get(); }
  // 64 KiB frames: a guest whose kernel is emulated (PVM) pays per packet, not per byte,
  // and a 1500-byte MTU made a download about 40 times as many packets.
  static constexpr uint16_t kMtu = 65520;
  uint16_t mtu() const override { return kMtu; }
  void clearWake() override;
  std::string failure() const override;

  // Frames slirp produced that found the queue to the guest full.
  uint64_t droppedToGuest() const { return droppedToGuest_; }

  struct Timer;
  struct Callbacks;

 private:
  void run();
  void fail(const std::string& why);

  Slirp* slirp_ = nullptr;
  FrameQueue toSlirp_{kQueueFrames, kQueueBytes};
  FrameQueue toGuest_{kQueueFrames, kQueueBytes};
  UniqueFd wake_;      // the NIC's: frames for the guest, or room for the guest's
  UniqueFd input_;     // the backend thread's: frames from the guest
  UniqueFd stop_;
  std::atomic<bool> inputWasFull_{false};
  std::atomic<uint64_t> droppedToGuest_{0};
  std::vector<std::unique_ptr<Timer>> timers_;  // backend thread only
  std::vector<pollfd>* polling_ = nullptr;  // during slirp_pollfds_fill/poll
  mutable std::mutex failureMutex_;
  std::string failure_;
  std::thread thread_;
};

}  // namespace hyve::net
