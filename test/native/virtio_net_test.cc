// virtio-net driven through the transport's registers over a fake guest RAM, on a backend
// made of two in-memory queues: configuration, frames both ways, mergeable receive
// buffers, hostile transmit chains dropped and counted, backpressure both ways.
#include "net/net_backend.h"
#include "util/event_fd.h"
#include "virtio/net/virtio_net.h"
#include "virtio_rig.h"

#include <doctest/doctest.h>

#include <deque>
#include <numeric>

namespace hyve::virtio {
namespace {

constexpr unsigned kMrgRxBuf = 15;
constexpr uint64_t kTxBuffers = 0x100000;  // transmit frames; receive buffers sit at kBuffers

class FakeBackend final : public net::NetBackend {
 public:
  bool transmit(std::span<const uint8_t> frame) override {
    if (sent.size() >= capacity) return false;
    sent.emplace_back(frame.begin(), frame.end());
    return true;
  }
  bool receive(std::vector<uint8_t>& frame) override {
    if (incoming.empty()) return false;
    frame = std::move(incoming.front());
    incoming.pop_front();
    return true;
  }
  int wakeFd() const override { return wake.get(); }
  void clearWake() override { drainEventFd(wake.get()); }
  std::string failure() const override { return failed; }
  void deliver(std::vector<uint8_t> frame) {
    incoming.push_back(std::move(frame));
    signalEventFd(wake.get());
  }

  size_t capacity = 1000;
  std::string failed;
  std::vector<std::vector<uint8_t>> sent;
  std::deque<std::vector<uint8_t>> incoming;
  UniqueFd wake = newEventFd();
};

std::vector<uint8_t> pattern(size_t length, uint8_t seed) {
  std::vector<uint8_t> bytes(length);
  std::iota(bytes.begin(), bytes.end(), seed);
  return bytes;
}

struct NetRig {
  FakeBackend* backend;
  Rig rig;
  uint16_t txAvail = 0, rxAvail = 0;

  std::vector<std::string> logged;

