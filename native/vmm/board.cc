#include "vmm/board.h"

#include "core/layout.h"
#include "devices/acpi_pm/acpi_pm.h"
#include "devices/acpi_pm/reset_control.h"
#include "devices/hpet/hpet.h"
#include "devices/i8042/i8042.h"
#include "devices/pci/host_bridge.h"
#include "devices/pci/lpc_bridge.h"
#include "devices/pci/pci_bus.h"
#include "devices/rtc/cmos_rtc.h"
#include "devices/uart/uart_16550.h"
#include "util/error.h"
#include "virtio/blk/virtio_blk.h"
#include "virtio/rng/virtio_rng.h"
#include "virtio/virtio_pci.h"
#include "virtio/vsock/virtio_vsock.h"

#include <array>
#include <cstdio>
#include <cstdlib>

namespace hyve {

namespace {

enum class Bus { Pio, Mmio, Own };  // Own: the device claims its ranges itself

struct Range {
  uint64_t base = 0;
  uint64_t length = 0;  // 0: unused
};

// What a factory hands back: the device, its bus regions (one per table range, in order)
// and the snapshot section that saves it.
struct Built {
  std::shared_ptr<void> device;
  std::vector<BusDevice*> regions;
  std::unique_ptr<snapshot::Snapshottable> state;
};

template <typename Device>
Built built(std::shared_ptr<Device> device, std::vector<BusDevice*> regions, const char* section) {
  auto state = std::make_unique<snapshot::DeviceState<Device>>(section, *device);
  return {std::move(device), std::move(regions), std::move(state)};
}

// ---- PCI emulations: bhyve's PCI_EMUL_SET ----

struct PciEmulation {
  const char* name;
  std::unique_ptr<PciDevice> (*create)(const PciDeviceSpec& spec, const BoardContext& context);
};

void noArguments(const PciDeviceSpec& spec) {
  if (!spec.args.empty()) {
    throw Error(ErrorCode::BadConfig, "PCI emulation '" + spec.emulation + "' takes no arguments, got '" + spec.args + "'");
  }
}

template <typename Device>
std::unique_ptr<PciDevice> withoutArguments(const PciDeviceSpec& spec, const BoardContext&) {
  noArguments(spec);
  return std::make_unique<Device>();
}

std::unique_ptr<PciDevice> virtioPci(std::unique_ptr<virtio::VirtioDevice> device, const BoardContext& context) {
  return std::make_unique<virtio::VirtioPci>(std::move(device), context.memory, context.vm, &context.vm);
}

std::unique_ptr<PciDevice> virtioRnd(const PciDeviceSpec& spec, const BoardContext& context) {
  noArguments(spec);
  return virtioPci(std::make_unique<virtio::VirtioRng>(), context);
}

// xhyve's "path[,ro]", plus hyve's "ephemeral" and "serial=ID" options.
std::unique_ptr<PciDevice> virtioBlk(const PciDeviceSpec& spec, const BoardContext& context) {
  DiskOptions disk;
  size_t comma = spec.args.find(',');
  disk.path = spec.args.substr(0, comma);
  if (disk.path.empty()) {
    throw Error(ErrorCode::BadConfig, "virtio-blk needs a disk image: -s N,virtio-blk,path[,ro] "
                                      "(a snapshot of a VM with disks cannot be restored yet)");
  }
  while (comma != std::string::npos) {
    size_t next = spec.args.find(',', comma + 1);
    std::string option = spec.args.substr(comma + 1, next == std::string::npos ? std::string::npos : next - comma - 1);
    if (option == "ro") disk.readOnly = true;
    else if (option == "ephemeral") disk.ephemeral = true;
    else if (option.rfind("serial=", 0) == 0) disk.serial = option.substr(7);
    else throw Error(ErrorCode::BadConfig, "virtio-blk option '" + option + "' is not one of ro, ephemeral, serial=ID");
    comma = next;
  }
  if (disk.serial.size() > 20) throw Error(ErrorCode::BadConfig, "virtio-blk serial '" + disk.serial + "' is longer than 20 bytes");
  auto raw = std::make_unique<RawDisk>(disk);
  return virtioPci(std::make_unique<virtio::VirtioBlk>(std::move(raw), disk.serial), context);
}

// "socket-path[,cid=N]": the host's UNIX socket (Firecracker's hybrid vsock) and the
// guest's CID (default 3).
std::unique_ptr<PciDevice> virtioVsock(const PciDeviceSpec& spec, const BoardContext& context) {
  size_t comma = spec.args.find(',');
  std::string path = spec.args.substr(0, comma);
  if (path.empty()) throw Error(ErrorCode::BadConfig, "virtio-vsock needs a socket path: -s N,virtio-vsock,path[,cid=N]");
  uint64_t cid = 3;
  if (comma != std::string::npos) {
    std::string option = spec.args.substr(comma + 1);
    char* end = nullptr;
    if (option.rfind("cid=", 0) == 0) cid = std::strtoull(option.c_str() + 4, &end, 10);
    if (!end || *end != '\0' || end == option.c_str() + 4) {
      throw Error(ErrorCode::BadConfig, "virtio-vsock option '" + option + "' is not cid=N");
    }
  }
  return virtioPci(std::make_unique<virtio::VirtioVsock>(path, cid), context);
}

constexpr PciEmulation kPciEmulations[] = {
    {"hostbridge", withoutArguments<HostBridge>},
    {"lpc", withoutArguments<LpcBridge>},
    {"virtio-rnd", virtioRnd},
    {"virtio-blk", virtioBlk},
    {"virtio-vsock", virtioVsock},
};

const PciEmulation& pciEmulation(const std::string& name) {
  for (const auto& emulation : kPciEmulations) {
    if (name == emulation.name) return emulation;
  }
  std::string known;
  for (const auto& emulation : kPciEmulations) known += (known.empty() ? "" : ", ") + std::string(emulation.name);
  throw Error(ErrorCode::BadConfig, "unknown PCI emulation '" + name + "' (hyve has: " + known + ")");
}

// "device:pci-00:1f.0:lpc": the bus address and the emulation, so a snapshot names the
// board it was taken on.
std::string pciSectionName(const PciDeviceSpec& spec) {
  char address[32];
  std::snprintf(address, sizeof address, "device:pci-00:%02x.%u:", spec.slot, spec.function);
  return address + spec.emulation;
}

}  // namespace

// ---- platform devices: kvmtool's dev_init ----

struct Board::Factories {
  using Factory = Built (*)(Board& board, const BoardContext& context, const char* section);

