#include "virtio/virtio_pci.h"

#include "util/error.h"
#include "util/event_fd.h"
#include "util/seccomp.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hyve::virtio {

namespace {

constexpr uint16_t kVendor = 0x1af4;
constexpr uint16_t kModernDeviceBase = 0x1040;

// virtio_pci_cap cfg_type values (§4.1.4).
constexpr uint8_t kCapCommon = 1;
constexpr uint8_t kCapNotify = 2;
constexpr uint8_t kCapIsr = 3;
constexpr uint8_t kCapDevice = 4;
constexpr uint8_t kCapPciCfg = 5;
// Offsets inside a virtio_pci_cap, from its capability ID byte.
constexpr uint32_t kCapBar = 4;
constexpr uint32_t kCapOffset = 8;
constexpr uint32_t kCapLength = 12;
constexpr uint32_t kCapPciCfgData = 16;

constexpr uint32_t kMsixEntrySize = 16;
constexpr uint32_t kMsixVectorMasked = 1;

pci::Identity identityOf(const VirtioDevice& device) {
  uint32_t cls = device.pciClass();
  return {
      .vendorId = kVendor,
      .deviceId = static_cast<uint16_t>(kModernDeviceBase + device.deviceId()),
      .revision = 1,  // modern-only devices have revision 1 or more (§4.1.2.1)
      .classCode = static_cast<uint8_t>(cls >> 16),
      .subclass = static_cast<uint8_t>(cls >> 8),
      .progIf = static_cast<uint8_t>(cls),
      .subsystemVendorId = kVendor,
      .subsystemId = 0x1100,
  };
}

template <typename T>
void put(uint8_t* image, uint64_t offset, T value) {
  std::memcpy(image + offset, &value, sizeof value);
}
template <typename T>
T get(const uint8_t* image, uint64_t offset) {
  T value;
  std::memcpy(&value, image + offset, sizeof value);
  return value;
}

// Body of a virtio_pci_cap after the ID and next bytes.
std::vector<uint8_t> capBody(uint8_t type, uint8_t length, uint8_t bar, uint32_t offset, uint32_t size) {
  std::vector<uint8_t> body(length - 2, 0);
  body[0] = length;
  body[1] = type;
  body[2] = bar;
  std::memcpy(&body[6], &offset, 4);
  std::memcpy(&body[10], &size, 4);
  return body;
}

bool overlaps(uint64_t a, uint64_t aSize, uint64_t b, uint64_t bSize) { return a < b + bSize && b < a + aSize; }

}  // namespace

VirtioPci::VirtioPci(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, InterruptController& interrupts,
                     hv::IoEvents* ioEvents, bool worker)
    : PciDevice(identityOf(*device)), device_(std::move(device)), memory_(memory), interrupts_(interrupts), ioEvents_(ioEvents) {
  for (uint16_t size : device_->queueSizes()) {
    if (size == 0 || size > kMaxQueueSize || (size & (size - 1))) throw Error(ErrorCode::Internal, "virtio queue size must be a power of two");
    queues_.emplace_back(memory_, size);
  }
  setInterruptPin(1);
  addMemoryBar(kMsixBar, kMsixBarSize, false, false);
  addMemoryBar(kVirtioBar, kVirtioBarSize, true, false);
  auto common = capBody(kCapCommon, 16, kVirtioBar, kCommonOffset, kCommonSize);
  addCapability(pci::kCapabilityVendor, common);
  auto notify = capBody(kCapNotify, 20, kVirtioBar, kNotifyOffset, kNotifyMultiplier * uint32_t(queues_.size()));
  std::memcpy(&notify[14], &kNotifyMultiplier, 4);
  addCapability(pci::kCapabilityVendor, notify);
  addCapability(pci::kCapabilityVendor, capBody(kCapIsr, 16, kVirtioBar, kIsrOffset, 1));
  addCapability(pci::kCapabilityVendor, capBody(kCapDevice, 16, kVirtioBar, kDeviceConfigOffset, kDeviceConfigSize));
  // pci_cfg: a window onto the BARs through config space; bar, offset, length and data are the driver's.
  auto window = capBody(kCapPciCfg, 20, 0, 0, 0);
  std::vector<uint8_t> writable(window.size(), 0);
  writable[2] = 0xff;
  std::fill(writable.begin() + 6, writable.end(), 0xff);
  pciCfgCap_ = addCapability(pci::kCapabilityVendor, window, writable);
  msixCap_ = addMsixCapability(vectorCount(), kMsixBar, 0, kMsixBar, static_cast<uint32_t>(kMsixPbaOffset));

  transport_.msixTable.assign(size_t{vectorCount()} * kMsixEntrySize, 0);
  for (uint32_t v = 0; v < vectorCount(); ++v) put<uint32_t>(transport_.msixTable.data(), v * kMsixEntrySize + 12, kMsixVectorMasked);
  transport_.msixPending.assign((vectorCount() + 63) / 64 * 8, 0);
  deferred_.assign(queues_.size(), false);

  for (size_t i = 0; i < queues_.size(); ++i) doorbells_.push_back(newEventFd());
  stop_ = newEventFd();
  device_->attach([this](unsigned queue) {
    if (queue < doorbells_.size()) kick(queue);
  });
  if (worker) worker_ = std::thread(&VirtioPci::work, this);
}

