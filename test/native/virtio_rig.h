// A virtio driver for unit tests: drives a VirtioPci through its registers over a fake
// guest RAM, as a guest driver would (shared by the virtio transport and device tests).
#pragma once

#include "core/guest_memory.h"
#include "core/layout.h"
#include "fake_interrupts.h"
#include "virtio/virtio_pci.h"

#include <cstring>
#include <memory>
#include <vector>

namespace hyve::virtio {

constexpr uint64_t kDesc = 0x10000, kAvail = 0x11000, kUsed = 0x12000, kBuffers = 0x20000;
constexpr uint16_t kSize = 8;
// Queue i has its rings at kDesc, kAvail and kUsed plus i strides.
constexpr uint64_t kQueueStride = 0x4000;
constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;

struct Rig {
  GuestMemory memory{16 * layout::MiB};
  test::FakeInterrupts interrupts;
  std::unique_ptr<VirtioPci> pci;
  uint16_t availIdx = 0;

  explicit Rig(std::unique_ptr<VirtioDevice> device) {
    pci = std::make_unique<VirtioPci>(std::move(device), memory, interrupts, nullptr, /*worker=*/false);
  }

  template <typename T>
  T bar(uint64_t offset) {
    T value{};
    pci->barRead(kVirtioBar, offset, {reinterpret_cast<uint8_t*>(&value), sizeof value});
    return value;
  }
  template <typename T>
  void setBar(uint64_t offset, T value, unsigned which = kVirtioBar) {
    pci->barWrite(which, offset, {reinterpret_cast<const uint8_t*>(&value), sizeof value});
  }
  uint8_t status() { return bar<uint8_t>(0x14); }
  uint32_t config32(uint32_t offset) {
    uint32_t v = 0;
    pci->configRead(offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
  void setConfig16(uint32_t offset, uint16_t v) { pci->configWrite(offset, {reinterpret_cast<const uint8_t*>(&v), 2}); }
  // The offset of the first capability with `id` (and virtio cfg_type `type`, for vendor ones).
  uint32_t capability(uint8_t id, int type = -1) {
    for (uint32_t at = config32(0x34) & 0xff; at; at = (config32(at) >> 8) & 0xff) {
      uint32_t head = config32(at);
      if ((head & 0xff) == id && (type < 0 || ((head >> 24) & 0xff) == uint32_t(type))) return at;
    }
    return 0;
  }

  // The driver's side of §3.1.1, with `features` (VERSION_1 is added).
  void negotiate(uint64_t features = 0) {
    setBar<uint8_t>(0x14, 0);
    setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver);
    features |= uint64_t{1} << kFeatureVersion1;
    setBar<uint32_t>(0x08, 0);
    setBar<uint32_t>(0x0c, uint32_t(features));
    setBar<uint32_t>(0x08, 1);
    setBar<uint32_t>(0x0c, uint32_t(features >> 32));
    setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  }
  void setupQueue(uint16_t size = kSize, uint16_t index = 0) {
    uint64_t base = kDesc + kQueueStride * index;
    std::vector<uint8_t> zeros(0x3000, 0);
    memory.write(base, zeros.data(), zeros.size());
    setBar<uint16_t>(0x16, index);
    setBar<uint16_t>(0x18, size);
    setBar<uint32_t>(0x20, uint32_t(base));
    setBar<uint32_t>(0x24, 0);
    setBar<uint64_t>(0x28, base + (kAvail - kDesc));
    setBar<uint64_t>(0x30, base + (kUsed - kDesc));
    setBar<uint16_t>(0x1c, 1);
  }
  void start(uint64_t features = 0) {
    negotiate(features);
    setupQueue();
    setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    availIdx = 0;
  }
  void descriptor(uint64_t table, uint16_t index, uint64_t address, uint32_t length, uint16_t flags, uint16_t next = 0) {
    uint8_t d[16];
    std::memcpy(d, &address, 8);
    std::memcpy(d + 8, &length, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
    memory.write(table + 16 * uint64_t(index), d, 16);
  }
  // Makes chain `head` available and rings the doorbell; the device serves it.
  void submit(uint16_t head) {
    memory.writeObject<uint16_t>(kAvail + 4 + 2 * (availIdx % kSize), head);
    ++availIdx;
    memory.writeObject<uint16_t>(kAvail + 2, availIdx);
    setBar<uint16_t>(kNotifyOffset, 0);
    pci->pollForTest();
  }
  uint16_t usedIdx() {
    uint16_t v = 0;
    memory.read(kUsed + 2, &v, 2);
    return v;
  }
  uint32_t usedLen(uint16_t entry) {
    uint32_t v = 0;
    memory.read(kUsed + 4 + 8 * entry + 4, &v, 4);
    return v;
  }
};

}  // namespace hyve::virtio
