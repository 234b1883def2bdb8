// virtio-net driven through the transport's registers over a fake guest RAM, on a backend
// made of two in-memory queues: configuration, frames both ways, mergeable receive
// buffers, backpressure both ways, and hostile input: runt, giant and 32-bit-overflowing
// transmit chains and offload headers dropped and counted, receive buffers too small for
// any frame or for the header.
#include "net/net_backend.h"
#include "util/event_fd.h"
#include "virtio/net/virtio_net.h"
#include "virtio_rig.h"

#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <functional>
#include <numeric>
#include <thread>

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

  explicit NetRig(bool mergeable = true, uint64_t features = 0, std::unique_ptr<FakeBackend> fake = std::make_unique<FakeBackend>())
      : backend(fake.get()),
        rig(std::make_unique<VirtioNet>(std::array<uint8_t, 6>{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}, std::move(fake),
                                        [this](const std::string& line) { logged.push_back(line); })) {
    init(features | (mergeable ? uint64_t{1} << kMrgRxBuf : 0));
  }
  // The driver's initialisation, also after a reset: fresh rings, nothing available.
  void init(uint64_t features) {
    rig.negotiate(features);
    rig.setupQueue(kSize, VirtioNet::kRxQueue);
    rig.setupQueue(kSize, VirtioNet::kTxQueue);
    rig.setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    txAvail = rxAvail = 0;
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
  struct Buffer {
    uint64_t address;
    uint32_t length;
    uint16_t flags = 0;  // kWrite for a device-writable one
  };
  // Writes `buffers` as one chain into queue `queue`'s descriptors `slot` on.
  void chain(unsigned queue, uint16_t slot, const std::vector<Buffer>& buffers) {
    for (size_t i = 0; i < buffers.size(); ++i) {
      bool last = i + 1 == buffers.size();
      rig.descriptor(ring(queue, kDesc), uint16_t(slot + i), buffers[i].address, buffers[i].length,
                     uint16_t(buffers[i].flags | (last ? 0 : kNext)), uint16_t(slot + i + 1));
    }
  }
  // The guest sends the chain `buffers` (device-readable unless flagged), from descriptor `slot`.
  void sendChain(uint16_t slot, const std::vector<Buffer>& buffers) {
    chain(VirtioNet::kTxQueue, slot, buffers);
    make(VirtioNet::kTxQueue, txAvail, slot, true);
  }
  // The guest posts the chain `buffers` as one receive buffer, from descriptor `slot`.
  void postChain(uint16_t slot, const std::vector<Buffer>& buffers) {
    chain(VirtioNet::kRxQueue, slot, buffers);
    make(VirtioNet::kRxQueue, rxAvail, slot, true);
  }
  // The guest sends `bytes` as they are (header included) in one buffer.
  void sendRaw(uint16_t slot, std::span<const uint8_t> bytes) {
    uint64_t at = kTxBuffers + 0x20000 * slot;
    rig.memory.write(at, bytes.data(), bytes.size());
    sendChain(slot, {{at, uint32_t(bytes.size())}});
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

TEST_CASE("virtio-net: a frame's buffers reach the used ring together, never the first without the rest") {
  // A driver polling the ring (Linux's NAPI, on another vCPU) that sees the first buffer
  // of a frame before the others drops it ("buffers out of N missing"); TCP then waits out
  // a retransmission timeout. So used->idx must move by whole frames, which a thread
  // watching it from outside, as that driver does, checks here.
  NetRig n;
  const auto* usedIndex = reinterpret_cast<const uint16_t*>(n.rig.memory.contents().data() + n.ring(VirtioNet::kRxQueue, kUsed) + 2);
  std::atomic<bool> done{false};
  std::atomic<unsigned> partial{0};
  std::thread driver([&] {
    while (!done.load(std::memory_order_relaxed)) {
      if (__atomic_load_n(usedIndex, __ATOMIC_ACQUIRE) % 2 != 0) partial.fetch_add(1, std::memory_order_relaxed);
    }
  });
  constexpr int kRounds = 2000;
  for (int round = 0; round < kRounds; ++round) {
    for (uint16_t slot = 0; slot < kSize; ++slot) n.post(slot, 1526, false);
    for (int frame = 0; frame < kSize / 2; ++frame) n.backend->deliver(pattern(3000, uint8_t(frame)));  // two buffers each
    n.rig.pci->pollForTest();
  }
  done = true;
  driver.join();
  CHECK(partial.load() == 0);
  CHECK(n.used(VirtioNet::kRxQueue) == uint16_t(kRounds * kSize));
  CHECK(n.net().counters().rxFrames == uint64_t(kRounds) * kSize / 2);
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

// ---- hostile frames: every bad chain is dropped and counted, returned through the used
// ring, and the frame after it still reaches the backend byte-exact ----

constexpr uint16_t kGoodSlot = 7;  // the frame after each bad one; bad ones use slots 0-6

// Sends the bad chain `sendBad` (whose head is `head`), then a good frame: the bad one was
// dropped and counted and came back with nothing written, the good one arrived whole.
void droppedThenDelivered(NetRig& n, uint16_t head, const std::function<void()>& sendBad) {
  const unsigned tx = VirtioNet::kTxQueue;
  uint64_t dropped = n.net().counters().txDropped;
  uint64_t delivered = n.net().counters().txFrames;
  size_t sent = n.backend->sent.size();
  uint16_t used = n.used(tx);
  sendBad();
  CHECK(n.net().counters().txDropped == dropped + 1);
  CHECK(n.backend->sent.size() == sent);
  REQUIRE(n.used(tx) == uint16_t(used + 1));
  CHECK(n.usedHead(tx, used % kSize) == head);
  CHECK(n.usedLen(tx, used % kSize) == 0);
  auto good = pattern(60 + n.backend->sent.size(), uint8_t(dropped));
  n.send(kGoodSlot, good);
  REQUIRE(n.backend->sent.size() == sent + 1);
  CHECK(n.backend->sent.back() == good);
  CHECK(n.net().counters().txFrames == delivered + 1);
  REQUIRE(n.used(tx) == uint16_t(used + 2));
  CHECK(n.usedHead(tx, (used + 1) % kSize) == kGoodSlot);
  CHECK((n.rig.status() & kStatusNeedsReset) == 0);
}

std::vector<uint8_t> zeros(size_t length) { return std::vector<uint8_t>(length, 0); }

TEST_CASE("virtio-net hostile transmit: runts shorter than the header or an Ethernet header are dropped") {
  NetRig n;
  const uint64_t at = kTxBuffers;
  SUBCASE("one zero-length descriptor") { droppedThenDelivered(n, 0, [&] { n.sendChain(0, {{at, 0}}); }); }
  SUBCASE("three zero-length descriptors") {
    droppedThenDelivered(n, 2, [&] { n.sendChain(2, {{at, 0}, {at, 0}, {at, 0}}); });
  }
  SUBCASE("1 byte") { droppedThenDelivered(n, 0, [&] { n.sendRaw(0, zeros(1)); }); }
  SUBCASE("11 bytes, one short of the header") { droppedThenDelivered(n, 1, [&] { n.sendRaw(1, zeros(11)); }); }
  SUBCASE("the header alone") { droppedThenDelivered(n, 1, [&] { n.sendRaw(1, zeros(12)); }); }
  SUBCASE("13 bytes of frame, one short of an Ethernet header") {
    droppedThenDelivered(n, 3, [&] { n.send(3, pattern(13, 1)); });
  }
  SUBCASE("a runt split over descriptors") {
    droppedThenDelivered(n, 4, [&] { n.sendChain(4, {{at, 10}, {at, 10}, {at, 5}}); });  // 25 bytes
  }
  // The shortest frame there is: an Ethernet header and nothing else.
  auto shortest = pattern(14, 5);
  n.send(0, shortest);
  CHECK(n.backend->sent.back() == shortest);
}

TEST_CASE("virtio-net hostile transmit: giants, and chains whose length passes 32 bits, are dropped unread") {
  NetRig n(true, uint64_t{1} << kFeatureIndirectDesc);
  constexpr uint64_t kTable = 0xe00000;  // an indirect table of 1024 descriptors (16 KiB)
  constexpr uint32_t k4MiB = 4 * layout::MiB;
  // 1024 buffers of 4 MiB (RAM is 16 MiB: they overlap) and `extra` bytes: 2^32 + extra
  // bytes, which a 32-bit sum would take for a frame of `extra` bytes.
  auto overflowing = [&](uint16_t slot, uint32_t extra) {
    uint8_t header[12] = {};
    n.rig.memory.write(0x400000, header, sizeof header);
    auto frame = pattern(60, 9);
    n.rig.memory.write(0x400000 + 12, frame.data(), frame.size());
    n.rig.descriptor(kTable, 0, 0x400000, k4MiB + extra, kNext, 1);
    for (uint16_t i = 1; i < 1024; ++i) n.rig.descriptor(kTable, i, 0, k4MiB, i < 1023 ? kNext : 0, uint16_t(i + 1));
    n.rig.descriptor(n.ring(VirtioNet::kTxQueue, kDesc), slot, kTable, 1024 * 16, kIndirect);
    n.make(VirtioNet::kTxQueue, n.txAvail, slot, true);
  };
  SUBCASE("one byte past the largest frame") {
    droppedThenDelivered(n, 0, [&] { n.send(0, pattern(net::kMaxFrameBytes + 1, 1)); });
  }
  SUBCASE("a chain of seven 8 MiB buffers") {
    std::vector<NetRig::Buffer> buffers(7, {0, 8 * layout::MiB});
    droppedThenDelivered(n, 0, [&] { n.sendChain(0, buffers); });
  }
  SUBCASE("2^32 + 72 bytes, 72 when truncated to 32 bits") { droppedThenDelivered(n, 1, [&] { overflowing(1, 72); }); }
  SUBCASE("exactly 2^32 bytes, 0 when truncated") { droppedThenDelivered(n, 2, [&] { overflowing(2, 0); }); }
  // The largest frame the device takes arrives whole.
  auto largest = pattern(net::kMaxFrameBytes, 3);
  n.send(0, largest);
  CHECK(n.backend->sent.back() == largest);
}

TEST_CASE("virtio-net hostile transmit: offload requests are dropped; header fields the device ignores stay ignored") {
  NetRig n;
  auto header = [](size_t at, uint16_t value, size_t width) {
    std::array<uint8_t, 12> h{};
    h[at] = uint8_t(value);
    if (width == 2) h[at + 1] = uint8_t(value >> 8);
    return h;
  };
  // NEEDS_CSUM leaves a partial checksum in the frame; CSUM and GSO were never offered.
  for (uint8_t flags : {0x01, 0x03, 0x81, 0xff}) {
    CAPTURE(flags);
    droppedThenDelivered(n, 0, [&] { n.send(0, pattern(100, 1), header(0, flags, 1)); });
  }
  for (uint8_t gso : {1, 3, 4, 5, 0x80, 0xff}) {
    CAPTURE(gso);
    droppedThenDelivered(n, 1, [&] { n.send(1, pattern(100, 1), header(1, gso, 1)); });
  }
  // Flag bits the device does not act on are ignored (§5.1.6.2.2), as are csum_start and
  // csum_offset without NEEDS_CSUM, hdr_len and gso_size without GSO, and num_buffers
  // on transmit (Linux without MRG_RXBUF leaves whatever was in the buffer there).
  std::vector<std::array<uint8_t, 12>> ignored = {header(0, 0x02, 1), header(0, 0x04, 1), header(0, 0xfe, 1)};
  for (size_t field = 2; field < 12; field += 2) ignored.push_back(header(field, 0xffff, 2));
  std::array<uint8_t, 12> all{};
  all.fill(0xff);
  all[0] = 0xfe;  // everything but NEEDS_CSUM
  all[1] = 0;     // GSO_NONE
  ignored.push_back(all);
  for (size_t i = 0; i < ignored.size(); ++i) {
    CAPTURE(i);
    auto frame = pattern(100 + i, uint8_t(i));
    n.send(2, frame, ignored[i]);
    REQUIRE(!n.backend->sent.empty());
    CHECK(n.backend->sent.back() == frame);
  }
  CHECK(n.net().counters().txDropped == 10);
  CHECK(n.net().counters().txFrames == 10 + ignored.size());
  CHECK(n.used(VirtioNet::kTxQueue) == 2 * 10 + ignored.size());
}

TEST_CASE("virtio-net hostile transmit: a frame split anywhere arrives whole; writable buffers in it are ignored") {
  NetRig n;
  auto frame = pattern(1000, 4);
  std::vector<uint8_t> bytes(12, 0);
  bytes.insert(bytes.end(), frame.begin(), frame.end());
  n.rig.memory.write(kTxBuffers, bytes.data(), bytes.size());
  const uint64_t at = kTxBuffers;
  // The header in two pieces, an empty descriptor, the frame in three, then a writable buffer.
  n.sendChain(0, {{at, 5}, {at + 5, 7}, {at + 12, 0}, {at + 12, 1}, {at + 13, 599}, {at + 612, 400}, {kBuffers, 64, kWrite}});
  REQUIRE(n.backend->sent.size() == 1);
  CHECK(n.backend->sent[0] == frame);
  REQUIRE(n.used(VirtioNet::kTxQueue) == 1);
  CHECK(n.usedLen(VirtioNet::kTxQueue, 0) == 0);
}

// ---- hostile receive buffers ----

TEST_CASE("virtio-net hostile receive: a frame all the posted buffers merged cannot hold is dropped, not waited for") {
  NetRig n;
  // Header-sized buffers are the smallest the spec allows with MRG_RXBUF; the ring holds 8.
  for (uint16_t slot = 0; slot < kSize; ++slot) n.post(slot, 12);
  n.backend->deliver(pattern(100, 1));  // 112 bytes with its header: more than 8 x 12
  n.backend->deliver(pattern(60, 2));   // 72: six buffers
  n.rig.pci->pollForTest();
  CHECK(n.net().counters().rxDropped == 1);
  CHECK(n.net().counters().rxFrames == 1);
  REQUIRE(n.used(VirtioNet::kRxQueue) == 6);
  std::vector<uint8_t> got;
  for (uint16_t i = 0; i < 6; ++i) {
    CHECK(n.usedHead(VirtioNet::kRxQueue, i) == i);
    CHECK(n.usedLen(VirtioNet::kRxQueue, i) == 12);
    auto piece = n.buffer(i, 12);
    got.insert(got.end(), piece.begin(), piece.end());
  }
  CHECK((got[10] | got[11] << 8) == 6);  // num_buffers
  CHECK(std::vector<uint8_t>(got.begin() + 12, got.end()) == pattern(60, 2));
  CHECK(n.net().eventFd() == n.backend->wakeFd());  // not stalled: the next frame is awaited
}

TEST_CASE("virtio-net hostile receive: an empty descriptor inside a receive buffer is harmless") {
  NetRig n;
  n.postChain(0, {{kBuffers, 0, kWrite}, {kBuffers, 1526, kWrite}});
  n.backend->deliver(pattern(100, 3));
  n.rig.pci->pollForTest();
  REQUIRE(n.used(VirtioNet::kRxQueue) == 1);
  CHECK(n.usedLen(VirtioNet::kRxQueue, 0) == 112);
  auto got = n.buffer(0, 112);
  CHECK(std::vector<uint8_t>(got.begin() + 12, got.end()) == pattern(100, 3));
}

TEST_CASE("virtio-net hostile receive: a buffer that cannot hold the header, or is read-only, needs a reset; then frames flow") {
  const std::vector<std::vector<NetRig::Buffer>> bad = {
      {{kBuffers, 11, kWrite}},                         // one short of the header
      {{kBuffers, 0, kWrite}},                          // zero-length
      {{kBuffers, 1526}},                               // read-only
      {{kBuffers, 12}, {kBuffers + 12, 1514, kWrite}},  // read-only, then writable
  };
  for (size_t which = 0; which < bad.size() * 2; ++which) {
    bool mergeable = which % 2;
    CAPTURE(which);
    NetRig n(mergeable);
    n.postChain(0, bad[which / 2]);
    n.backend->deliver(pattern(100, 1));
    n.rig.pci->pollForTest();
    CHECK((n.rig.status() & kStatusNeedsReset) != 0);
    CHECK(n.rig.pci->lastError().find("device-writable") != std::string::npos);
    CHECK(n.used(VirtioNet::kRxQueue) == 0);
    CHECK(n.at<uint8_t>(kBuffers) == 0);  // nothing written
    // The driver resets the device and starts over: the link works again.
    n.rig.setBar<uint8_t>(0x14, 0);
    n.init(mergeable ? uint64_t{1} << kMrgRxBuf : 0);
    CHECK((n.rig.status() & kStatusNeedsReset) == 0);
    n.post(0, 1526);
    n.backend->deliver(pattern(200, 2));
    n.rig.pci->pollForTest();
    REQUIRE(n.used(VirtioNet::kRxQueue) == 1);
    auto got = n.buffer(0, 212);
    CHECK(std::vector<uint8_t>(got.begin() + 12, got.end()) == pattern(200, 2));
  }
}

}  // namespace
}  // namespace hyve::virtio
