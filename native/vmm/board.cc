#include "vmm/board.h"

#include "ahci/ahci_hba.h"
#include "ahci/ata_disk.h"
#include "ahci/atapi_cd.h"
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
#include "net/slirp_backend.h"
#include "net/tap_backend.h"
#include "snapshot/snapshot_file.h"
#include "util/error.h"
#include "virtio/blk/virtio_blk.h"
#include "virtio/net/virtio_net.h"
#include "virtio/console/virtio_console.h"
#include "virtio/rng/virtio_rng.h"
#include "virtio/virtio_pci.h"
#include "virtio/vsock/virtio_vsock.h"

#include <sys/random.h>

#include <algorithm>
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
  auto pci = std::make_unique<virtio::VirtioPci>(std::move(device), context.memory, context.vm, &context.vm);
  pci->setSnapshotDirectory(context.snapshotDir);
  return pci;
}

bool restoring(const BoardContext& context) { return context.snapshotDir && !context.snapshotDir().empty(); }

std::unique_ptr<PciDevice> virtioRnd(const PciDeviceSpec& spec, const BoardContext& context) {
  noArguments(spec);
  return virtioPci(std::make_unique<virtio::VirtioRng>(), context);
}

// The comma-separated options after an emulation's name.
std::vector<std::string> splitOptions(const std::string& args) {
  std::vector<std::string> options;
  for (size_t at = 0; at <= args.size() && !args.empty();) {
    size_t comma = args.find(',', at);
    options.push_back(args.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return options;
}

// xhyve's "path[,ro]", plus hyve's "ephemeral" and "serial=ID" options, for any disk emulation.
DiskOptions diskOptions(const PciDeviceSpec& spec) {
  const std::string& name = spec.emulation;
  std::vector<std::string> options = splitOptions(spec.args);
  DiskOptions disk;
  if (options.empty() || options.front().empty()) {
    throw Error(ErrorCode::BadConfig, name + " needs a disk image: -s N," + name + ",path[,ro]");
  }
  disk.path = options.front();
  for (size_t i = 1; i < options.size(); ++i) {
    const std::string& option = options[i];
    if (option == "ro") disk.readOnly = true;
    else if (option == "ephemeral") disk.ephemeral = true;
    else if (option.rfind("serial=", 0) == 0) disk.serial = option.substr(7);
    else throw Error(ErrorCode::BadConfig, name + " option '" + option + "' is not one of ro, ephemeral, serial=ID");
  }
  if (disk.serial.size() > 20) throw Error(ErrorCode::BadConfig, name + " serial '" + disk.serial + "' is longer than 20 bytes");
  return disk;
}

std::unique_ptr<PciDevice> virtioBlk(const PciDeviceSpec& spec, const BoardContext& context) {
  // A restore rebuilds the function from its section name: the disk comes from the snapshot.
  if (spec.args.empty() && restoring(context)) return virtioPci(std::make_unique<virtio::VirtioBlk>(), context);
  DiskOptions disk = diskOptions(spec);
  auto raw = std::make_unique<RawDisk>(disk);
  return virtioPci(std::make_unique<virtio::VirtioBlk>(std::move(raw), disk.serial), context);
}

// An AHCI controller with one port, as xhyve's ahci-hd and ahci-cd give.
// A restore rebuilds it from its section name, the drive's medium from the snapshot.
std::unique_ptr<PciDevice> ahciController(std::unique_ptr<ahci::AtaDrive> drive, const BoardContext& context) {
  std::vector<std::unique_ptr<ahci::AtaDrive>> drives;
  drives.push_back(std::move(drive));
  auto hba = std::make_unique<ahci::AhciHba>(std::move(drives), context.memory, context.vm);
  hba->setSnapshotDirectory(context.snapshotDir);
  return hba;
}

std::unique_ptr<PciDevice> ahciHd(const PciDeviceSpec& spec, const BoardContext& context) {
  if (spec.args.empty() && restoring(context)) return ahciController(std::make_unique<ahci::AtaDisk>(nullptr, ""), context);
  DiskOptions disk = diskOptions(spec);
  return ahciController(std::make_unique<ahci::AtaDisk>(std::make_unique<RawDisk>(disk), disk.serial), context);
}

// A CD is read-only whatever the options say.
std::unique_ptr<PciDevice> ahciCd(const PciDeviceSpec& spec, const BoardContext& context) {
  if (spec.args.empty() && restoring(context)) return ahciController(std::make_unique<ahci::AtapiCd>(nullptr), context);
  DiskOptions disk = diskOptions(spec);
  disk.readOnly = true;
  disk.ephemeral = false;
  return ahciController(std::make_unique<ahci::AtapiCd>(std::make_unique<RawDisk>(disk)), context);
}

// "mac=xx:xx:xx:xx:xx:xx" (the CLI always passes the one -M prints), else a random
// locally administered unicast address.
std::array<uint8_t, 6> macOption(const std::string& emulation, const std::string& text) {
  std::array<uint8_t, 6> mac{};
  if (text.empty()) {
    if (::getrandom(mac.data(), mac.size(), 0) != static_cast<ssize_t>(mac.size())) throw Error(ErrorCode::Internal, "getrandom failed");
    mac[0] = static_cast<uint8_t>((mac[0] & 0xfc) | 0x02);
    return mac;
  }
  unsigned b[6];
  char tail = 0;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6 || (b[0] & 1)) {
    throw Error(ErrorCode::BadConfig, emulation + ": mac=" + text + " is not a unicast xx:xx:xx:xx:xx:xx address");
  }
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
  return mac;
}

// "fwd=[tcp:|udp:]HOSTPORT:GUESTPORT": a host port on 127.0.0.1 forwarded to the guest.
net::PortForward forwardOption(const std::string& text) {
  net::PortForward f;
  std::string rest = text;
  if (rest.rfind("udp:", 0) == 0 || rest.rfind("tcp:", 0) == 0) {
    f.udp = rest[0] == 'u';
    rest = rest.substr(4);
  }
  unsigned host = 0, guest = 0;
  char tail = 0;
  if (std::sscanf(rest.c_str(), "%5u:%5u%c", &host, &guest, &tail) != 2 || host == 0 || host > 65535 || guest == 0 || guest > 65535) {
    throw Error(ErrorCode::BadConfig, "virtio-net: fwd=" + text + " is not [tcp:|udp:]HOSTPORT:GUESTPORT with ports 1-65535");
  }
  f.hostPort = static_cast<uint16_t>(host);
  f.guestPort = static_cast<uint16_t>(guest);
  return f;
}

std::unique_ptr<PciDevice> virtioTap(const PciDeviceSpec& spec, const BoardContext& context);

// xhyve's "-s N,virtio-net" on the user-mode backend, with "mac=" and "fwd=" options;
// bhyve's "virtio-net,tapX" (a name first, not an option) is the tap backend.
std::unique_ptr<PciDevice> virtioNet(const PciDeviceSpec& spec, const BoardContext& context) {
  if (!spec.args.empty() && spec.args.substr(0, spec.args.find(',')).find('=') == std::string::npos) return virtioTap(spec, context);
  std::string mac;
  std::vector<net::PortForward> forwards;
  for (const std::string& option : splitOptions(spec.args)) {
    if (option.rfind("mac=", 0) == 0) mac = option.substr(4);
    else if (option.rfind("fwd=", 0) == 0) forwards.push_back(forwardOption(option.substr(4)));
    else throw Error(ErrorCode::BadConfig, "virtio-net option '" + option + "' is not one of mac=MAC, fwd=[tcp:|udp:]HOSTPORT:GUESTPORT");
  }
  auto backend = std::make_unique<net::SlirpBackend>(forwards);
  return virtioPci(std::make_unique<virtio::VirtioNet>(macOption("virtio-net", mac), std::move(backend), context.log), context);
}

// xhyve's "-s N,virtio-tap,tapX", with a "mac=" option.
std::unique_ptr<PciDevice> virtioTap(const PciDeviceSpec& spec, const BoardContext& context) {
  auto options = splitOptions(spec.args);
  if (options.empty() || options[0].empty()) throw Error(ErrorCode::BadConfig, "virtio-tap needs a tap device: -s N,virtio-tap,tap0");
  std::string mac;
  for (size_t i = 1; i < options.size(); ++i) {
    if (options[i].rfind("mac=", 0) == 0) mac = options[i].substr(4);
    else throw Error(ErrorCode::BadConfig, "virtio-tap option '" + options[i] + "' is not mac=MAC");
  }
  auto backend = std::make_unique<net::TapBackend>(options[0]);
  return virtioPci(std::make_unique<virtio::VirtioNet>(macOption("virtio-tap", mac), std::move(backend), context.log), context);
}

// "[console][,name=/socket/path...]": port 0 as the guest console (hvc0) on the COM1
// stream, and named ports on UNIX sockets (bhyve's spelling).
std::unique_ptr<PciDevice> virtioConsole(const PciDeviceSpec& spec, const BoardContext& context) {
  auto config = virtio::VirtioConsole::parseArgs(spec.args);
  if (config.console) {
    config.consoleOutput = [out = context.consoleOutput](std::span<const uint8_t> bytes) { out(ConsolePort::Com1, bytes); };
    config.consoleDrained = [drained = context.consoleDrained] { drained(ConsolePort::Com1); };
  }
  return virtioPci(std::make_unique<virtio::VirtioConsole>(std::move(config)), context);
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
    {"ahci-hd", ahciHd},
    {"ahci-cd", ahciCd},
    {"virtio-net", virtioNet},
    {"virtio-tap", virtioTap},
    {"virtio-console", virtioConsole},
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
    if (auto* virtio = dynamic_cast<virtio::VirtioPci*>(&device)) {
      auto* console = dynamic_cast<virtio::VirtioConsole*>(&virtio->device());
      if (console && console->isGuestConsole()) {
        if (virtioConsole_) throw Error(ErrorCode::BadConfig, "only one virtio-console can be the guest console");
        virtioConsole_ = console;
      }
    }
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

size_t Board::pushConsoleInput(ConsolePort port, std::span<const uint8_t> bytes) const {
  if (port == ConsolePort::Com1 && virtioConsole_) return virtioConsole_->pushConsoleInput(bytes);
  return uart(port).pushInput(bytes);
}

std::vector<PciDeviceSpec> Board::defaultPciDevices() { return {{0, 0, "hostbridge", ""}, {31, 0, "lpc", ""}}; }

std::vector<PciDeviceSpec> Board::withArguments(std::vector<PciDeviceSpec> fromSnapshot, const std::vector<PciDeviceSpec>& given) {
  for (const auto& g : given) {
    auto same = [&](const PciDeviceSpec& s) { return s.slot == g.slot && s.function == g.function && s.emulation == g.emulation; };
    auto it = std::find_if(fromSnapshot.begin(), fromSnapshot.end(), same);
    if (it == fromSnapshot.end()) {
      throw Error(ErrorCode::BadSnapshot, "the snapshot has no " + g.emulation + " at slot " + std::to_string(g.slot) + "." +
                                              std::to_string(g.function) + " to give arguments to");
    }
    it->args = g.args;
  }
  return fromSnapshot;
}

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

std::vector<Board::SavedConsole> Board::consolesInSnapshot(const std::vector<snapshot::Section>& sections) {
  std::vector<SavedConsole> out;
  for (const auto& section : sections) {
    auto specs = pciDevicesFromSections({section.name});
    if (specs.empty() || specs[0].emulation != "virtio-console") continue;
    snapshot::StateReader in(section.data, "section '" + section.name + "'");
    auto state = virtio::VirtioPci::State::load(in);
    snapshot::StateReader device(state.device, "section '" + section.name + "' device state");
    auto config = virtio::VirtioConsole::savedConfig(device);
    SavedConsole saved{specs[0], config.console, {}};
    for (const auto& port : config.ports) saved.ports.push_back(port.name);
    out.push_back(std::move(saved));
  }
  return out;
}

}  // namespace hyve
