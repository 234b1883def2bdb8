// What a virtio device (blk, rng, console, ...) implements; the transport (virtio_pci.h)
// holds one through this interface, so a device never knows how it is attached
// (kvmtool's virtio ops, Firecracker's VirtioDevice trait).
#pragma once

#include "snapshot/state_io.h"
#include "virtio/virtqueue.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace hyve::virtio {

// Device IDs (virtio 1.x §5).
constexpr uint16_t kDeviceBlock = 2;
constexpr uint16_t kDeviceConsole = 3;
constexpr uint16_t kDeviceEntropy = 4;

// What handle() returns to leave a request in its ring, unserved: the device has nothing
// to give it yet (a receive queue without host data) or cannot take it yet (a host peer
// that is not reading). The device kicks the queue once it can serve it, so it applies
// backpressure instead of buffering what the guest sends.
constexpr uint32_t kDeferRequest = UINT32_MAX;

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  // The transport hands the device a way to have a queue served again (from any thread),
  // e.g. after deferring a request. Called once, before any request is handled.
  virtual void attach(std::function<void(unsigned queue)> /*kick*/) {}

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
  // The device's own state, field by field, saved after the transport's (paused: no request
  // is in flight). `files` is a path prefix inside the snapshot's directory for state too
  // large for the state file (a disk's contents). Restore throws Error(BadSnapshot) on a
  // field that does not fit the device.
  virtual void saveDeviceState(snapshot::StateWriter& /*out*/, const std::string& /*files*/) const {}
  virtual void restoreDeviceState(snapshot::StateReader& /*in*/, const std::string& /*files*/) {}

  // Serves one request of queue `queue` on the device's worker thread; returns the bytes
  // written into the chain's device-writable buffers. A bad request is answered with the
  // device's error status; throw QueueError only for what makes the whole queue unusable.
  // kDeferRequest leaves the request in the ring (see above).
  virtual uint32_t handle(unsigned queue, const Chain& chain) = 0;
};

}  // namespace hyve::virtio
