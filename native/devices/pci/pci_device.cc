#include "devices/pci/pci_device.h"

#include "util/error.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <type_traits>

namespace hyve {

using namespace pci;

static_assert(std::is_trivially_copyable_v<PciDevice::State>, "snapshots copy State as bytes");

namespace {

bool isBarByte(uint32_t offset) { return offset >= kBar0 && offset < kBar0 + 4 * kBarCount; }

uint32_t load32(const std::array<uint8_t, kConfigSize>& bytes, uint32_t offset) {
  uint32_t value;
  std::memcpy(&value, &bytes[offset], 4);  // x86 hosts and PCI are both little-endian
  return value;
}

void store32(std::array<uint8_t, kConfigSize>& bytes, uint32_t offset, uint32_t value) {
  std::memcpy(&bytes[offset], &value, 4);
}

[[noreturn]] void badDeclaration(const std::string& what) {
  throw Error(ErrorCode::Internal, "PCI device declaration: " + what);
}

}  // namespace

PciDevice::PciDevice(const Identity& identity) {
  auto& c = state_.config;
  auto put16 = [&c](uint32_t offset, uint16_t value) {
    c[offset] = value & 0xff;
    c[offset + 1] = value >> 8;
  };
  put16(kVendorId, identity.vendorId);
  put16(kDeviceId, identity.deviceId);
  c[kRevision] = identity.revision;
  c[kClassProgIf] = identity.progIf;
  c[kClassProgIf + 1] = identity.subclass;
  c[kClassProgIf + 2] = identity.classCode;
  put16(kSubsystemVendorId, identity.subsystemVendorId);
  put16(kSubsystemId, identity.subsystemId);

  writeMask_[kCommand] = kCommandIo | kCommandMemory | kCommandBusMaster;
  writeMask_[kCommand + 1] = kCommandIntxDisable >> 8;
  writeMask_[kCacheLineSize] = 0xff;
  writeMask_[kLatencyTimer] = 0xff;
  writeMask_[kInterruptLine] = 0xff;
}

void PciDevice::configRead(uint32_t offset, std::span<uint8_t> data) const {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t at = uint64_t{offset} + i;
    data[i] = at < kConfigSize ? state_.config[at] : 0xff;
  }
}

bool PciDevice::configWrite(uint32_t offset, std::span<const uint8_t> data) {
  if (offset >= kConfigSize) return false;
  uint32_t size = static_cast<uint32_t>(std::min<size_t>(data.size(), kConfigSize - offset));
  bool mappingMayChange = false;
  {
    std::lock_guard lock(mutex_);
    auto& c = state_.config;
    uint16_t oldCommand = c[kCommand] | c[kCommand + 1] << 8;
    for (uint32_t i = 0; i < size; ++i) {
      uint32_t at = offset + i;
      if (isBarByte(at)) {
        // Merge into the whole BAR dword, then let the BAR's size decide which bits stick.
        uint32_t dword = at & ~3u;
        uint32_t raw = load32(c, dword);
        unsigned shift = (at & 3) * 8;
        raw = (raw & ~(0xffu << shift)) | uint32_t{data[i]} << shift;
        store32(c, dword, sanitizedBar((dword - kBar0) / 4, raw));
        mappingMayChange = true;
      } else {
        c[at] = (c[at] & ~writeMask_[at]) | (data[i] & writeMask_[at]);
      }
    }
    uint16_t newCommand = c[kCommand] | c[kCommand + 1] << 8;
    if (newCommand != oldCommand) {
      mappingMayChange = true;
      applyIntxLocked();
    }
  }
  configWriteHook(offset, size);
  return mappingMayChange;
}

void PciDevice::barRead(unsigned, uint64_t, std::span<uint8_t> data) { std::fill(data.begin(), data.end(), 0xff); }

void PciDevice::barWrite(unsigned, uint64_t, std::span<const uint8_t>) {}

PciDevice::BarInfo PciDevice::bar(unsigned index) const {
  std::lock_guard lock(mutex_);
  return index < kBarCount ? state_.bars[index] : BarInfo{};
}

