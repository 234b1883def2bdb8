// The tap backend: an existing host tap device (xhyve's `-s N,virtio-tap,tapX`), opened
// through /dev/net/tun with the virtio-net header (IFF_VNET_HDR), nonblocking, read and
// written on the NIC's worker thread: the kernel's own queue is the bound.
#pragma once

#include "net/net_backend.h"
#include "util/unique_fd.h"

#include <mutex>
#include <string>

namespace hyve::net {

class TapBackend final : public NetBackend {
 public:
  // Throws Error(BadConfig) naming the device and the fix: no such device, no permission,
  // no /dev/net/tun.
  explicit TapBackend(const std::string& name);

  bool transmit(std::span<const uint8_t> frame) override;
  bool receive(std::vector<uint8_t>& frame) override;
  int wakeFd() const override;
  void clearWake() override {}
  std::string failure() const override;
  uint16_t mtu() const override { return mtu_; }

 private:
  void fail(const std::string& why);

  std::string name_;
  uint16_t mtu_ = 1500;  // the tap's, when it was opened
  UniqueFd fd_;
  UniqueFd idle_;  // never readable: the wake fd once the device is gone
  std::vector<uint8_t> buffer_;
  mutable std::mutex mutex_;
  std::string failure_;
};

}  // namespace hyve::net