VirtioPci::~VirtioPci() {
  if (worker_.joinable()) {
    signalEventFd(stop_.get());
    worker_.join();
  }
  device_.reset();  // its own threads may kick the doorbells until then
  std::lock_guard lock(mutex_);
  clearDoorbells();
}

uint64_t VirtioPci::offeredFeatures() const {
  return device_->features() | uint64_t{1} << kFeatureVersion1 | uint64_t{1} << kFeatureEventIdx |
         uint64_t{1} << kFeatureIndirectDesc;
}

// ---- BAR accesses (vCPU threads) ----

void VirtioPci::barRead(unsigned bar, uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  std::lock_guard lock(mutex_);
  auto copyFrom = [&](const std::vector<uint8_t>& from, uint64_t at) {
    if (at < from.size()) std::memcpy(data.data(), from.data() + at, std::min<uint64_t>(data.size(), from.size() - at));
  };
  if (bar == kMsixBar) {
    if (offset < kMsixPbaOffset) copyFrom(transport_.msixTable, offset);
    else copyFrom(transport_.msixPending, offset - kMsixPbaOffset);
    return;
  }
  if (bar != kVirtioBar) return;
  if (offset < kCommonSize) {
    readCommon(offset, data);
  } else if (offset == kIsrOffset) {
    data[0] = transport_.isr;  // reading acknowledges (§4.1.4.5)
    transport_.isr = 0;
    setIntx(false);
  } else if (offset >= kDeviceConfigOffset && offset < kDeviceConfigOffset + kDeviceConfigSize) {
    device_->readConfig(offset - kDeviceConfigOffset, data);
  }
}

void VirtioPci::barWrite(unsigned bar, uint64_t offset, std::span<const uint8_t> data) {
  if (bar == kVirtioBar && offset >= kNotifyOffset && offset < kNotifyOffset + kNotifyMultiplier * queues_.size()) {
    kick(static_cast<unsigned>((offset - kNotifyOffset) / kNotifyMultiplier));  // a doorbell without ioeventfd
    return;
  }
  std::lock_guard lock(mutex_);
  if (bar == kMsixBar) {
    auto& table = transport_.msixTable;
    if (offset < table.size()) {
      std::memcpy(table.data() + offset, data.data(), std::min<uint64_t>(data.size(), table.size() - offset));
      deliverPending();  // an entry may have been unmasked
    }
    return;
  }
  if (bar != kVirtioBar) return;
  if (offset < kCommonSize) {
    writeCommon(offset, data);
  } else if (offset >= kDeviceConfigOffset && offset < kDeviceConfigOffset + kDeviceConfigSize) {
    device_->writeConfig(offset - kDeviceConfigOffset, data);
  }
}

