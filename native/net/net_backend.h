// Where a NIC's Ethernet frames go and come from: the user-mode stack (slirp_backend.h)
// or a tap device (tap_backend.h). A backend does its own I/O (a thread with poll, or a
// nonblocking fd), so the NIC's worker never blocks on the network, and every queue
// between them is bounded: a frame that finds a full queue is dropped and counted, as a
// real link drops it, and TCP retransmits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hyve::net {

// The longest frame either way: a 64 KiB IP packet and its Ethernet and VLAN headers.
constexpr size_t kMaxFrameBytes = 65535 + 18;
// The shortest: an Ethernet header.
constexpr size_t kMinFrameBytes = 14;

class NetBackend {
 public:
  virtual ~NetBackend() = default;

  // Takes one frame from the guest. False when the backend cannot take it now (its queue
  // is full): the NIC keeps the frame in the guest's ring and retries when wakeFd() fires.
  virtual bool transmit(std::span<const uint8_t> frame) = 0;
  // Moves the next frame for the guest into `frame`; false when there is none.
  virtual bool receive(std::vector<uint8_t>& frame) = 0;
  // Readable when receive() has a frame or transmit() has room again.
  virtual int wakeFd() const = 0;
  // Called before the NIC drains the backend, so a wake-up after it is not lost.
  virtual void clearWake() = 0;
  // The link's MTU, which the NIC offers the guest (VIRTIO_NET_F_MTU).
  virtual uint16_t mtu() const { return 1500; }
  // Why the backend stopped working (empty: it works). A NIC whose backend failed still
  // takes the guest's frames (and drops them), so the guest never hangs on it.
  virtual std::string failure() const = 0;
};

}  // namespace hyve::net
