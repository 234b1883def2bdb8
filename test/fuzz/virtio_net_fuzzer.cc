// libFuzzer target for virtio-net's buffer handling (native/virtio/net/virtio_net.cc) on
// top of the split-virtqueue walker: the input is both queues' programming, the first
// 64 KiB of guest RAM where their rings and buffers live, and the lengths of the frames
// the backend has for the guest. Whatever the guest wrote, the device must move frames
// inside guest RAM, drop bad ones, or throw QueueError; ASan/UBSan catch anything else,
// libFuzzer's timeout a hang. Built and run by scripts/fuzz.sh.
#include "core/guest_memory.h"
#include "core/layout.h"
#include "net/net_backend.h"
#include "virtio/net/virtio_net.h"
#include "virtio/virtqueue.h"

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>

using namespace hyve;

namespace {

constexpr size_t kWindow = 64 * 1024;
constexpr size_t kHeader = 16;

class Backend final : public net::NetBackend {
 public:
  bool transmit(std::span<const uint8_t>) override { return room > 0 && room-- > 0; }
  bool receive(std::vector<uint8_t>& frame) override {
    if (frames.empty()) return false;
    frame.assign(frames.front(), 0xa5);
    frames.pop_front();
    return true;
  }
  int wakeFd() const override { return -1; }
  void clearWake() override {}
  std::string failure() const override { return {}; }
  std::deque<size_t> frames;
  unsigned room = 0;
};

class Io final : public virtio::QueueIo {
 public:
  explicit Io(std::vector<virtio::SplitQueue>& queues) : queues_(queues) {}
  std::optional<virtio::Chain> pop(unsigned queue) override {
    auto chain = queues_.at(queue).pop();
    if (!chain) {
      queues_[queue].publishAvailEvent();
      chain = queues_[queue].pop();
    }
    if (chain) {
      // Touch every byte handed out: ASan sees any that is not guest RAM.
      for (const auto& s : chain->readable) (void)(s.data.front() ^ s.data.back());
    }
    return chain;
  }
  void unpop(unsigned queue, uint16_t count) override { queues_.at(queue).unpop(count); }
  void push(unsigned queue, std::span<const virtio::UsedEntry> entries) override {
    queues_.at(queue).push(entries);
    queues_[queue].needsInterrupt();
  }
  uint16_t size(unsigned queue) const override { return queues_.at(queue).state().size; }

 private:
  std::vector<virtio::SplitQueue>& queues_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t length) {
  static GuestMemory memory(16 * layout::MiB);
  if (length < kHeader) return 0;
  auto window = memory.slice(0, kWindow);
  std::memset(window.data(), 0, kWindow);
  std::memcpy(window.data(), data + kHeader, std::min(length - kHeader, kWindow));

  auto backend = std::make_unique<Backend>();
  Backend& b = *backend;
  for (int i = 0; i < 3; ++i) {
    uint16_t frame;
    std::memcpy(&frame, data + 4 + 2 * i, 2);
    b.frames.push_back(data[3] & (1 << i) ? size_t{frame} * 2 : frame);  // up to 128 KiB, past any MTU
  }
  b.room = data[10];
  virtio::VirtioNet net({2, 0, 0, 0, 0, 1}, std::move(backend));

  std::vector<virtio::SplitQueue> queues;
  uint64_t features = uint64_t{1} << virtio::kFeatureVersion1;
  if (data[2] & 1) features |= uint64_t{1} << virtio::kFeatureIndirectDesc;
  if (data[2] & 2) features |= uint64_t{1} << virtio::kFeatureEventIdx;
  if (data[2] & 4) features |= uint64_t{1} << 15;  // VIRTIO_NET_F_MRG_RXBUF
  for (unsigned q = 0; q < 2; ++q) {
    queues.emplace_back(memory, virtio::VirtioNet::kQueueSize);
    auto& s = queues.back().state();
    s.size = static_cast<uint16_t>(1u << (data[q] % 9));  // 1 to 256
    s.descAddress = 0x8000 * q;
    s.availAddress = 0x8000 * q + 0x1000;
    s.usedAddress = 0x8000 * q + 0x2000;
    uint16_t lastAvail;
    std::memcpy(&lastAvail, data + 12 + 2 * q, 2);
    s.lastAvail = lastAvail;
    queues.back().setFeatures(features);
  }
  net.activate(features);
  Io io(queues);
  try {
    for (int turn = 0; turn < 8 && net.service(io); ++turn) {
    }
  } catch (const virtio::QueueError&) {
  }
  return 0;
}
