// The board: every platform device and every PCI emulation the machine can have, each
// named once in a table (board.cc), in the manner of kvmtool's dev_init and bhyve's
// PCI_EMUL_SET. The machine builds its devices by walking the tables, and its snapshot
// sections are the tables' section names, so adding a device is one table entry.
#pragma once

#include "core/guest_memory.h"
#include "core/io_bus.h"
#include "core/machine_control.h"
#include "hv/hypervisor.h"
#include "snapshot/snapshottable.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace hyve {

class Uart16550;
class PciBus;
class PciDevice;
class Hpet;
namespace virtio {
class VirtioConsole;
}
namespace snapshot {
struct Section;
}

enum class ConsolePort : uint32_t { Com1 = 0, Com2 = 1 };

// One PCI function to create, as xhyve's `-s slot[:function],emulation[,args]`.
struct PciDeviceSpec {
  uint32_t slot = 0;
  uint32_t function = 0;
  std::string emulation;  // a name in the PCI emulation table, e.g. "hostbridge"
  std::string args;       // emulation-specific; empty for none
};

// What device factories are given: the machine's parts they attach to.
struct BoardContext {
  hv::Vm& vm;  // the interrupt controller
  const GuestMemory& memory;
  MachineControl& control;
  IoBus& pio;
  IoBus& mmio;
  bool rtcUtc = true;
  // Console wiring: bytes a UART transmits, and "room appeared in its receive FIFO".
  std::function<void(ConsolePort, std::span<const uint8_t>)> consoleOutput;
  std::function<void(ConsolePort)> consoleDrained;
  // VMM notices for the user (a network backend that failed); may be empty.
  std::function<void(const std::string&)> log;
  // The directory of the snapshot being written or restored (empty otherwise): where
  // devices keep what does not fit the state file, such as a disk's contents.
  std::function<std::string()> snapshotDir;
};

class Board {
 public:
  // Builds every platform device and the PCI functions in `pciDevices` (empty: the
  // default board, a host bridge at 00:00.0 and the LPC bridge at 00:1f.0).
  // Throws Error(BadConfig) for an unknown emulation, a bad or taken slot, or arguments
  // an emulation does not take.
  Board(const BoardContext& context, std::vector<PciDeviceSpec> pciDevices);
  ~Board();
  Board(const Board&) = delete;
  Board& operator=(const Board&) = delete;

  Uart16550& uart(ConsolePort port) const;
  // Host input for a console: COM1's goes to a virtio-console that is the guest console
  // (`-s N,virtio-console,console`), if the board has one. Returns the bytes taken.
  size_t pushConsoleInput(ConsolePort port, std::span<const uint8_t> bytes) const;
  PciBus& pci() const { return *pci_; }
  Hpet& hpet() const { return *hpet_; }

  // Snapshots: devices that work off the vCPU threads (virtio) stop touching guest memory
  // until resumeDevices(); call with every vCPU parked.
  void pauseDevices();
  void resumeDevices();

  // Every device's snapshot section, in table order (platform devices, then PCI functions).
  const std::vector<std::unique_ptr<snapshot::Snapshottable>>& sections() const { return sections_; }

  // The PCI functions a snapshot holds, from its section names (the inverse of the names
  // sections() gives), without arguments: a restore gives them anew (withArguments()).
  static std::vector<PciDeviceSpec> pciDevicesFromSections(const std::vector<std::string>& names);

  // The snapshot's functions with the arguments `given` has for them (same slot, function
  // and emulation), e.g. a restored NIC's port forwards. Throws Error(BadSnapshot) for an
  // entry of `given` the snapshot does not have.
  static std::vector<PciDeviceSpec> withArguments(std::vector<PciDeviceSpec> fromSnapshot, const std::vector<PciDeviceSpec>& given);

  // A snapshot's virtio-console functions with what each was saved with (port 0's role,
  // the port names): a restoring caller gives each copy sockets of its own for them, as
  // the function's arguments. Throws Error(BadSnapshot) for a section it cannot read.
  struct SavedConsole {
    PciDeviceSpec function;
    bool console = false;
    std::vector<std::string> ports;
  };
  static std::vector<SavedConsole> consolesInSnapshot(const std::vector<snapshot::Section>& sections);

  // The default board's PCI functions.
  static std::vector<PciDeviceSpec> defaultPciDevices();

 private:
  struct Factories;  // the platform-device factories in board.cc

  std::vector<std::shared_ptr<void>> devices_;  // owners, in build order
  std::vector<std::unique_ptr<snapshot::Snapshottable>> sections_;
  std::vector<PciDevice*> pciFunctions_;  // owned by the PCI bus
  Uart16550* com1_ = nullptr;
  Uart16550* com2_ = nullptr;
  PciBus* pci_ = nullptr;
  Hpet* hpet_ = nullptr;
  virtio::VirtioConsole* virtioConsole_ = nullptr;  // owned by the PCI bus
};

}  // namespace hyve
