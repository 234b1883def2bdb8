#include "devices/pci/pci_bus.h"

#include "util/error.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <type_traits>

namespace hyve {

using namespace pci;

static_assert(std::is_trivially_copyable_v<PciBus::State>);

namespace {

constexpr uint32_t kConfigEnable = 0x80000000;
// Bits 30:24 are reserved and bits 1:0 select a type-0/1 cycle; neither is kept.
constexpr uint32_t kConfigAddressMask = 0x80fffffc;

bool isMemoryBar(BarKind kind) { return kind == BarKind::Memory32 || kind == BarKind::Memory64; }
bool isDecodedBar(BarKind kind) { return kind == BarKind::Io || isMemoryBar(kind); }

std::string functionName(unsigned devfn) {
  char name[32];
  std::snprintf(name, sizeof(name), "pci 00:%02x.%u", (devfn >> 3) & 0x1f, devfn & 7);
  return name;
}

// One BAR's region inside a window; forwards in-bounds accesses to the device.
class BarRegion final : public BusDevice {
 public:
  BarRegion(PciDevice& device, unsigned index, uint64_t size) : device_(device), index_(index), size_(size) {}
  void read(uint64_t offset, std::span<uint8_t> data) override {
    if (inBounds(offset, data.size())) {
      device_.barRead(index_, offset, data);
    } else {
      std::fill(data.begin(), data.end(), 0xff);
    }
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    if (inBounds(offset, data.size())) device_.barWrite(index_, offset, data);
  }

 private:
  bool inBounds(uint64_t offset, uint64_t length) const { return offset < size_ && length <= size_ - offset; }
  PciDevice& device_;
  unsigned index_;
  uint64_t size_;
};

}  // namespace

struct PciBus::Function {
  std::unique_ptr<InterruptController> intxSource;
  std::vector<std::unique_ptr<BarRegion>> regions;  // by BAR index; null for unused BARs
  std::array<std::optional<uint64_t>, kBarCount> mappedAt;
  std::string name;
  std::unique_ptr<PciDevice> device;  // last: destroyed first, while its IRQ source still exists
};

// Claims a whole address window on a machine bus and dispatches it to the BARs mapped in it.
// Unclaimed addresses read as all-ones, like a master abort.
class PciBus::Window final : public BusDevice {
 public:
  Window(uint64_t start, uint64_t end) : start_(start), end_(end) {}
  void read(uint64_t offset, std::span<uint8_t> data) override {
    if (!bars_.read(start_ + offset, data)) std::fill(data.begin(), data.end(), 0xff);
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override { bars_.write(start_ + offset, data); }

  bool contains(uint64_t address, uint64_t size) const {
    return address >= start_ && address < end_ && size <= end_ - address;
  }
  uint64_t start() const { return start_; }
  uint64_t length() const { return end_ - start_; }
  IoBus& bars() { return bars_; }

 private:
  uint64_t start_, end_;
  IoBus bars_;
};

class PciBus::ConfigAddressPort final : public BusDevice {
 public:
  explicit ConfigAddressPort(PciBus& bus) : bus_(bus) {}
  // Registered as one port, so offset is 0; only dword accesses reach the latch.
  void read(uint64_t, std::span<uint8_t> data) override {
    uint32_t value = 0xffffffff;
    if (data.size() == 4) {
      std::lock_guard lock(bus_.mutex_);
      value = bus_.state_.configAddress;
    }
    std::memset(data.data(), 0xff, data.size());
    std::memcpy(data.data(), &value, std::min<size_t>(data.size(), 4));
  }
  void write(uint64_t, std::span<const uint8_t> data) override {
    if (data.size() != 4) return;
    uint32_t value;
    std::memcpy(&value, data.data(), 4);
    std::lock_guard lock(bus_.mutex_);
    bus_.state_.configAddress = value & kConfigAddressMask;
  }