uint64_t PciDevice::barAddress(unsigned index) const {
  std::lock_guard lock(mutex_);
  if (index >= kBarCount) return 0;
  uint32_t low = load32(state_.config, kBar0 + 4 * index);
  switch (state_.bars[index].kind) {
    case BarKind::Io:
      return low & ~3u;
    case BarKind::Memory32:
      return low & ~0xfu;
    case BarKind::Memory64:
      return (low & ~0xfu) | uint64_t{load32(state_.config, kBar0 + 4 * (index + 1))} << 32;
    default:
      return 0;
  }
}

bool PciDevice::barDecodeEnabled(unsigned index) const {
  uint16_t command = config16(kCommand);
  switch (bar(index).kind) {
    case BarKind::Io:
      return command & kCommandIo;
    case BarKind::Memory32:
    case BarKind::Memory64:
      return command & kCommandMemory;
    default:
      return false;
  }
}

void PciDevice::assignBarAddress(unsigned index, uint64_t address) {
  std::lock_guard lock(mutex_);
  if (index >= kBarCount) return;
  auto& c = state_.config;
  store32(c, kBar0 + 4 * index, sanitizedBar(index, static_cast<uint32_t>(address)));
  if (state_.bars[index].kind == BarKind::Memory64) {
    store32(c, kBar0 + 4 * (index + 1), sanitizedBar(index + 1, static_cast<uint32_t>(address >> 32)));
  }
}

uint8_t PciDevice::interruptPin() const { return config8(kInterruptPin); }

void PciDevice::attach(PciDeviceHost* host, IrqLine intx) {
  std::lock_guard lock(mutex_);
  host_ = host;
  intx_ = intx;
}

PciDevice::State PciDevice::saveState() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void PciDevice::restoreState(const State& state) {
  {
    std::lock_guard lock(mutex_);
    for (unsigned i = 0; i < kBarCount; ++i) {
      const BarInfo& mine = state_.bars[i];
      const BarInfo& theirs = state.bars[i];
      if (mine.kind != theirs.kind || mine.size != theirs.size || mine.prefetchable != theirs.prefetchable) {
        throw Error(ErrorCode::BadSnapshot, "does not match the device's BAR layout");
      }
    }
    state_ = state;
    // Re-drive the line unconditionally: the restored interrupt controller may not match.
    applyIntxLocked(/*force=*/true);
  }
  if (host_) host_->refreshBarMappings();
}

void PciDevice::setInterruptPin(uint8_t pin) {
  if (pin > 4) badDeclaration("interrupt pin must be 0-4");
  std::lock_guard lock(mutex_);
  state_.config[kInterruptPin] = pin;
}

void PciDevice::addIoBar(unsigned index, uint32_t size) {
  if (index >= kBarCount || state_.bars[index].kind != BarKind::None) badDeclaration("BAR index in use");
  if (!std::has_single_bit(size) || size < 4 || size > 256) badDeclaration("I/O BAR size must be 4-256, 2^n");
  std::lock_guard lock(mutex_);
  state_.bars[index] = BarInfo{BarKind::Io, false, size};
  store32(state_.config, kBar0 + 4 * index, sanitizedBar(index, 0));
}

void PciDevice::addMemoryBar(unsigned index, uint64_t size, bool is64Bit, bool prefetchable) {
  if (index >= kBarCount || state_.bars[index].kind != BarKind::None) badDeclaration("BAR index in use");
  if (!std::has_single_bit(size) || size < 16) badDeclaration("memory BAR size must be >= 16, 2^n");
  if (!is64Bit && size > (uint64_t{1} << 31)) badDeclaration("32-bit memory BAR larger than 2 GiB");
  if (is64Bit && (index + 1 >= kBarCount || state_.bars[index + 1].kind != BarKind::None)) {
    badDeclaration("64-bit BAR needs the next BAR free");
  }
  std::lock_guard lock(mutex_);
  state_.bars[index] = BarInfo{is64Bit ? BarKind::Memory64 : BarKind::Memory32, prefetchable, size};
  store32(state_.config, kBar0 + 4 * index, sanitizedBar(index, 0));
  if (is64Bit) {
    state_.bars[index + 1] = BarInfo{BarKind::Memory64Upper, prefetchable, size};
    store32(state_.config, kBar0 + 4 * (index + 1), 0);
  }
}

