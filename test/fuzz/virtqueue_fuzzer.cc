// libFuzzer target for the split-virtqueue walker (native/virtio/virtqueue.cc): the input
// is the queue's programming (size, ring addresses, features) and the first 64 KiB of a
// 16 MiB guest RAM where the rings live. Whatever the input, the walker must return a
// chain inside guest RAM or throw QueueError: ASan/UBSan catch anything else, and
// libFuzzer's timeout catches a hang. Built and run by scripts/fuzz.sh.
#include "core/guest_memory.h"
#include "core/layout.h"
#include "virtio/virtqueue.h"

#include <cstdint>
#include <cstring>

using namespace hyve;

namespace {

constexpr size_t kWindow = 64 * 1024;
constexpr size_t kHeader = 16;

struct Input {
  uint16_t size;
  uint8_t features;
  uint8_t wide;  // bit n: address n is a raw 64-bit value, not an offset in the window
  uint16_t desc, avail, used;
  uint16_t lastAvail;
  uint64_t raw;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t length) {
  static GuestMemory memory(16 * layout::MiB);
  if (length < kHeader) return 0;
  Input in{};
  std::memcpy(&in.size, data, 2);
  in.features = data[2];
  in.wide = data[3];
  std::memcpy(&in.desc, data + 4, 2);
  std::memcpy(&in.avail, data + 6, 2);
  std::memcpy(&in.used, data + 8, 2);
  std::memcpy(&in.lastAvail, data + 10, 2);
  uint32_t raw32;
  std::memcpy(&raw32, data + 12, 4);
  in.raw = uint64_t{raw32} << (in.wide >> 4);  // reaches far beyond RAM too

  auto window = memory.slice(0, kWindow);
  std::memset(window.data(), 0, kWindow);
  std::memcpy(window.data(), data + kHeader, std::min(length - kHeader, kWindow));

  virtio::SplitQueue queue(memory, virtio::kMaxQueueSize);
  auto& s = queue.state();
  s.size = in.size;
  s.descAddress = (in.wide & 1) ? in.raw : in.desc;
  s.availAddress = (in.wide & 2) ? in.raw : in.avail;
  s.usedAddress = (in.wide & 4) ? in.raw : in.used;
  s.lastAvail = in.lastAvail;
  uint64_t features = 0;
  if (in.features & 1) features |= uint64_t{1} << virtio::kFeatureIndirectDesc;
  if (in.features & 2) features |= uint64_t{1} << virtio::kFeatureEventIdx;
  queue.setFeatures(features);
  try {
    queue.validate();
  } catch (const virtio::QueueError&) {
    if (!(in.features & 4)) return 0;  // sometimes walk a queue validate() refused, too
    if (s.size == 0) return 0;
  }
  try {
    for (int i = 0; i < 64; ++i) {
      auto chain = queue.pop();
      if (!chain) {
        queue.publishAvailEvent();
        break;
      }
      // Touch every byte the walker handed out: ASan sees any that is not guest RAM.
      uint8_t sink = 0;
      for (const auto& segment : chain->readable) sink ^= segment.data.front() ^ segment.data.back();
      for (const auto& segment : chain->writable) segment.data.front() = segment.data.back() = sink;
      queue.push(chain->head, static_cast<uint32_t>(chain->writableBytes()));
      queue.needsInterrupt();
    }
  } catch (const virtio::QueueError&) {
  }
  return 0;
}