 private:
  PciBus& bus_;
};

class PciBus::ConfigDataPort final : public BusDevice {
 public:
  explicit ConfigDataPort(PciBus& bus) : bus_(bus) {}
  void read(uint64_t offset, std::span<uint8_t> data) override { bus_.readConfig(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override { bus_.writeConfig(offset, data); }

 private:
  PciBus& bus_;
};

// ORs the INTx levels of the functions sharing a GSI, so one deasserting does not drop
// another's interrupt. Each function drives its line through its own Source.
class PciBus::IntxRouter {
 public:
  class Source final : public InterruptController {
   public:
    explicit Source(IntxRouter& router) : router_(router) {}
    void setIrqLevel(uint32_t gsi, bool high) override { router_.drive(level_, gsi, high); }
    void signalMsi(uint64_t address, uint32_t data) override { router_.controller_.signalMsi(address, data); }

   private:
    IntxRouter& router_;
    bool level_ = false;  // guarded by the router's mutex
  };

  explicit IntxRouter(InterruptController& controller) : controller_(controller) {}

 private:
  void drive(bool& sourceLevel, uint32_t gsi, bool high) {
    if (gsi < layout::kPciIntxGsiBase || gsi >= layout::kPciIntxGsiBase + kIntxGsiCount) return;
    std::lock_guard lock(mutex_);
    if (sourceLevel == high) return;
    sourceLevel = high;
    unsigned& count = asserted_[gsi - layout::kPciIntxGsiBase];
    count = high ? count + 1 : count - 1;
    if (count == (high ? 1u : 0u)) controller_.setIrqLevel(gsi, high);
  }

  std::mutex mutex_;
  InterruptController& controller_;
  std::array<unsigned, kIntxGsiCount> asserted_{};
};

PciBus::PciBus(IoBus& pio, IoBus& mmio, InterruptController& interrupts)
    : pio_(pio),
      mmio_(mmio),
      intx_(std::make_unique<IntxRouter>(interrupts)),
      addressPort_(std::make_unique<ConfigAddressPort>(*this)),
      dataPort_(std::make_unique<ConfigDataPort>(*this)),
      ioWindow_(std::make_unique<Window>(kIoWindowStart, kIoWindowEnd)),
      memoryWindow_(std::make_unique<Window>(kMemoryWindowStart, kMemoryWindowEnd)) {
  pio_.add(layout::kPciConfigAddressPort, 1, addressPort_.get(), "pci-config-address");
  try {
    pio_.add(layout::kPciConfigDataPort, 4, dataPort_.get(), "pci-config-data");
    pio_.add(ioWindow_->start(), ioWindow_->length(), ioWindow_.get(), "pci-io");
    mmio_.add(memoryWindow_->start(), memoryWindow_->length(), memoryWindow_.get(), "pci-mmio");
  } catch (...) {
    unregister();
    throw;
  }
}

PciBus::~PciBus() { unregister(); }

void PciBus::unregister() {
  pio_.remove(layout::kPciConfigAddressPort, addressPort_.get());
  pio_.remove(layout::kPciConfigDataPort, dataPort_.get());
  pio_.remove(ioWindow_->start(), ioWindow_.get());
  mmio_.remove(memoryWindow_->start(), memoryWindow_.get());
}

void PciBus::addPciDevice(unsigned slot, unsigned function, std::unique_ptr<PciDevice> device) {
  if (!device) throw Error(ErrorCode::Internal, "null PCI device");
  if (slot >= kSlots || function >= kFunctions) {
    throw Error(ErrorCode::BadConfig, "PCI slot " + std::to_string(slot) + "." + std::to_string(function) +
                                          " is out of range (slots 0-31, functions 0-7)");
  }
  unsigned devfn = slot * kFunctions + function;
  std::lock_guard lock(mutex_);
  if (functions_[devfn]) throw Error(ErrorCode::BadConfig, functionName(devfn) + " is already taken");

  allocateBars(*device);

  auto entry = std::make_unique<Function>();
  entry->name = functionName(devfn);
  for (unsigned i = 0; i < kBarCount; ++i) {
    PciDevice::BarInfo info = device->bar(i);
    entry->regions.push_back(isDecodedBar(info.kind) ? std::make_unique<BarRegion>(*device, i, info.size) : nullptr);
  }
  IrqLine line;
  if (uint8_t pin = device->interruptPin(); pin != 0) {
    entry->intxSource = std::make_unique<IntxRouter::Source>(*intx_);
    line = IrqLine(entry->intxSource.get(), intxGsi(slot, pin - 1u));
    device->setConfig8(kInterruptLine, static_cast<uint8_t>(line.gsi()));
  }
  device->attach(this, line);

  // Functions other than 0 are only scanned if function 0 says the slot is multi-function.
  bool multiFunction = function != 0;
  for (unsigned f = 1; f < kFunctions && !multiFunction; ++f) multiFunction = functions_[slot * kFunctions + f] != nullptr;
  entry->device = std::move(device);
  functions_[devfn] = std::move(entry);
  if (PciDevice* first = functions_[slot * kFunctions] ? functions_[slot * kFunctions]->device.get() : nullptr;
      first && multiFunction) {
    first->setConfig8(kHeaderType, first->config8(kHeaderType) | kHeaderMultiFunction);
  }
  refreshBarMappingsLocked();
}

void PciBus::allocateBars(PciDevice& device) {
  // Largest first, each naturally aligned, so one device's BARs pack without gaps.
  std::array<unsigned, kBarCount> order;
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](unsigned a, unsigned b) { return device.bar(a).size > device.bar(b).size; });
  uint16_t command = 0;
  for (unsigned index : order) {
    PciDevice::BarInfo info = device.bar(index);
    if (!isDecodedBar(info.kind)) continue;
    bool io = info.kind == BarKind::Io;
    uint64_t& next = io ? nextIo_ : nextMemory_;
    const Window& window = io ? *ioWindow_ : *memoryWindow_;
    uint64_t address = (next + info.size - 1) & ~(info.size - 1);
    if (address < next || !window.contains(address, info.size)) {
      throw Error(ErrorCode::BadConfig, std::string("PCI ") + (io ? "I/O" : "memory") + " window is full");
    }
    device.assignBarAddress(index, address);
    next = address + info.size;
    command |= io ? kCommandIo : kCommandMemory;
  }
  device.setConfig16(kCommand, device.config16(kCommand) | command);
}

uint32_t PciBus::intxGsi(uint32_t slot, uint32_t pin) const {
  // The classic swizzle, so neighbouring slots spread over the lines.
  return layout::kPciIntxGsiBase + (slot + pin) % kIntxGsiCount;
}

PciBus::State PciBus::saveState() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void PciBus::restoreState(const State& state) {
  std::lock_guard lock(mutex_);
  state_.configAddress = state.configAddress & kConfigAddressMask;
}

PciDevice* PciBus::addressedDevice(uint32_t& configOffset) const {
  uint32_t address = state_.configAddress;
  if (!(address & kConfigEnable)) return nullptr;
  if ((address >> 16 & 0xff) != 0) return nullptr;  // only bus 0 exists
  const auto& entry = functions_[address >> 8 & 0xff];
  configOffset = address & 0xfc;
  return entry ? entry->device.get() : nullptr;
}

void PciBus::readConfig(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (offset >= 4) return;
  // Bytes past 0xcff are not part of the data register.
  auto inRegister = data.first(std::min<size_t>(data.size(), 4 - offset));
  std::lock_guard lock(mutex_);
  uint32_t configOffset = 0;
  if (PciDevice* device = addressedDevice(configOffset)) {
    device->configRead(configOffset + static_cast<uint32_t>(offset), inRegister);
  }
}

void PciBus::writeConfig(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= 4) return;
  auto inRegister = data.first(std::min<size_t>(data.size(), 4 - offset));
  std::lock_guard lock(mutex_);
  uint32_t configOffset = 0;
  PciDevice* device = addressedDevice(configOffset);
  if (device && device->configWrite(configOffset + static_cast<uint32_t>(offset), inRegister)) {
    refreshBarMappingsLocked();
  }
}

void PciBus::refreshBarMappings() {
  std::lock_guard lock(mutex_);
  refreshBarMappingsLocked();
}

std::optional<uint64_t> PciBus::wantedBarAddress(const PciDevice& device, unsigned bar) const {
  PciDevice::BarInfo info = device.bar(bar);
  if (!isDecodedBar(info.kind) || !device.barDecodeEnabled(bar)) return std::nullopt;
  uint64_t address = device.barAddress(bar);
  const Window& window = info.kind == BarKind::Io ? *ioWindow_ : *memoryWindow_;
  // Address 0 is what an unprogrammed BAR holds; anything outside the window (RAM, other
  // devices) is refused by simply not decoding it.
  if (address == 0 || !window.contains(address, info.size)) return std::nullopt;
  return address;
}

void PciBus::refreshBarMappingsLocked() {
  struct Wanted {
    Function* function;
    unsigned bar;
    uint64_t address;
  };
  std::vector<Wanted> toMap;
  // First drop every region that moved or stopped decoding, so the new places are free.
  for (auto& entry : functions_) {
    if (!entry) continue;
    for (unsigned bar = 0; bar < kBarCount; ++bar) {
      if (!entry->regions[bar]) continue;
      std::optional<uint64_t> wanted = wantedBarAddress(*entry->device, bar);
      auto& mapped = entry->mappedAt[bar];
      if (mapped && mapped != wanted) {
        Window& window = entry->device->bar(bar).kind == BarKind::Io ? *ioWindow_ : *memoryWindow_;
        window.bars().remove(*mapped, entry->regions[bar].get());
        mapped.reset();
      }
      if (wanted && !mapped) toMap.push_back(Wanted{entry.get(), bar, *wanted});
    }
  }
  // Then map what is wanted; a region that would overlap one already decoding is refused
  // (stays dark) until it or the other moves.
  for (const Wanted& w : toMap) {
    PciDevice::BarInfo info = w.function->device->bar(w.bar);
    bool io = info.kind == BarKind::Io;
    bool overlaps = false;
    for (const auto& other : functions_) {
      if (!other) continue;
      for (unsigned bar = 0; bar < kBarCount && !overlaps; ++bar) {
        if (!other->mappedAt[bar]) continue;
        PciDevice::BarInfo otherInfo = other->device->bar(bar);
        if ((otherInfo.kind == BarKind::Io) != io) continue;
        uint64_t otherStart = *other->mappedAt[bar];
        overlaps = w.address < otherStart + otherInfo.size && otherStart < w.address + info.size;
      }
    }
    if (overlaps) continue;
    Window& window = io ? *ioWindow_ : *memoryWindow_;
    window.bars().add(w.address, info.size, w.function->regions[w.bar].get(),
                      w.function->name + " bar" + std::to_string(w.bar));
    w.function->mappedAt[w.bar] = w.address;
  }
}

}  // namespace hyve
