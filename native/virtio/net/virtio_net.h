// virtio-net (virtio 1.x §5.1): one receive and one transmit queue, MAC, STATUS and the
// backend's MTU in the configuration space, mergeable receive buffers, on a NetBackend
// (net/net_backend.h).
//
// The device moves its buffers itself (VirtioDevice::service()): a receive buffer waits in
// the ring until a frame arrives, and a frame the backend cannot take yet stays in the
// transmit ring until the backend wakes the device. Frames from the guest are hostile: a
// chain shorter than the header plus an Ethernet header, longer than the largest frame,
// or asking for an offload the device never offered is dropped and counted, and the next
// frame goes on. No offloads are offered, so every frame carries its own checksums. A
// frame for the guest that fits no buffer it posted (nor all of them, merged) is dropped
// and counted; a receive buffer that could not even hold the header is a broken driver
// (DEVICE_NEEDS_RESET).
#pragma once

#include "net/net_backend.h"
#include "virtio/virtio_device.h"

#include <array>
#include <atomic>
#include <functional>
#include <memory>

namespace hyve::virtio {

class VirtioNet final : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr unsigned kRxQueue = 0;
  static constexpr unsigned kTxQueue = 1;
  // struct virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start,
  // csum_offset, num_buffers (VERSION_1 always has num_buffers).
  static constexpr size_t kHeaderBytes = 12;
  // Frames moved per service() turn each way before the other queues get a turn.
  static constexpr unsigned kBatch = 64;

  struct Counters {
    std::atomic<uint64_t> txFrames{0}, txDropped{0}, rxFrames{0}, rxDropped{0};
  };

  // `log` hears once why the backend failed (may be empty).
  VirtioNet(std::array<uint8_t, 6> mac, std::unique_ptr<net::NetBackend> backend,
            std::function<void(const std::string&)> log = {});

  uint16_t deviceId() const override { return kDeviceNet; }
  uint32_t pciClass() const override { return 0x020000; }  // network, Ethernet
  std::string_view threadRole() const override { return "virtio-net"; }
  uint64_t features() const override;
  std::vector<uint16_t> queueSizes() const override { return {kQueueSize, kQueueSize}; }
  void readConfig(uint64_t offset, std::span<uint8_t> data) const override;
  void activate(uint64_t features) override;
  void reset() override;
  uint32_t handle(unsigned, const Chain&) override { return 0; }  // service() does the work
  bool ownsQueues() const override { return true; }
  int eventFd() const override;
  bool service(QueueIo& io) override;

  const Counters& counters() const { return counters_; }
  const std::array<uint8_t, 6>& mac() const { return mac_; }
  net::NetBackend& backend() { return *backend_; }

 private:
  bool transmit(QueueIo& io);
  bool receive(QueueIo& io);

  std::array<uint8_t, 6> mac_;
  std::unique_ptr<net::NetBackend> backend_;
  bool mergeable_ = false;
  bool rxStalled_ = false;  // a frame waits for receive buffers: no wake-ups until a kick
  bool txStalled_ = false;  // the backend is full: wake up when it has room
  bool havePending_ = false;
  bool failureReported_ = false;
  std::function<void(const std::string&)> log_;
  std::vector<uint8_t> pending_;  // the frame for the guest that did not fit yet
  std::vector<uint8_t> frame_;    // scratch for transmits
  std::vector<UsedEntry> used_;   // scratch: the buffers one received frame filled
  Counters counters_;
};

}  // namespace hyve::virtio
