// What a virtio device (blk, rng, console, ...) implements; the transport (virtio_pci.h)
// holds one through this interface, so a device never knows how it is attached
// (kvmtool's virtio ops, Firecracker's VirtioDevice trait).
#pragma once

#include "snapshot/state_io.h"
#include "virtio/virtqueue.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hyve::virtio {

// Device IDs (virtio 1.x §5).
constexpr uint16_t kDeviceBlock = 2;
constexpr uint16_t kDeviceConsole = 3;
constexpr uint16_t kDeviceEntropy = 4;
constexpr uint16_t kDeviceVsock = 19;

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint16_t deviceId() const = 0;
  // PCI class, subclass and programming interface the function reports.
  virtual uint32_t pciClass() const = 0;
  // Device-specific feature bits (the transport adds VERSION_1, EVENT_IDX, INDIRECT_DESC).
  virtual uint64_t features() const = 0;
  // The maximum size of each queue; their count is the number of queues.
  virtual std::vector<uint16_t> queueSizes() const = 0;

  // Device configuration space (§4.1.4.6): bounds are the device's business; bytes
  // outside its layout read as zero and writes there are ignored.
  virtual void readConfig(uint64_t offset, std::span<uint8_t> data) const = 0;
  virtual void writeConfig(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {}

  // The driver set DRIVER_OK with these features.
  virtual void activate(uint64_t /*features*/) {}
  // The driver reset the device.
  virtual void reset() {}

  // Why a snapshot of this device cannot be taken (empty: it can).
  virtual std::string snapshotRefusal() const { return {}; }
  // Device state beyond the transport's, field by field, after it in the device's snapshot
  // section; restoreDevice() runs before the transport reactivates the device.
  virtual void saveDevice(snapshot::StateWriter& /*out*/) const {}
  virtual void restoreDevice(snapshot::StateReader& /*in*/) {}

  // Devices that also serve the host side (vsock's sockets) give the worker one more fd to
  // wait on (an epoll set); -1: none. When it is readable the worker calls onEvent(), then
  // serves every queue: host events fill queues that wait for data (vsock's rx).
  virtual int eventFd() const { return -1; }
  virtual void onEvent() {}

  // Serves one request of queue `queue` on the device's worker thread; returns the bytes
  // written into the chain's device-writable buffers. A bad request is answered with the
  // device's error status; throw QueueError only for what makes the whole queue unusable.
  // kNotNow leaves the chain in the ring and stops serving the queue until the device has
  // something for it (a receive queue's buffers wait for host data).
  static constexpr uint32_t kNotNow = UINT32_MAX;
  virtual uint32_t handle(unsigned queue, const Chain& chain) = 0;
};

}  // namespace hyve::virtio
