// What a virtio device (blk, rng, console, ...) implements; the transport (virtio_pci.h)
// holds one through this interface, so a device never knows how it is attached
// (kvmtool's virtio ops, Firecracker's VirtioDevice trait).
#pragma once

#include "snapshot/state_io.h"
#include "virtio/virtqueue.h"

#include <cstdint>
#include <optional>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hyve::virtio {

// Device IDs (virtio 1.x §5).
constexpr uint16_t kDeviceNet = 1;
constexpr uint16_t kDeviceBlock = 2;
constexpr uint16_t kDeviceConsole = 3;
constexpr uint16_t kDeviceEntropy = 4;
constexpr uint16_t kDeviceVsock = 19;

// The queues as a device that moves buffers itself sees them (VirtioDevice::service()).
class QueueIo {
 public:
  virtual ~QueueIo() = default;
  // The next available chain of `queue`, or nullopt (empty, or the queue is not enabled).
  // Throws QueueError on a malformed ring.
  virtual std::optional<Chain> pop(unsigned queue) = 0;
  // Hands the last `count` popped chains back unused, to be popped again later.
  virtual void unpop(unsigned queue, uint16_t count) = 0;
  // Returns chains to the driver, each with `written` bytes in its writable buffers; the
  // driver sees them all at once (see SplitQueue::push).
  virtual void push(unsigned queue, std::span<const UsedEntry> entries) = 0;
  void push(unsigned queue, uint16_t head, uint32_t written) {
    const UsedEntry entry{head, written};
    push(queue, std::span(&entry, 1));
  }
  // The size the driver gave `queue`: the most chains it can have available at once.
  virtual uint16_t size(unsigned queue) const = 0;
};
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

  // The seccomp allowlist of this device's worker thread (util/seccomp_filters.cc). The
  // default has none: the worker's calls are only logged until the device names one.
  virtual std::string_view threadRole() const { return "virtio"; }
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

  // Devices whose queues are not one request, one answer (a NIC's receive queue waits
  // for frames) move their buffers themselves: the worker calls service() instead of
  // handle() when such a queue is kicked, and whenever eventFd() is readable.
  virtual bool ownsQueues() const { return false; }
  // An fd that is readable when the device has work of its own (frames arrived), or -1
  // when it wants no such wake-up now (no receive buffers to put frames in). A device
  // that does not own its queues may have one too (vsock's host sockets): its service()
  // then takes the news and kicks the queues that can go on, which handle() serves.
  virtual int eventFd() const { return -1; }
  // Moves what it can; returns true when it stopped early with more to do (the worker
  // calls it again after the other queues had a turn).
  virtual bool service(QueueIo& /*io*/) { return false; }
};

}  // namespace hyve::virtio
