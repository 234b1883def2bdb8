// The virtio 1.x PCI transport ("modern", device IDs 0x1040 + type, §4.1): common, notify,
// ISR and device configuration structures in BAR 4, reached through vendor capabilities
// (plus the pci_cfg window capability); MSI-X table and PBA in BAR 1; INTx while the driver
// leaves MSI-X off.
//
// Queue notifications are doorbells: the notify address of each queue is an eventfd the
// hypervisor signals itself (ioeventfd) when the backend can, or the vCPU thread signals it
// on the MMIO exit otherwise. One worker thread per device waits on them and serves the
// queues, so device work (disk I/O, getrandom) never runs on a vCPU thread. Interrupts go
// out as MSI messages through the interrupt controller (KVM_SIGNAL_MSI) or INTx.
//
// A malformed ring sets DEVICE_NEEDS_RESET (§2.1.2) and raises a configuration interrupt;
// the device serves nothing more until the driver resets it.
#pragma once

#include "core/guest_memory.h"
#include "core/interrupts.h"
#include "devices/pci/pci_device.h"
#include "hv/hypervisor.h"
#include "snapshot/state_io.h"
#include "util/unique_fd.h"
#include "virtio/virtio_device.h"
#include "virtio/virtqueue.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hyve::virtio {

// Device status bits (§2.1).
constexpr uint8_t kStatusAcknowledge = 1;
constexpr uint8_t kStatusDriver = 2;
constexpr uint8_t kStatusDriverOk = 4;
constexpr uint8_t kStatusFeaturesOk = 8;
constexpr uint8_t kStatusNeedsReset = 0x40;
constexpr uint8_t kStatusFailed = 0x80;
constexpr uint16_t kNoVector = 0xffff;

// Where the structures sit.
constexpr unsigned kMsixBar = 1;
constexpr unsigned kVirtioBar = 4;
constexpr uint64_t kMsixBarSize = 0x1000;
constexpr uint64_t kMsixPbaOffset = 0x800;
constexpr uint64_t kCommonOffset = 0x0000;
constexpr uint64_t kCommonSize = 0x38;
constexpr uint64_t kIsrOffset = 0x1000;
constexpr uint64_t kDeviceConfigOffset = 0x2000;
constexpr uint64_t kDeviceConfigSize = 0x1000;
constexpr uint64_t kNotifyOffset = 0x3000;
constexpr uint32_t kNotifyMultiplier = 4;
constexpr uint64_t kVirtioBarSize = 0x4000;

class VirtioPci final : public PciDevice {
 public:
  struct Transport {
    uint32_t deviceFeatureSelect = 0;
    uint32_t driverFeatureSelect = 0;
    uint64_t driverFeatures = 0;
    uint16_t configMsixVector = kNoVector;
    uint8_t status = 0;
    uint8_t configGeneration = 0;
    uint16_t queueSelect = 0;
    uint8_t isr = 0;
    std::vector<uint8_t> msixTable;  // 16 bytes per vector
    std::vector<uint8_t> msixPending;  // the PBA, one bit per vector
  };
  struct State {
    PciDevice::State pci;
    Transport transport;
    std::vector<SplitQueue::State> queues;
    void save(snapshot::StateWriter& out) const;
    static State load(snapshot::StateReader& in);
  };

  // `ioEvents` may be null (unit tests, backends without doorbells). Without `worker`
  // nothing serves the queues but pollForTest() (unit tests).
  VirtioPci(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, InterruptController& interrupts,
            hv::IoEvents* ioEvents, bool worker = true);
  ~VirtioPci() override;

  void barRead(unsigned bar, uint64_t offset, std::span<uint8_t> data) override;
  void barWrite(unsigned bar, uint64_t offset, std::span<const uint8_t> data) override;
  void pauseDevice() override;
  void resumeDevice() override;
  std::unique_ptr<snapshot::Snapshottable> snapshotSection(std::string name) override;

  // Serves every queue with pending notifications now, on the calling thread (tests).
  void pollForTest();

  State saveState() const;
  // Throws Error(BadSnapshot) on a queue count, vector count or queue size that does not
  // fit this device.
  void restoreState(const State& state);

  VirtioDevice& device() { return *device_; }
  const VirtioDevice& device() const { return *device_; }
  // Why the device last set NEEDS_RESET (empty: never).
  std::string lastError() const {
    std::lock_guard lock(mutex_);
    return lastError_;
  }

 protected:
  void configWriteHook(uint32_t offset, uint32_t size) override;

 private:
  uint16_t vectorCount() const { return static_cast<uint16_t>(queues_.size() + 1); }
  uint64_t offeredFeatures() const;
  void readCommon(uint64_t offset, std::span<uint8_t> data);  // mutex_ held
  void writeCommon(uint64_t offset, std::span<const uint8_t> data);  // mutex_ held
  void setStatus(uint8_t status);  // mutex_ held
  void resetLocked();
  void enableQueue(unsigned index);
  void failed(const std::string& why);  // mutex_ held: NEEDS_RESET
  void serve(unsigned queue);          // mutex_ held
  void signal(uint16_t vector, uint8_t isrBit);  // mutex_ held
  bool msixEnabled(bool& functionMasked) const;
  void deliverPending();  // mutex_ held
  void kick(unsigned queue);
  void updateDoorbells();  // mutex_ held
  void clearDoorbells();   // mutex_ held
  void work();
  void serveDeviceEvents(bool ready);  // takes mutex_

  std::unique_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  InterruptController& interrupts_;
  hv::IoEvents* ioEvents_;
  uint8_t msixCap_ = 0;
  uint8_t pciCfgCap_ = 0;

  mutable std::mutex mutex_;  // the transport, the queues and the device's requests
  Transport transport_;
  std::vector<SplitQueue> queues_;
  bool paused_ = false;
  std::vector<bool> deferred_;  // kicks that arrived while paused
  uint64_t doorbellAddress_ = 0;
  std::string lastError_;  // where the ioeventfds are registered; 0: none

  std::vector<UniqueFd> doorbells_;  // one eventfd per queue
  UniqueFd stop_;
  std::thread worker_;
};

}  // namespace hyve::virtio
