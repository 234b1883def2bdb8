// A conventional PCI function (type-0 header) as the guest sees it through config space.
// Subclasses declare their identity, BARs and capabilities in their constructor and serve
// their BARs through barRead()/barWrite(); PciBus decides where the BARs decode.
#pragma once

#include "core/interrupts.h"
#include "snapshot/snapshottable.h"
#include "snapshot/state_io.h"

#include <array>
#include <cstdint>
#include <mutex>
#include <memory>
#include <span>
#include <string>

namespace hyve {

namespace pci {

constexpr unsigned kConfigSize = 256;
constexpr unsigned kBarCount = 6;

// Type-0 header offsets and bits (PCI Local Bus Specification 3.0, chapter 6).
constexpr uint8_t kVendorId = 0x00;
constexpr uint8_t kDeviceId = 0x02;
constexpr uint8_t kCommand = 0x04;
constexpr uint8_t kStatus = 0x06;
constexpr uint8_t kRevision = 0x08;
constexpr uint8_t kClassProgIf = 0x09;
constexpr uint8_t kCacheLineSize = 0x0c;
constexpr uint8_t kLatencyTimer = 0x0d;
constexpr uint8_t kHeaderType = 0x0e;
constexpr uint8_t kBar0 = 0x10;
constexpr uint8_t kSubsystemVendorId = 0x2c;
constexpr uint8_t kSubsystemId = 0x2e;
constexpr uint8_t kCapabilitiesPointer = 0x34;
constexpr uint8_t kInterruptLine = 0x3c;
constexpr uint8_t kInterruptPin = 0x3d;
constexpr uint8_t kFirstCapability = 0x40;

constexpr uint16_t kCommandIo = 1 << 0;
constexpr uint16_t kCommandMemory = 1 << 1;
constexpr uint16_t kCommandBusMaster = 1 << 2;
constexpr uint16_t kCommandIntxDisable = 1 << 10;
constexpr uint16_t kStatusInterrupt = 1 << 3;
constexpr uint16_t kStatusCapabilities = 1 << 4;
constexpr uint8_t kHeaderMultiFunction = 0x80;

constexpr uint8_t kCapabilityMsi = 0x05;
constexpr uint8_t kCapabilityVendor = 0x09;
constexpr uint8_t kCapabilityMsix = 0x11;
constexpr uint16_t kMsiControlEnable = 1 << 0;
constexpr uint16_t kMsiControl64Bit = 1 << 7;
constexpr uint16_t kMsiControlPerVectorMask = 1 << 8;
constexpr uint16_t kMsixControlFunctionMask = 1 << 14;
constexpr uint16_t kMsixControlEnable = 1 << 15;

enum class BarKind : uint8_t {
  None,
  Io,
  Memory32,
  Memory64,       // occupies this BAR and the next
  Memory64Upper,  // the upper half of the previous BAR
};

struct Identity {
  uint16_t vendorId = 0;
  uint16_t deviceId = 0;
  uint8_t revision = 0;
  uint8_t classCode = 0;  // base class
  uint8_t subclass = 0;
  uint8_t progIf = 0;
  uint16_t subsystemVendorId = 0;
  uint16_t subsystemId = 0;
};

struct MsiMessage {
  uint64_t address;
  uint32_t data;
};

}  // namespace pci

class PciDevice;

// What a device needs from the bus it sits on; implemented by PciBus.
class PciDeviceHost {
 public:
  virtual ~PciDeviceHost() = default;
  // Re-derives every BAR's bus registration from config space (after a restore).
  virtual void refreshBarMappings() = 0;
};

class PciDevice {
 public:
  struct BarInfo {
    pci::BarKind kind = pci::BarKind::None;
    bool prefetchable = false;
    uint64_t size = 0;  // power of two; for Memory64Upper the size of the pair
  };

  struct State {
    std::array<uint8_t, pci::kConfigSize> config{};
    std::array<BarInfo, pci::kBarCount> bars{};
    bool intxRequested = false;  // the device wants INTx asserted (before the disable bit)
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  virtual ~PciDevice() = default;
  PciDevice(const PciDevice&) = delete;
  PciDevice& operator=(const PciDevice&) = delete;