  explicit NetRig(bool mergeable = true, std::unique_ptr<FakeBackend> fake = std::make_unique<FakeBackend>())
      : backend(fake.get()),
        rig(std::make_unique<VirtioNet>(std::array<uint8_t, 6>{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}, std::move(fake),
                                        [this](const std::string& line) { logged.push_back(line); })) {
    rig.negotiate(mergeable ? uint64_t{1} << kMrgRxBuf : 0);
    rig.setupQueue(kSize, VirtioNet::kRxQueue);
    rig.setupQueue(kSize, VirtioNet::kTxQueue);
    rig.setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
  VirtioNet& net() { return static_cast<VirtioNet&>(rig.pci->device()); }
  uint64_t ring(unsigned queue, uint64_t base) { return base + kQueueStride * queue; }
  void make(unsigned queue, uint16_t& avail, uint16_t head, bool ring) {
    rig.memory.writeObject<uint16_t>(this->ring(queue, kAvail) + 4 + 2 * (avail % kSize), head);
    ++avail;
    rig.memory.writeObject<uint16_t>(this->ring(queue, kAvail) + 2, avail);
    if (ring) rig.setBar<uint16_t>(kNotifyOffset + kNotifyMultiplier * queue, 0);
    rig.pci->pollForTest();
  }
  // The guest sends `payload` after a virtio-net header `header` (zeros: a plain frame).
  void send(uint16_t slot, std::span<const uint8_t> payload, std::array<uint8_t, 12> header = {}) {
    uint64_t at = kTxBuffers + 0x20000 * slot;
    rig.memory.write(at, header.data(), header.size());
    rig.memory.write(at + 12, payload.data(), payload.size());
    rig.descriptor(ring(VirtioNet::kTxQueue, kDesc), slot, at, uint32_t(12 + payload.size()), 0);
    make(VirtioNet::kTxQueue, txAvail, slot, true);
  }
  // The guest posts a receive buffer of `length` bytes in descriptor `slot`.
  void post(uint16_t slot, uint32_t length, bool ring = true) {
    rig.descriptor(kDesc, slot, kBuffers + 0x10000 * slot, length, kWrite);
    make(VirtioNet::kRxQueue, rxAvail, slot, ring);
  }
  template <typename T>
  T at(uint64_t gpa) {
    T value{};
    rig.memory.read(gpa, &value, sizeof value);
    return value;
  }
  uint16_t used(unsigned queue) { return at<uint16_t>(ring(queue, kUsed) + 2); }
  uint32_t usedLen(unsigned queue, uint16_t entry) { return at<uint32_t>(ring(queue, kUsed) + 4 + 8 * entry + 4); }
  uint32_t usedHead(unsigned queue, uint16_t entry) { return at<uint32_t>(ring(queue, kUsed) + 4 + 8 * entry); }
  std::vector<uint8_t> buffer(uint16_t slot, size_t length) {
    std::vector<uint8_t> bytes(length);
    rig.memory.read(kBuffers + 0x10000 * slot, bytes.data(), length);
    return bytes;
  }
};

TEST_CASE("virtio-net: a modern network function with MAC, STATUS and mergeable buffers") {
  NetRig n;
  CHECK(n.rig.config32(0x00) == (0x1041u << 16 | 0x1af4u));
  CHECK((n.rig.config32(0x08) >> 8) == 0x020000u);
  uint8_t config[8] = {};
  n.rig.pci->barRead(kVirtioBar, kDeviceConfigOffset, config);
  CHECK(std::vector<uint8_t>(config, config + 6) == std::vector<uint8_t>{0x02, 0x11, 0x22, 0x33, 0x44, 0x55});
  CHECK(config[6] == 1);  // VIRTIO_NET_S_LINK_UP
  uint16_t mtu = 0;
  n.rig.pci->barRead(kVirtioBar, kDeviceConfigOffset + 10, {reinterpret_cast<uint8_t*>(&mtu), 2});
  CHECK(mtu == 1500);
  n.rig.setBar<uint32_t>(0x00, 0);
  uint32_t offered = n.rig.bar<uint32_t>(0x04);
  CHECK((offered >> 3 & 1) == 1);
  CHECK((offered >> 5 & 1) == 1);
  CHECK((offered >> 15 & 1) == 1);
  CHECK((offered >> 16 & 1) == 1);
  CHECK(n.rig.status() == (kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk));
}

TEST_CASE("virtio-net: guest frames reach the backend; runts, giants and offload headers are dropped and counted") {
  NetRig n;
  auto good = pattern(1514, 7);
  n.send(0, good);
  REQUIRE(n.backend->sent.size() == 1);
  CHECK(n.backend->sent[0] == good);
  n.send(1, pattern(13, 1));  // shorter than an Ethernet header
  n.send(2, pattern(net::kMaxFrameBytes + 1, 1));
  std::array<uint8_t, 12> gso{};
  gso[1] = 1;  // VIRTIO_NET_HDR_GSO_TCPV4, never offered
  n.send(3, pattern(100, 1), gso);
  std::array<uint8_t, 12> csum{};
  csum[0] = 1;  // NEEDS_CSUM, never offered
  n.send(4, pattern(100, 1), csum);
  CHECK(n.net().counters().txDropped == 4);
  auto next = pattern(60, 9);
  n.send(5, next);
  REQUIRE(n.backend->sent.size() == 2);
  CHECK(n.backend->sent[1] == next);
  CHECK(n.used(VirtioNet::kTxQueue) == 6);  // every chain went back, bad ones too
  CHECK(n.net().counters().txFrames == 2);
  CHECK((n.rig.status() & kStatusNeedsReset) == 0);
}

TEST_CASE("virtio-net: a frame larger than one buffer spans mergeable buffers, num_buffers says how many") {
  NetRig n;
  for (uint16_t slot = 0; slot < 4; ++slot) n.post(slot, 1526);
  auto frame = pattern(3000, 3);
  n.backend->deliver(frame);
  n.rig.pci->pollForTest();
  REQUIRE(n.used(VirtioNet::kRxQueue) == 2);
  CHECK(n.usedHead(VirtioNet::kRxQueue, 0) == 0);
  CHECK(n.usedLen(VirtioNet::kRxQueue, 0) == 1526);
  CHECK(n.usedLen(VirtioNet::kRxQueue, 1) == 12 + 3000 - 1526);
  auto first = n.buffer(0, 1526);
  CHECK((first[10] | first[11] << 8) == 2);  // num_buffers
  std::vector<uint8_t> got(first.begin() + 12, first.end());
  auto second = n.buffer(1, 12 + 3000 - 1526);
  got.insert(got.end(), second.begin(), second.end());
  CHECK(got == frame);
  CHECK(n.net().counters().rxFrames == 1);
}

TEST_CASE("virtio-net: frames wait for receive buffers without spinning, and arrive when the guest posts some") {
  NetRig n;
  n.backend->deliver(pattern(100, 1));
  n.backend->deliver(pattern(200, 2));
  n.rig.pci->pollForTest();
  CHECK(n.used(VirtioNet::kRxQueue) == 0);
  CHECK(n.net().eventFd() == -1);  // stalled: only a kick of the receive queue wakes it
  n.post(0, 1526);
  CHECK(n.used(VirtioNet::kRxQueue) == 1);
  CHECK(n.buffer(0, 112) == [] {
    std::vector<uint8_t> want(12, 0);
    want[10] = 1;
    auto frame = pattern(100, 1);
    want.insert(want.end(), frame.begin(), frame.end());
    return want;
  }());
  n.post(1, 1526);
  CHECK(n.used(VirtioNet::kRxQueue) == 2);
  CHECK(n.usedLen(VirtioNet::kRxQueue, 1) == 212);
}

TEST_CASE("virtio-net: without mergeable buffers a frame too big for its buffer is dropped, the buffer reused") {
  NetRig n(/*mergeable=*/false);
  n.post(0, 1000);
  n.backend->deliver(pattern(2000, 1));
  n.backend->deliver(pattern(500, 5));
  n.rig.pci->pollForTest();
  REQUIRE(n.used(VirtioNet::kRxQueue) == 1);
  CHECK(n.usedHead(VirtioNet::kRxQueue, 0) == 0);
  CHECK(n.usedLen(VirtioNet::kRxQueue, 0) == 512);
  CHECK(n.net().counters().rxDropped == 1);
}

TEST_CASE("virtio-net: a full backend leaves frames in the transmit ring until it has room") {
  NetRig n;
  n.backend->capacity = 1;
  n.send(0, pattern(100, 1));
  n.send(1, pattern(100, 2));
  CHECK(n.backend->sent.size() == 1);
  CHECK(n.used(VirtioNet::kTxQueue) == 1);
  CHECK(n.net().eventFd() == n.backend->wakeFd());  // waits for the backend's wake-up
  n.backend->capacity = 2;
  signalEventFd(n.backend->wakeFd());
  n.rig.pci->pollForTest();
  CHECK(n.backend->sent.size() == 2);
  CHECK(n.backend->sent[1] == pattern(100, 2));
  CHECK(n.used(VirtioNet::kTxQueue) == 2);
}

TEST_CASE("virtio-net: a receive buffer the device may not write sets DEVICE_NEEDS_RESET") {
  NetRig n;
  n.rig.descriptor(kDesc, 0, kBuffers, 1526, 0);  // device-readable
  n.make(VirtioNet::kRxQueue, n.rxAvail, 0, true);
  n.backend->deliver(pattern(100, 1));
  n.rig.pci->pollForTest();
  CHECK((n.rig.status() & kStatusNeedsReset) != 0);
  CHECK(n.rig.pci->lastError().find("device-writable") != std::string::npos);
}

TEST_CASE("virtio-net: a failed backend is reported once, and the guest's frames are dropped, never stuck") {
  NetRig n;
  n.backend->failed = "tap device tap0 failed: No such device";
  n.send(0, pattern(100, 1));
  n.send(1, pattern(100, 2));
  CHECK(n.backend->sent.empty());
  CHECK(n.used(VirtioNet::kTxQueue) == 2);
  CHECK(n.net().counters().txDropped == 2);
  REQUIRE(n.logged.size() == 1);
  CHECK(n.logged[0].find("tap device tap0 failed") != std::string::npos);
}

}  // namespace
}  // namespace hyve::virtio