uint8_t PciDevice::addCapability(uint8_t id, std::span<const uint8_t> body, std::span<const uint8_t> writable) {
  if (!writable.empty() && writable.size() != body.size()) badDeclaration("capability mask length");
  uint32_t length = (2 + static_cast<uint32_t>(body.size()) + 3) & ~3u;
  uint32_t offset = nextCapabilityOffset_;
  if (offset + length > kConfigSize) badDeclaration("capabilities do not fit in config space");
  std::lock_guard lock(mutex_);
  auto& c = state_.config;
  c[offset] = id;
  c[offset + 1] = 0;
  std::copy(body.begin(), body.end(), c.begin() + offset + 2);
  if (!writable.empty()) std::copy(writable.begin(), writable.end(), writeMask_.begin() + offset + 2);
  if (lastCapability_ == 0) {
    c[kCapabilitiesPointer] = static_cast<uint8_t>(offset);
    c[kStatus] |= kStatusCapabilities;
  } else {
    c[lastCapability_ + 1] = static_cast<uint8_t>(offset);
  }
  lastCapability_ = static_cast<uint8_t>(offset);
  nextCapabilityOffset_ = offset + length;
  return static_cast<uint8_t>(offset);
}

uint8_t PciDevice::addMsiCapability(unsigned vectorsLog2, bool is64Bit, bool perVectorMask) {
  if (vectorsLog2 > 5) badDeclaration("MSI supports at most 32 vectors");
  // Layout after ID/next (MSI capability, PCI 3.0 6.8.1): control, address[, upper address],
  // data + 2 reserved[, mask bits, pending bits].
  uint8_t body[22] = {};
  uint8_t mask[22] = {};
  uint16_t control = static_cast<uint16_t>(vectorsLog2 << 1) | (is64Bit ? kMsiControl64Bit : 0) |
                     (perVectorMask ? kMsiControlPerVectorMask : 0);
  body[0] = control & 0xff;
  body[1] = control >> 8;
  mask[0] = kMsiControlEnable | 0x70;  // enable, multiple message enable
  size_t at = 2;
  std::memset(mask + at, 0xff, 4);
  mask[at] = 0xfc;  // address is dword-aligned
  at += 4;
  if (is64Bit) {
    std::memset(mask + at, 0xff, 4);
    at += 4;
  }
  mask[at] = mask[at + 1] = 0xff;  // message data
  at += 4;
  if (perVectorMask) {
    uint32_t vectorBits = vectorsLog2 == 5 ? ~0u : (1u << (1u << vectorsLog2)) - 1;
    std::memcpy(mask + at, &vectorBits, 4);
    at += 8;  // mask, then read-only pending bits
  }
  return addCapability(kCapabilityMsi, std::span(body, at), std::span(mask, at));
}

uint8_t PciDevice::addMsixCapability(uint16_t tableSize, unsigned tableBar, uint32_t tableOffset,
                                     unsigned pbaBar, uint32_t pbaOffset) {
  if (tableSize == 0 || tableSize > 2048) badDeclaration("MSI-X table size must be 1-2048");
  if (tableBar >= kBarCount || pbaBar >= kBarCount || (tableOffset | pbaOffset) & 7) {
    badDeclaration("MSI-X table/PBA location");
  }
  uint16_t control = tableSize - 1;
  uint32_t table = tableOffset | tableBar;
  uint32_t pba = pbaOffset | pbaBar;
  uint8_t body[10] = {};
  uint8_t mask[10] = {};
  std::memcpy(body, &control, 2);
  std::memcpy(body + 2, &table, 4);
  std::memcpy(body + 6, &pba, 4);
  mask[1] = (kMsixControlEnable | kMsixControlFunctionMask) >> 8;
  return addCapability(kCapabilityMsix, body, mask);
}