  struct PlatformDevice {
    const char* name;     // in exit statistics
    const char* section;  // snapshot section
    Bus bus;
    std::array<Range, 2> ranges;
    Factory build;
  };

  static Built uart(Board& board, const BoardContext& context, ConsolePort port, uint8_t irq, const char* section) {
    auto device = std::make_shared<Uart16550>(
        IrqLine(&context.vm, irq), [out = context.consoleOutput, port](std::span<const uint8_t> bytes) { out(port, bytes); },
        [drained = context.consoleDrained, port] { drained(port); });
    (port == ConsolePort::Com1 ? board.com1_ : board.com2_) = device.get();
    return built(device, {device.get()}, section);
  }
  static Built com1(Board& board, const BoardContext& context, const char* section) {
    return uart(board, context, ConsolePort::Com1, layout::kCom1Irq, section);
  }
  static Built com2(Board& board, const BoardContext& context, const char* section) {
    return uart(board, context, ConsolePort::Com2, layout::kCom2Irq, section);
  }
  static Built rtc(Board&, const BoardContext& context, const char* section) {
    uint64_t below4g = context.memory.lowRamEnd();
    auto device = std::make_shared<CmosRtc>(IrqLine(&context.vm, layout::kRtcIrq), context.rtcUtc, below4g,
                                            context.memory.totalBytes() - below4g);
    return built(device, {device.get()}, section);
  }
  static Built i8042(Board&, const BoardContext& context, const char* section) {
    auto device = std::make_shared<I8042>(context.control);
    return built(device, {&device->dataPort(), &device->commandPort()}, section);
  }
  static Built acpiPm(Board&, const BoardContext& context, const char* section) {
    auto device = std::make_shared<AcpiPm>(context.control);
    return built(device, {device.get()}, section);
  }
  static Built resetControl(Board&, const BoardContext& context, const char* section) {
    auto device = std::make_shared<ResetControl>(context.control);
    return built(device, {device.get()}, section);
  }
  static Built pciBus(Board& board, const BoardContext& context, const char* section) {
    auto device = std::make_shared<PciBus>(context.pio, context.mmio, context.vm);
    board.pci_ = device.get();
    return built(device, {}, section);
  }
  static Built hpet(Board& board, const BoardContext& context, const char* section) {
    auto device = std::make_shared<Hpet>(context.vm);
    board.hpet_ = device.get();
    return built(device, {device.get()}, section);
  }