void VirtioPci::readCommon(uint64_t offset, std::span<uint8_t> data) {
  uint8_t image[kCommonSize] = {};
  const Transport& t = transport_;
  uint64_t offered = offeredFeatures();
  put<uint32_t>(image, 0x00, t.deviceFeatureSelect);
  put<uint32_t>(image, 0x04, t.deviceFeatureSelect == 0 ? uint32_t(offered) : t.deviceFeatureSelect == 1 ? uint32_t(offered >> 32) : 0);
  put<uint32_t>(image, 0x08, t.driverFeatureSelect);
  put<uint32_t>(image, 0x0c, t.driverFeatureSelect == 0 ? uint32_t(t.driverFeatures) : t.driverFeatureSelect == 1 ? uint32_t(t.driverFeatures >> 32) : 0);
  put<uint16_t>(image, 0x10, t.configMsixVector);
  put<uint16_t>(image, 0x12, static_cast<uint16_t>(queues_.size()));
  image[0x14] = t.status;
  image[0x15] = t.configGeneration;
  put<uint16_t>(image, 0x16, t.queueSelect);
  if (t.queueSelect < queues_.size()) {
    const auto& q = queues_[t.queueSelect].state();
    put<uint16_t>(image, 0x18, q.size);
    put<uint16_t>(image, 0x1a, q.msixVector);
    put<uint16_t>(image, 0x1c, q.ready ? 1 : 0);
    put<uint16_t>(image, 0x1e, t.queueSelect);  // queue_notify_off: queue i rings at i * multiplier
    put<uint64_t>(image, 0x20, q.descAddress);
    put<uint64_t>(image, 0x28, q.availAddress);
    put<uint64_t>(image, 0x30, q.usedAddress);
  }
  if (offset < kCommonSize) std::memcpy(data.data(), image + offset, std::min<uint64_t>(data.size(), kCommonSize - offset));
}

void VirtioPci::writeCommon(uint64_t offset, std::span<const uint8_t> data) {
  // Overlay the write on the current image, then apply every field it touched: drivers
  // write 64-bit fields as two 32-bit halves, and nothing forbids odd widths.
  uint8_t image[kCommonSize];
  readCommon(0, image);
  uint64_t length = std::min<uint64_t>(data.size(), kCommonSize - offset);
  std::memcpy(image + offset, data.data(), length);
  auto touched = [&](uint64_t field, uint64_t size) { return overlaps(offset, length, field, size); };
  Transport& t = transport_;
  auto vectorOrNone = [&](uint16_t v) { return v < vectorCount() ? v : kNoVector; };

  if (touched(0x00, 4)) t.deviceFeatureSelect = get<uint32_t>(image, 0x00);
  if (touched(0x08, 4)) t.driverFeatureSelect = get<uint32_t>(image, 0x08);
  if (touched(0x0c, 4) && !(t.status & kStatusFeaturesOk) && t.driverFeatureSelect < 2) {
    unsigned shift = 32 * t.driverFeatureSelect;
    t.driverFeatures = (t.driverFeatures & ~(uint64_t{0xffffffff} << shift)) | uint64_t{get<uint32_t>(image, 0x0c)} << shift;
  }
  if (touched(0x10, 2)) t.configMsixVector = vectorOrNone(get<uint16_t>(image, 0x10));
  if (touched(0x16, 2)) t.queueSelect = get<uint16_t>(image, 0x16);
  if (t.queueSelect < queues_.size()) {
    unsigned index = t.queueSelect;
    auto& q = queues_[index].state();
    if (touched(0x1a, 2)) q.msixVector = vectorOrNone(get<uint16_t>(image, 0x1a));
    if (!q.ready) {  // the rest is fixed while the queue is enabled (§4.1.4.3.2)
      if (touched(0x18, 2)) q.size = get<uint16_t>(image, 0x18);
      if (touched(0x20, 8)) q.descAddress = get<uint64_t>(image, 0x20);
      if (touched(0x28, 8)) q.availAddress = get<uint64_t>(image, 0x28);
      if (touched(0x30, 8)) q.usedAddress = get<uint64_t>(image, 0x30);
      if (touched(0x1c, 2) && get<uint16_t>(image, 0x1c) == 1) enableQueue(index);
    }
  }
  if (touched(0x14, 1)) setStatus(image[0x14]);
}

void VirtioPci::setStatus(uint8_t status) {
  Transport& t = transport_;
  if (status == 0) {
    resetLocked();
    return;
  }
  if ((status & kStatusFeaturesOk) && !(t.status & kStatusFeaturesOk)) {
    bool acceptable = (t.driverFeatures & ~offeredFeatures()) == 0 && (t.driverFeatures >> kFeatureVersion1 & 1);
    if (!acceptable) status &= static_cast<uint8_t>(~kStatusFeaturesOk);  // the driver reads it back and gives up
  }
  bool starting = (status & kStatusDriverOk) && !(t.status & kStatusDriverOk);
  t.status = static_cast<uint8_t>(status | (t.status & kStatusNeedsReset));
  if (starting) {
    for (auto& q : queues_) q.setFeatures(t.driverFeatures);
    device_->activate(t.driverFeatures);
    updateDoorbells();
    for (unsigned i = 0; i < queues_.size(); ++i) kick(i);  // buffers made available before DRIVER_OK
  }
}