uint8_t PciDevice::config8(uint32_t offset) const {
  uint8_t value;
  configRead(offset, std::span(&value, 1));
  return value;
}

uint16_t PciDevice::config16(uint32_t offset) const {
  uint8_t bytes[2];
  configRead(offset, bytes);
  return static_cast<uint16_t>(bytes[0] | bytes[1] << 8);
}

uint32_t PciDevice::config32(uint32_t offset) const {
  uint8_t bytes[4];
  configRead(offset, bytes);
  return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
}

void PciDevice::setConfig8(uint32_t offset, uint8_t value) {
  std::lock_guard lock(mutex_);
  if (offset < kConfigSize) state_.config[offset] = value;
}

void PciDevice::setConfig16(uint32_t offset, uint16_t value) {
  std::lock_guard lock(mutex_);
  if (offset + 2 > kConfigSize) return;
  state_.config[offset] = value & 0xff;
  state_.config[offset + 1] = value >> 8;
}

void PciDevice::setConfig32(uint32_t offset, uint32_t value) {
  std::lock_guard lock(mutex_);
  if (offset + 4 <= kConfigSize) store32(state_.config, offset, value);
}

bool PciDevice::msiMessage(uint8_t capOffset, unsigned vector, MsiMessage& message) const {
  std::lock_guard lock(mutex_);
  const auto& c = state_.config;
  if (capOffset + 12u > kConfigSize || c[capOffset] != kCapabilityMsi) return false;
  uint16_t control = c[capOffset + 2] | c[capOffset + 3] << 8;
  if (!(control & kMsiControlEnable)) return false;
  bool is64Bit = control & kMsiControl64Bit;
  uint32_t dataOffset = capOffset + (is64Bit ? 12 : 8);
  bool perVectorMask = control & kMsiControlPerVectorMask;
  if (dataOffset + (perVectorMask ? 8u : 4u) > kConfigSize) return false;
  unsigned capable = (control >> 1) & 7;
  unsigned enabled = std::min((control >> 4) & 7u, capable);  // the guest may write garbage
  if (enabled > 5 || vector >= (1u << enabled)) return false;
  if (perVectorMask && (load32(c, dataOffset + 4) >> vector & 1)) return false;  // pending bits not kept
  message.address = load32(c, capOffset + 4) | (is64Bit ? uint64_t{load32(c, capOffset + 8)} << 32 : 0);
  uint32_t data = c[dataOffset] | c[dataOffset + 1] << 8;
  message.data = (data & ~((1u << enabled) - 1)) | vector;  // multiple messages vary the low bits
  return true;
}

void PciDevice::setIntx(bool asserted) {
  std::lock_guard lock(mutex_);
  state_.intxRequested = asserted;
  applyIntxLocked();
}

uint32_t PciDevice::sanitizedBar(unsigned index, uint32_t raw) const {
  const BarInfo& info = state_.bars[index];
  uint32_t prefetch = info.prefetchable ? 0x8 : 0;
  switch (info.kind) {
    case BarKind::Io:
      return (raw & static_cast<uint32_t>(~(info.size - 1)) & ~3u) | 0x1;
    case BarKind::Memory32:
      return (raw & static_cast<uint32_t>(~(info.size - 1)) & ~0xfu) | prefetch;
    case BarKind::Memory64:
      return (raw & static_cast<uint32_t>(~(info.size - 1)) & ~0xfu) | 0x4 | prefetch;
    case BarKind::Memory64Upper:
      return raw & static_cast<uint32_t>(~((info.size - 1) >> 32));
    default:
      return 0;
  }
}

void PciDevice::applyIntxLocked(bool force) {
  auto& c = state_.config;
  uint16_t command = c[kCommand] | c[kCommand + 1] << 8;
  bool level = state_.intxRequested && !(command & kCommandIntxDisable) && c[kInterruptPin] != 0;
  if (state_.intxRequested) {
    c[kStatus] |= kStatusInterrupt;
  } else {
    c[kStatus] &= ~kStatusInterrupt;
  }
  if (force || level != intxDriven_) {
    intx_.set(level);
    intxDriven_ = level;
  }
}

}  // namespace hyve