  // Every platform device, once. Table order is build order and snapshot section order.
  static constexpr PlatformDevice kPlatform[] = {
      {"com1", "device:com1", Bus::Pio, {{{layout::kCom1Port, Uart16550::kPortCount}}}, com1},
      {"com2", "device:com2", Bus::Pio, {{{layout::kCom2Port, Uart16550::kPortCount}}}, com2},
      {"rtc", "device:rtc", Bus::Pio, {{{layout::kRtcPort, CmosRtc::kPortCount}}}, rtc},
      {"i8042", "device:i8042", Bus::Pio, {{{layout::kI8042DataPort, 1}, {layout::kI8042CommandPort, 1}}}, i8042},
      {"acpi-pm", "device:acpi-pm", Bus::Pio, {{{layout::kAcpiPmBase, AcpiPm::kLength}}}, acpiPm},
      {"reset", "device:reset-control", Bus::Pio, {{{layout::kResetControlPort, ResetControl::kLength}}}, resetControl},
      {"pci", "device:pci-bus", Bus::Own, {}, pciBus},  // 0xcf8/0xcfc and the BAR windows
      {"hpet", "device:hpet", Bus::Mmio, {{{layout::kHpetBase, layout::kHpetSize}}}, hpet},
  };
};

Board::Board(const BoardContext& context, std::vector<PciDeviceSpec> pciDevices) {
  for (const auto& entry : Factories::kPlatform) {
    Built part = entry.build(*this, context, entry.section);
    size_t region = 0;
    for (const Range& range : entry.ranges) {
      if (range.length == 0) continue;
      if (region >= part.regions.size()) throw Error(ErrorCode::Internal, std::string("board entry ") + entry.name + " has more ranges than regions");
      (entry.bus == Bus::Pio ? context.pio : context.mmio).add(range.base, range.length, part.regions[region++], entry.name);
    }
    if (region != part.regions.size()) throw Error(ErrorCode::Internal, std::string("board entry ") + entry.name + " has unplaced regions");
    devices_.push_back(std::move(part.device));
    sections_.push_back(std::move(part.state));
  }

  if (pciDevices.empty()) pciDevices = defaultPciDevices();
  for (const auto& spec : pciDevices) {
    PciDevice& device = pci_->addDevice(spec.slot, spec.function, pciEmulation(spec.emulation).create(spec, context));
    sections_.push_back(device.snapshotSection(pciSectionName(spec)));
    pciFunctions_.push_back(&device);
  }
}

Board::~Board() = default;

void Board::pauseDevices() {
  for (PciDevice* device : pciFunctions_) device->pauseDevice();
}

void Board::resumeDevices() {
  for (PciDevice* device : pciFunctions_) device->resumeDevice();
}

Uart16550& Board::uart(ConsolePort port) const { return port == ConsolePort::Com1 ? *com1_ : *com2_; }

std::vector<PciDeviceSpec> Board::defaultPciDevices() { return {{0, 0, "hostbridge", ""}, {31, 0, "lpc", ""}}; }

std::vector<PciDeviceSpec> Board::pciDevicesFromSections(const std::vector<std::string>& names) {
  std::vector<PciDeviceSpec> specs;
  for (const auto& name : names) {
    unsigned slot = 0, function = 0;
    int consumed = 0;
    if (std::sscanf(name.c_str(), "device:pci-00:%2x.%1u:%n", &slot, &function, &consumed) != 2 || consumed == 0) continue;
    specs.push_back({slot, function, name.substr(static_cast<size_t>(consumed)), ""});
  }
  return specs;
}

}  // namespace hyve