  // Config-space access by the bus; `offset + data.size()` beyond 256 reads all-ones / is ignored.
  // Returns true if the write may have changed where the BARs decode (BAR or command register).
  void configRead(uint32_t offset, std::span<uint8_t> data) const;
  bool configWrite(uint32_t offset, std::span<const uint8_t> data);

  // BAR accesses, already bounds-checked against the BAR size by the bus.
  // Called concurrently from vCPU threads: implementations lock themselves. They run under
  // the bus's window lock, so they must not call into PciBus (config space via the
  // config8()/setConfig*() helpers is fine).
  virtual void barRead(unsigned bar, uint64_t offset, std::span<uint8_t> data);
  virtual void barWrite(unsigned bar, uint64_t offset, std::span<const uint8_t> data);

  BarInfo bar(unsigned index) const;
  // Where the BAR currently points (flag bits stripped), whether or not decoding is enabled.
  uint64_t barAddress(unsigned index) const;
  // Whether the command register lets this BAR decode.
  bool barDecodeEnabled(unsigned index) const;
  // Firmware-style BAR programming at machine build time (no masking of address bits).
  void assignBarAddress(unsigned index, uint64_t address);
  uint8_t interruptPin() const;  // 0: none, 1-4: INTA-INTD

  // Wiring by the bus when the device is added.
  void attach(PciDeviceHost* host, IrqLine intx);

  State saveState() const;
  // Throws Error(BadSnapshot) if the BAR layout differs from this device's.
  void restoreState(const State& state);

  // The snapshot section that saves this function; a device with state beyond config
  // space (e.g. a virtio transport) returns its own.
  virtual std::unique_ptr<snapshot::Snapshottable> snapshotSection(std::string name);
  // Snapshots: stop touching guest memory (finish what is in flight first), and go on.
  // Called with every vCPU parked.
  virtual void pauseDevice() {}
  virtual void resumeDevice() {}

 protected:
  explicit PciDevice(const pci::Identity& identity);

  // Construction-time declarations.
  void setInterruptPin(uint8_t pin);  // 1-4: INTA-INTD
  void addIoBar(unsigned index, uint32_t size);
  void addMemoryBar(unsigned index, uint64_t size, bool is64Bit, bool prefetchable);
  // Appends a capability; `body` starts after the ID/next bytes, `writable` (same length or
  // empty) gives the guest-writable bits. Returns its config offset. Throws if space runs out.
  uint8_t addCapability(uint8_t id, std::span<const uint8_t> body, std::span<const uint8_t> writable = {});
  uint8_t addMsiCapability(unsigned vectorsLog2, bool is64Bit, bool perVectorMask);
  uint8_t addMsixCapability(uint16_t tableSize, unsigned tableBar, uint32_t tableOffset, unsigned pbaBar,
                            uint32_t pbaOffset);

  // Thread-safe config helpers for the device model (bypass the guest write mask).
  uint8_t config8(uint32_t offset) const;
  uint16_t config16(uint32_t offset) const;
  uint32_t config32(uint32_t offset) const;
  void setConfig8(uint32_t offset, uint8_t value);
  void setConfig16(uint32_t offset, uint16_t value);
  void setConfig32(uint32_t offset, uint32_t value);

  // MSI capability at `capOffset`: the message for `vector`, if MSI is enabled and it is in range.
  bool msiMessage(uint8_t capOffset, unsigned vector, pci::MsiMessage& message) const;

  // Drives INTx (level); honours the command register's INTx-disable bit and the status bit.
  void setIntx(bool asserted);

  // Runs after a guest config write has been applied, without the config lock held and
  // with the bus's config lock held: must not access config space through the bus.
  virtual void configWriteHook(uint32_t /*offset*/, uint32_t /*size*/) {}

 private:
  friend class PciBus;  // build-time header fixups (multi-function bit, interrupt line)

  uint32_t sanitizedBar(unsigned index, uint32_t raw) const;  // state_ locked
  void applyIntxLocked(bool force = false);

  mutable std::mutex mutex_;  // guards state_
  State state_;
  std::array<uint8_t, pci::kConfigSize> writeMask_{};  // guest-writable bits, outside the BARs
  uint8_t lastCapability_ = 0;
  uint32_t nextCapabilityOffset_ = pci::kFirstCapability;
  PciDeviceHost* host_ = nullptr;
  IrqLine intx_;
  bool intxDriven_ = false;
};

}  // namespace hyve