void VirtioPci::resetLocked() {
  clearDoorbells();
  Transport& t = transport_;
  t.deviceFeatureSelect = t.driverFeatureSelect = 0;
  t.driverFeatures = 0;
  t.configMsixVector = kNoVector;
  t.status = 0;
  t.queueSelect = 0;
  t.isr = 0;
  setIntx(false);
  for (auto& q : queues_) q.reset();
  device_->reset();
}

void VirtioPci::enableQueue(unsigned index) {
  SplitQueue& q = queues_[index];
  q.setFeatures(transport_.driverFeatures);
  try {
    q.validate();
    q.state().ready = true;
  } catch (const QueueError& e) {
    failed("queue " + std::to_string(index) + ": " + e.message);
  }
}

void VirtioPci::failed(const std::string& why) {
  if (transport_.status & kStatusNeedsReset) return;
  lastError_ = why;
  transport_.status |= kStatusNeedsReset;
  ++transport_.configGeneration;
  signal(transport_.configMsixVector, 2);  // a configuration change interrupt (§2.1.2)
}

// ---- the worker ----

void VirtioPci::kick(unsigned queue) { signalEventFd(doorbells_[queue].get()); }

void VirtioPci::work() {
  seccomp::confineThread(device_->threadRole());
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    for (const auto& fd : doorbells_) fds.push_back({fd.get(), POLLIN, 0});
    fds.push_back({stop_.get(), POLLIN, 0});
    {
      std::lock_guard lock(mutex_);  // the device's own wake-up, while it wants one
      int own = paused_ ? -1 : device_->eventFd();
      if (own >= 0) fds.push_back({own, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[doorbells_.size()].revents) return;
    for (unsigned i = 0; i < doorbells_.size(); ++i) {
      if (!fds[i].revents) continue;
      drainEventFd(fds[i].fd);
      std::lock_guard lock(mutex_);
      serve(i);
    }
    if (fds.size() > doorbells_.size() + 1 && fds.back().revents) {
      std::lock_guard lock(mutex_);
      serviceDevice(0);
    }
  }
}

void VirtioPci::pollForTest() {
  for (unsigned i = 0; i < doorbells_.size(); ++i) {
    if (!drainEventFd(doorbells_[i].get())) continue;
    std::lock_guard lock(mutex_);
    serve(i);
  }
  std::lock_guard lock(mutex_);
  int own = device_->eventFd();
  pollfd fd{own, POLLIN, 0};
  if (own >= 0 && ::poll(&fd, 1, 0) == 1) serviceDevice(0);
}

// What service() is handed: the queues, with the interrupts they owe sent afterwards.
class VirtioPci::Io final : public QueueIo {
 public:
  explicit Io(std::vector<SplitQueue>& queues) : queues_(queues), pushed_(queues.size(), false) {}
  std::optional<Chain> pop(unsigned queue) override {
    if (queue >= queues_.size() || !queues_[queue].state().ready) return std::nullopt;
    SplitQueue& q = queues_[queue];
    auto chain = q.pop();
    if (!chain) {
      q.publishAvailEvent();  // then look once more: the driver may have added one meanwhile
      chain = q.pop();
    }
    return chain;
  }
  void unpop(unsigned queue, uint16_t count) override {
    if (queue < queues_.size()) queues_[queue].unpop(count);
  }
  using QueueIo::push;
  void push(unsigned queue, std::span<const UsedEntry> entries) override {
    if (queue >= queues_.size() || entries.empty()) return;
    queues_[queue].push(entries);
    pushed_[queue] = true;
  }
  uint16_t size(unsigned queue) const override { return queue < queues_.size() ? queues_[queue].state().size : 0; }
  bool pushed(unsigned queue) const { return pushed_[queue]; }

 private:
  std::vector<SplitQueue>& queues_;
  std::vector<bool> pushed_;
};

void VirtioPci::serviceDevice(unsigned kicked) {
  if (!(transport_.status & kStatusDriverOk) || (transport_.status & kStatusNeedsReset)) return;
  if (paused_) {
    deferred_[kicked] = true;
    return;
  }
  Io io(queues_);
  try {
    if (device_->service(io)) kick(kicked);
    for (unsigned i = 0; i < queues_.size(); ++i) {
      if (io.pushed(i) && queues_[i].needsInterrupt()) signal(queues_[i].state().msixVector, 1);
    }
  } catch (const QueueError& e) {
    failed("device: " + e.message);
  }
}

void VirtioPci::serve(unsigned index) {
  if (!(transport_.status & kStatusDriverOk) || (transport_.status & kStatusNeedsReset)) return;
  if (device_->ownsQueues()) {
    serviceDevice(index);
    return;
  }
  SplitQueue& q = queues_[index];
  if (!q.state().ready) return;
  if (paused_) {
    deferred_[index] = true;
    return;
  }
  bool pushed = false;
  try {
    // At most one queue's worth per turn, then yield to the other queues.
    for (unsigned served = 0;; ++served) {
      if (served == q.state().size) {
        kick(index);
        break;
      }
      auto chain = q.pop();
      if (!chain) {
        q.publishAvailEvent();  // then look once more: the driver may have added one meanwhile
        chain = q.pop();
        if (!chain) break;
      }
      uint32_t written = device_->handle(index, *chain);
      if (written == kDeferRequest) {
        q.unpop(1);  // the device kicks this queue when it can serve the request
        break;
      }
      q.push(chain->head, static_cast<uint32_t>(std::min<uint64_t>(written, chain->writableBytes())));
      pushed = true;
    }
    if (pushed && q.needsInterrupt()) signal(q.state().msixVector, 1);
  } catch (const QueueError& e) {
    failed("queue " + std::to_string(index) + ": " + e.message);
  }
}

// ---- interrupts ----

bool VirtioPci::msixEnabled(bool& functionMasked) const {
  uint16_t control = config16(msixCap_ + 2);
  functionMasked = control & pci::kMsixControlFunctionMask;
  return control & pci::kMsixControlEnable;
}

void VirtioPci::signal(uint16_t vector, uint8_t isrBit) {
  bool functionMasked = false;
  if (!msixEnabled(functionMasked)) {
    transport_.isr |= isrBit;
    setIntx(true);
    return;
  }
  if (vector >= vectorCount()) return;  // NO_VECTOR: the driver wants none
  const uint8_t* entry = transport_.msixTable.data() + vector * kMsixEntrySize;
  if (functionMasked || (get<uint32_t>(entry, 12) & kMsixVectorMasked)) {
    transport_.msixPending[vector / 8] |= static_cast<uint8_t>(1u << (vector % 8));
    return;
  }
  interrupts_.signalMsi(get<uint64_t>(entry, 0), get<uint32_t>(entry, 8));
}

void VirtioPci::deliverPending() {
  bool functionMasked = false;
  if (!msixEnabled(functionMasked) || functionMasked) return;
  for (uint16_t v = 0; v < vectorCount(); ++v) {
    uint8_t bit = static_cast<uint8_t>(1u << (v % 8));
    if (!(transport_.msixPending[v / 8] & bit)) continue;
    const uint8_t* entry = transport_.msixTable.data() + v * kMsixEntrySize;
    if (get<uint32_t>(entry, 12) & kMsixVectorMasked) continue;
    transport_.msixPending[v / 8] &= static_cast<uint8_t>(~bit);
    interrupts_.signalMsi(get<uint64_t>(entry, 0), get<uint32_t>(entry, 8));
  }
}

void VirtioPci::configWriteHook(uint32_t offset, uint32_t size) {
  if (overlaps(offset, size, msixCap_ + 2u, 2)) {
    std::lock_guard lock(mutex_);
    deliverPending();  // the function may have been unmasked
  }
  if (!overlaps(offset, size, pciCfgCap_ + kCapBar, kCapPciCfgData + 4 - kCapBar)) return;
  // pci_cfg (§4.1.4.9): the access goes to the BAR the driver selected. Reads cannot be
  // hooked, so the window is filled when the driver selects what to read.
  unsigned bar = config8(pciCfgCap_ + kCapBar);
  uint32_t at = config32(pciCfgCap_ + kCapOffset);
  uint32_t length = config32(pciCfgCap_ + kCapLength);
  if (bar != kVirtioBar || (length != 1 && length != 2 && length != 4) || at >= kVirtioBarSize || at + length > kVirtioBarSize) return;
  uint8_t bytes[4];
  if (overlaps(offset, size, pciCfgCap_ + kCapPciCfgData, 4)) {
    uint32_t value = config32(pciCfgCap_ + kCapPciCfgData);
    std::memcpy(bytes, &value, 4);
    barWrite(bar, at, std::span<const uint8_t>(bytes, length));
  } else if (at != kIsrOffset) {  // reading the ISR would acknowledge it behind the driver's back
    std::memset(bytes, 0, 4);
    barRead(bar, at, std::span(bytes, length));
    uint32_t value;
    std::memcpy(&value, bytes, 4);
    setConfig32(pciCfgCap_ + kCapPciCfgData, value);
  }
}

// ---- doorbells ----

void VirtioPci::updateDoorbells() {
  if (!ioEvents_ || !barDecodeEnabled(kVirtioBar)) return;
  uint64_t base = barAddress(kVirtioBar);
  if (base == 0 || base == doorbellAddress_) return;
  clearDoorbells();
  for (unsigned i = 0; i < queues_.size(); ++i) {
    if (!ioEvents_->addIoEvent(base + kNotifyOffset + kNotifyMultiplier * i, 2, doorbells_[i].get())) {
      for (unsigned j = 0; j < i; ++j) ioEvents_->removeIoEvent(base + kNotifyOffset + kNotifyMultiplier * j, 2, doorbells_[j].get());
      return;  // writes arrive as MMIO exits instead
    }
  }
  doorbellAddress_ = base;
}

void VirtioPci::clearDoorbells() {
  if (!ioEvents_ || doorbellAddress_ == 0) return;
  for (unsigned i = 0; i < queues_.size(); ++i) {
    ioEvents_->removeIoEvent(doorbellAddress_ + kNotifyOffset + kNotifyMultiplier * i, 2, doorbells_[i].get());
  }
  doorbellAddress_ = 0;
}

// ---- snapshots ----

std::string VirtioPci::deviceFiles() const { return snapshot::filePrefix(snapshotDir_ ? snapshotDir_() : std::string(), sectionName_); }

void VirtioPci::pauseDevice() {
  std::lock_guard lock(mutex_);  // a request being served finishes first: it holds the lock
  paused_ = true;
}

void VirtioPci::resumeDevice() {
  std::lock_guard lock(mutex_);
  paused_ = false;
  for (unsigned i = 0; i < deferred_.size(); ++i) {
    if (deferred_[i]) kick(i);
    deferred_[i] = false;
  }
}

std::unique_ptr<snapshot::Snapshottable> VirtioPci::snapshotSection(std::string name) {
  sectionName_ = name;
  return std::make_unique<snapshot::DeviceState<VirtioPci>>(std::move(name), *this);
}

VirtioPci::State VirtioPci::saveState() const {
  State s;
  s.pci = PciDevice::saveState();
  std::lock_guard lock(mutex_);
  s.transport = transport_;
  for (const auto& q : queues_) s.queues.push_back(q.state());
  snapshot::StateWriter device;
  device_->saveDeviceState(device, deviceFiles());
  s.device = device.take();
  return s;
}

void VirtioPci::restoreState(const State& state) {
  auto bad = [](const std::string& why) { throw Error(ErrorCode::BadSnapshot, "virtio: " + why); };
  if (state.queues.size() != queues_.size()) bad("the snapshot has " + std::to_string(state.queues.size()) + " queues, the device " + std::to_string(queues_.size()));
  if (state.transport.msixTable.size() != transport_.msixTable.size() || state.transport.msixPending.size() != transport_.msixPending.size()) {
    bad("the MSI-X table size differs");
  }
  if (state.transport.status & kStatusFailed) bad("the device status has FAILED set");
  {
    snapshot::StateReader in(state.device, "virtio device state");
    device_->restoreDeviceState(in, deviceFiles());
    in.expectEnd();
  }
  PciDevice::restoreState(state.pci);
  std::lock_guard lock(mutex_);
  clearDoorbells();
  transport_ = state.transport;
  for (size_t i = 0; i < queues_.size(); ++i) {
    const auto& saved = state.queues[i];
    if (saved.size > queues_[i].maxSize()) bad("queue " + std::to_string(i) + " is larger than the device allows");
    queues_[i].state() = saved;
    queues_[i].setFeatures(transport_.driverFeatures);
    if (saved.ready) {
      try {
        queues_[i].validate();
      } catch (const QueueError& e) {
        bad("queue " + std::to_string(i) + ": " + e.message);
      }
    }
  }
  if (transport_.status & kStatusDriverOk) {
    device_->activate(transport_.driverFeatures);
    updateDoorbells();
    for (unsigned i = 0; i < queues_.size(); ++i) kick(i);  // notifications the snapshot could not hold
  }
}

}  // namespace hyve::virtio
