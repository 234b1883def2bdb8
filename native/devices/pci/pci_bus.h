// PCI bus 0: configuration mechanism #1 (ports 0xcf8/0xcfc), BAR decoding, INTx routing.
//
// BARs decode inside two fixed windows the bus claims on the machine's buses once, at
// construction: I/O [kIoWindowStart, kIoWindowEnd) and memory [kPciMmioStart, kPciMmioEnd).
// Inside them the bus keeps its own IoBus per window and moves BAR regions there when the
// guest reprograms a BAR or the command register. Re-registering on the machine's IoBus
// instead would deadlock: the config write that moves an I/O BAR arrives through that very
// bus, which holds its lock while calling us. The windows also keep BARs out of RAM and off
// other devices by construction; ACPI's _CRS should describe exactly these windows.
#pragma once

#include "core/interrupts.h"
#include "core/io_bus.h"
#include "core/layout.h"
#include "devices/pci/pci_device.h"
#include "snapshot/state_io.h"

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace hyve {

namespace pci {
constexpr unsigned kSlots = 32;
constexpr unsigned kFunctions = 8;
constexpr uint64_t kIoWindowStart = 0xc000;
constexpr uint64_t kIoWindowEnd = 0x10000;
constexpr uint64_t kMemoryWindowStart = layout::kPciMmioStart;
constexpr uint64_t kMemoryWindowEnd = layout::kPciMmioEnd;
// INTx uses the first four PCI IOAPIC inputs (16-19); the HPET's timers route to 20-23.
constexpr uint32_t kIntxGsiCount = 4;
}  // namespace pci

class PciBus final : private PciDeviceHost {
 public:
  struct State {
    uint32_t configAddress = 0;  // the 0xcf8 latch
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  // Claims 0xcf8 (one port: 0xcf9 is the reset control register), 0xcfc-0xcff and both
  // windows on `pio`/`mmio`, which must outlive the bus. INTx goes to `interrupts`.
  PciBus(IoBus& pio, IoBus& mmio, InterruptController& interrupts);
  ~PciBus() override;
  PciBus(const PciBus&) = delete;
  PciBus& operator=(const PciBus&) = delete;

  // Machine build time: places `device` at 00:slot.function, assigns its BARs from the
  // windows (and enables their decoding, as firmware would) and wires its INTx pin.
  // Throws Error(BadConfig) if the slot/function is invalid or taken, or the windows are full.
  // Linux only scans functions 1-7 of a slot whose function 0 exists.
  template <typename T>
  T& addDevice(unsigned slot, unsigned function, std::unique_ptr<T> device) {
    T& added = *device;
    addPciDevice(slot, function, std::unique_ptr<PciDevice>(std::move(device)));
    return added;
  }

  // GSI of INTx pin `pin` (0-3: INTA-INTD) of `slot`; independent of the function, so a
  // per-slot ACPI _PRT entry or MP-table entry describes every function.
  uint32_t intxGsi(uint32_t slot, uint32_t pin) const;

  State saveState() const;
  void restoreState(const State& state);

 private:
  class ConfigAddressPort;
  class ConfigDataPort;
  class Window;
  class IntxRouter;
  struct Function;

  void unregister();
  void addPciDevice(unsigned slot, unsigned function, std::unique_ptr<PciDevice> device);
  void allocateBars(PciDevice& device);
  void readConfig(uint64_t offset, std::span<uint8_t> data);
  void writeConfig(uint64_t offset, std::span<const uint8_t> data);
  PciDevice* addressedDevice(uint32_t& configOffset) const;  // mutex_ held
  void refreshBarMappings() override;
  void refreshBarMappingsLocked();
  std::optional<uint64_t> wantedBarAddress(const PciDevice& device, unsigned bar) const;

  IoBus& pio_;
  IoBus& mmio_;
  std::unique_ptr<IntxRouter> intx_;
  std::unique_ptr<ConfigAddressPort> addressPort_;
  std::unique_ptr<ConfigDataPort> dataPort_;
  std::unique_ptr<Window> ioWindow_;
  std::unique_ptr<Window> memoryWindow_;

  mutable std::mutex mutex_;  // serialises config accesses and BAR moves
  State state_;
  std::array<std::unique_ptr<Function>, pci::kSlots * pci::kFunctions> functions_;  // by devfn
  uint64_t nextIo_ = pci::kIoWindowStart;
  uint64_t nextMemory_ = pci::kMemoryWindowStart;
};

}  // namespace hyve
