// virtio-vsock driven through its three virtqueues as the guest's driver would, over a fake
// guest RAM, with real UNIX sockets on the host side: host- and guest-initiated
// connections, data both ways, credit, shutdown, hostile headers, snapshots.
#include "snapshot/state_io.h"
#include "unix_sockets.h"
#include "virtio/vsock/virtio_vsock.h"
#include "virtio_rig.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace hyve::virtio {
namespace {

using vsock::Header;

constexpr uint16_t kQueueSize = 16;
constexpr uint32_t kRxBytes = Header::kSize + 4096;
constexpr uint64_t kGuestCid = 7;

std::string tempSocketPath() {
  static int serial = 0;
  return "/tmp/hyve-vsock-test-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
}

using test::addressOf;
using test::receive;
using test::unixSocket;

bool atEof(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 1000) <= 0) return false;
  char byte;
  return ::recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

struct Packet {
  Header header;
  std::string data;
};

// The shared virtio rig (virtio_rig.h) with a vsock device, its three queues at the rig's
// ring addresses, receive and event buffers posted.
struct VsockRig : Rig {
  std::string path;
  struct Queue {
    uint64_t base;
    uint16_t avail = 0;
    uint16_t used = 0;
  } queues[3] = {{kDesc}, {kDesc + kQueueStride}, {kDesc + 2 * kQueueStride}};
  uint16_t txDesc = 0;

  explicit VsockRig(uint16_t rxBuffers = 8, const std::string& socketPath = tempSocketPath())
      : Rig(std::make_unique<VirtioVsock>(socketPath, kGuestCid)), path(socketPath) {
    start(rxBuffers);
  }
  VirtioVsock& vsock() { return static_cast<VirtioVsock&>(pci->device()); }

  // The driver's initialisation (also after a reset), with `rxBuffers` receive buffers posted.
  void start(uint16_t rxBuffers = 8) {
    negotiate();
    for (uint16_t i = 0; i < 3; ++i) {
      queues[i].avail = queues[i].used = 0;
      setupQueue(kQueueSize, i);
    }
    setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    txDesc = 0;
    for (uint16_t d = 0; d < rxBuffers; ++d) postRx(d);
    postEvent(0);
  }

  static uint64_t rxBuffer(uint16_t desc) { return 0x100000 + uint64_t{desc} * 0x2000; }
  void descriptor(unsigned queue, uint16_t index, uint64_t address, uint32_t length, uint16_t flags) {
    Rig::descriptor(queues[queue].base, index, address, length, flags);
  }
  void makeAvailable(unsigned queue, uint16_t head) {
    Queue& q = queues[queue];
    memory.writeObject<uint16_t>(q.base + (kAvail - kDesc) + 4 + 2 * (q.avail % kQueueSize), head);
    ++q.avail;
    memory.writeObject<uint16_t>(q.base + (kAvail - kDesc) + 2, q.avail);
    setBar<uint16_t>(kNotifyOffset + kNotifyMultiplier * queue, 0);
  }
  void postRx(uint16_t desc, uint32_t bytes = kRxBytes) {
    descriptor(VirtioVsock::kRxQueue, desc, rxBuffer(desc), bytes, kWrite);
    makeAvailable(VirtioVsock::kRxQueue, desc);
  }
  void postEvent(uint16_t desc) {
    descriptor(VirtioVsock::kEventQueue, desc, 0x400000, 8, kWrite);
    makeAvailable(VirtioVsock::kEventQueue, desc);
  }
  // Sends one packet on tx: header (the guest's CID and the host's filled in unless given) and data.
  void send(Header h, const std::string& data = {}, std::optional<uint32_t> len = {}) {
    if (h.srcCid == 0) h.srcCid = kGuestCid;
    if (h.dstCid == 0) h.dstCid = vsock::kHostCid;
    if (h.type == 0) h.type = vsock::kTypeStream;
    h.len = len.value_or(static_cast<uint32_t>(data.size()));
    if (h.bufAlloc == 0) h.bufAlloc = 64 * 1024;
    uint8_t raw[Header::kSize];
    h.serialize(raw);
    uint64_t at = 0x500000 + uint64_t{txDesc} * 0x40000;
    memory.write(at, raw, sizeof raw);
    memory.write(at + Header::kSize, data.data(), data.size());
    descriptor(VirtioVsock::kTxQueue, txDesc, at, static_cast<uint32_t>(Header::kSize + data.size()), 0);
    makeAvailable(VirtioVsock::kTxQueue, txDesc);
    txDesc = static_cast<uint16_t>((txDesc + 1) % kQueueSize);
    poll();
  }
  // Serves the queues until the device's kicks are taken: a tx request may make rx work.
  void poll() {
    for (int i = 0; i < 3; ++i) pci->pollForTest();
  }
  Header to(uint32_t hostPort, uint32_t guestPort, uint16_t op, uint32_t flags = 0) {
    Header h;
    h.srcPort = guestPort;
    h.dstPort = hostPort;
    h.op = op;
    h.flags = flags;
    return h;
  }
  // Packets the device put on rx since the last call; their buffers are posted again.
  std::vector<Packet> received() {
    poll();
    std::vector<Packet> out;
    Queue& q = queues[VirtioVsock::kRxQueue];
    uint16_t usedIdx = 0;
    memory.read(q.base + (kUsed - kDesc) + 2, &usedIdx, 2);
    while (q.used != usedIdx) {
      uint32_t entry[2];
      memory.read(q.base + (kUsed - kDesc) + 4 + 8 * (q.used % kQueueSize), entry, 8);
      ++q.used;
      uint16_t desc = static_cast<uint16_t>(entry[0]);
      REQUIRE(entry[1] >= Header::kSize);
      uint8_t raw[Header::kSize];
      memory.read(rxBuffer(desc), raw, sizeof raw);
      Packet p{Header::parse(raw), std::string(entry[1] - Header::kSize, '\0')};
      CHECK(p.header.len == entry[1] - Header::kSize);
      memory.read(rxBuffer(desc) + Header::kSize, p.data.data(), p.data.size());
      out.push_back(p);
      postRx(desc);
    }
    return out;
  }
  std::optional<Packet> one() {
    auto packets = received();
    REQUIRE(packets.size() <= 1);
    if (packets.empty()) return std::nullopt;
    return packets[0];
  }
  UniqueFd connectHost(uint32_t guestPort, const std::string& extra = {}) {
    UniqueFd fd = unixSocket();
    sockaddr_un a = addressOf(path);
    REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    std::string line = "CONNECT " + std::to_string(guestPort) + "\n" + extra;
    REQUIRE(::send(fd.get(), line.data(), line.size(), 0) == static_cast<ssize_t>(line.size()));
    return fd;
  }
  // A host-initiated connection the guest accepted: the client socket and the host port.
  std::pair<UniqueFd, uint32_t> established(uint32_t guestPort) {
    UniqueFd fd = connectHost(guestPort);
    auto request = one();
    REQUIRE(request);
    REQUIRE(request->header.op == vsock::kOpRequest);
    uint32_t hostPort = request->header.srcPort;
    send(to(hostPort, guestPort, vsock::kOpResponse));
    REQUIRE(receive(fd.get(), 3 + std::to_string(hostPort).size() + 1) == "OK " + std::to_string(hostPort) + "\n");
    return {std::move(fd), hostPort};
  }
};

TEST_CASE("virtio-vsock: the config space holds the guest CID; a bad CID or socket path is refused") {
  VsockRig rig;
  CHECK(rig.bar<uint64_t>(kDeviceConfigOffset) == kGuestCid);
  CHECK_THROWS_AS(VirtioVsock(tempSocketPath(), 2), Error);
  CHECK_THROWS_AS(VirtioVsock("/tmp/" + std::string(120, 'x'), 3), Error);
  CHECK_THROWS_AS(VirtioVsock("/nonexistent-dir/socket", 3), Error);
}

TEST_CASE("virtio-vsock: CONNECT from the host, OK once the guest accepts, bytes both ways, shutdown with RST") {
  VsockRig rig;
  UniqueFd client = rig.connectHost(22, "early");  // bytes sent right after the line are not lost
  auto request = rig.one();
  REQUIRE(request);
  CHECK(request->header.op == vsock::kOpRequest);
  CHECK(request->header.dstCid == kGuestCid);
  CHECK(request->header.srcCid == vsock::kHostCid);
  CHECK(request->header.dstPort == 22);
  CHECK(request->header.srcPort >= VirtioVsock::kFirstHostPort);
  CHECK(request->header.bufAlloc == VirtioVsock::kBufAlloc);
  uint32_t hostPort = request->header.srcPort;
  rig.send(rig.to(hostPort, 22, vsock::kOpResponse));
  CHECK(receive(client.get(), 14) == "OK " + std::to_string(hostPort) + "\n");

  auto early = rig.one();
  REQUIRE(early);
  CHECK(early->header.op == vsock::kOpRw);
  CHECK(early->data == "early");
  CHECK(::send(client.get(), "hello", 5, 0) == 5);
  auto hello = rig.one();
  REQUIRE(hello);
  CHECK(hello->data == "hello");

  rig.send(rig.to(hostPort, 22, vsock::kOpRw), "from the guest");
  CHECK(receive(client.get(), 14) == "from the guest");

  // The host closes its side: the guest hears SHUTDOWN(SEND); the guest's close gets RST.
  ::shutdown(client.get(), SHUT_WR);
  auto eof = rig.one();
  REQUIRE(eof);
  CHECK(eof->header.op == vsock::kOpShutdown);
  CHECK(eof->header.flags == vsock::kShutdownSend);
  rig.send(rig.to(hostPort, 22, vsock::kOpShutdown, vsock::kShutdownRcv | vsock::kShutdownSend));
  auto rst = rig.one();
  REQUIRE(rst);
  CHECK(rst->header.op == vsock::kOpRst);
  CHECK(atEof(client.get()));
  CHECK(rig.vsock().connectionCount() == 0);
}

TEST_CASE("virtio-vsock: a refused CONNECT closes the client; a bad CONNECT line is dropped") {
  VsockRig rig;
  UniqueFd client = rig.connectHost(1234);
  auto request = rig.one();
  REQUIRE(request);
  rig.send(rig.to(request->header.srcPort, 1234, vsock::kOpRst));
  CHECK(atEof(client.get()));

  UniqueFd bad = unixSocket();
  sockaddr_un a = addressOf(rig.path);
  REQUIRE(::connect(bad.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  CHECK(::send(bad.get(), "HELLO 1\n", 8, 0) == 8);
  rig.poll();
  CHECK(atEof(bad.get()));
  CHECK(rig.received().empty());
  CHECK(rig.vsock().connectionCount() == 0);
}

TEST_CASE("virtio-vsock: a guest connecting to host port P reaches <socket>_P; no listener is RST") {
  VsockRig rig;
  rig.send(rig.to(5000, 40000, vsock::kOpRequest));
  auto refused = rig.one();
  REQUIRE(refused);
  CHECK(refused->header.op == vsock::kOpRst);
  CHECK(refused->header.dstPort == 40000);

  UniqueFd listener = unixSocket();
  std::string portPath = rig.path + "_5000";
  sockaddr_un a = addressOf(portPath);
  REQUIRE(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(listener.get(), 4) == 0);
  rig.send(rig.to(5000, 40001, vsock::kOpRequest));
  auto response = rig.one();
  REQUIRE(response);
  CHECK(response->header.op == vsock::kOpResponse);
  CHECK(response->header.srcPort == 5000);
  CHECK(response->header.dstPort == 40001);
  UniqueFd accepted(::accept(listener.get(), nullptr, nullptr));
  REQUIRE(accepted.valid());
  rig.send(rig.to(5000, 40001, vsock::kOpRw), "ping");
  CHECK(receive(accepted.get(), 4) == "ping");
  CHECK(::send(accepted.get(), "pong", 4, 0) == 4);
  auto pong = rig.one();
  REQUIRE(pong);
  CHECK(pong->data == "pong");
  ::unlink(portPath.c_str());
}

TEST_CASE("virtio-vsock: data to the guest never exceeds its credit; CREDIT_UPDATE lets more through") {
  VsockRig rig;
  auto [client, hostPort] = rig.established(80);
  std::string big(3000, 'x');
  CHECK(::send(client.get(), big.data(), big.size(), 0) == 3000);
  Header credit = rig.to(hostPort, 80, vsock::kOpCreditUpdate);
  credit.bufAlloc = 1000;  // the guest can hold 1000 bytes
  rig.send(credit);
  size_t got = 0;
  for (const auto& p : rig.received()) got += p.data.size();
  CHECK(got == 1000);
  credit.fwdCnt = 1000;  // it consumed them
  rig.send(credit);
  got = 0;
  for (const auto& p : rig.received()) got += p.data.size();
  CHECK(got == 1000);

  // CREDIT_REQUEST is answered with our fwd_cnt.
  rig.send(rig.to(hostPort, 80, vsock::kOpRw), "abc");  // with 64 KiB of credit: the last 1000 bytes come
  got = 0;
  for (const auto& p : rig.received()) got += p.data.size();
  CHECK(got == 1000);
  rig.send(rig.to(hostPort, 80, vsock::kOpCreditRequest));
  auto update = rig.one();
  REQUIRE(update);
  CHECK(update->header.op == vsock::kOpCreditUpdate);
  CHECK(update->header.fwdCnt == 3);
  CHECK(update->header.bufAlloc == VirtioVsock::kBufAlloc);
}

TEST_CASE("virtio-vsock: hostile headers are answered with RST or dropped; the device keeps working") {
  VsockRig rig;
  auto [client, hostPort] = rig.established(22);
  SUBCASE("a length past the chain") {
    rig.send(rig.to(hostPort, 22, vsock::kOpRw), "abc", 0xfffffff0);
  }
  SUBCASE("an unknown op") {
    rig.send(rig.to(hostPort, 22, 99));
  }
  SUBCASE("a datagram type") {
    Header h = rig.to(hostPort, 22, vsock::kOpRw);
    h.type = 2;
    rig.send(h, "abc");
  }
  SUBCASE("more data than the credit it was given, while the host reads nothing") {
    std::string chunk(200 * 1024, 'y');
    rig.send(rig.to(hostPort, 22, vsock::kOpRw), chunk);
    rig.send(rig.to(hostPort, 22, vsock::kOpRw), chunk);
    rig.send(rig.to(hostPort, 22, vsock::kOpRw), chunk);
  }
  bool reset = false;
  for (const auto& p : rig.received()) reset |= p.header.op == vsock::kOpRst && p.header.srcPort == hostPort;
  CHECK(reset);
  CHECK(rig.status() == (kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk));
  // A short packet, a wrong source CID, data for a connection that does not exist:
  uint8_t shortPacket[8] = {};
  rig.memory.write(0x500000, shortPacket, sizeof shortPacket);
  rig.descriptor(VirtioVsock::kTxQueue, 15, 0x500000, sizeof shortPacket, 0);
  rig.makeAvailable(VirtioVsock::kTxQueue, 15);
  Header spoofed = rig.to(hostPort, 22, vsock::kOpRw);
  spoofed.srcCid = 99;
  rig.send(spoofed, "x");
  rig.send(rig.to(777, 778, vsock::kOpRw), "x");
  auto rst = rig.one();
  REQUIRE(rst);
  CHECK(rst->header.op == vsock::kOpRst);
  CHECK(rst->header.dstPort == 778);
  // ...and a new connection still works.
  auto [again, port] = rig.established(22);
  rig.send(rig.to(port, 22, vsock::kOpRw), "still here");
  CHECK(receive(again.get(), 10) == "still here");
}

TEST_CASE("virtio-vsock: an rx buffer too small for a header makes the queue NEEDS_RESET") {
  VsockRig rig(/*rxBuffers=*/0);
  UniqueFd client = rig.connectHost(22);  // a REQUEST waits for an rx buffer
  rig.postRx(0, 8);
  rig.poll();
  CHECK((rig.status() & kStatusNeedsReset));
  CHECK(rig.pci->lastError().find("header") != std::string::npos);
  rig.start();  // a reset makes it usable again
  // The client that connected meanwhile waited in the listen backlog: it is served now.
  auto waiting = rig.one();
  REQUIRE(waiting);
  CHECK(waiting->header.op == vsock::kOpRequest);
  auto [fd, port] = rig.established(22);
  CHECK(port >= VirtioVsock::kFirstHostPort);
}

TEST_CASE("virtio-vsock: a snapshot keeps the CID and the host port count; the restored device resets connections and says so") {
  VsockRig rig;
  auto [client, hostPort] = rig.established(22);
  snapshot::StateWriter out;
  auto section = rig.pci->snapshotSection("device:vsock");
  section->save(out);

  std::string copyPath = tempSocketPath();
  auto copy = std::make_unique<VirtioPci>(std::make_unique<VirtioVsock>(copyPath, 3), rig.memory, rig.interrupts, nullptr, false);
  snapshot::StateReader in(out.data(), "test");
  copy->snapshotSection("device:vsock")->restore(in);
  CHECK(static_cast<VirtioVsock&>(copy->device()).guestCid() == kGuestCid);
  CHECK(static_cast<VirtioVsock&>(copy->device()).connectionCount() == 0);
  // The copy's next connection does not come from a port the guest may still hold a socket for.
  CHECK(static_cast<VirtioVsock&>(copy->device()).nextHostPort() > hostPort);
  for (int i = 0; i < 3; ++i) copy->pollForTest();
  uint16_t eventUsed = 0;
  rig.memory.read(rig.queues[VirtioVsock::kEventQueue].base + (kUsed - kDesc) + 2, &eventUsed, 2);
  CHECK(eventUsed == 1);
  uint32_t event = 0xff;
  rig.memory.read(0x400000, &event, 4);
  CHECK(event == vsock::kEventTransportReset);

  // A CID the guest cannot have is refused by name.
  VirtioPci::State badState = rig.pci->saveState();
  snapshot::StateWriter badDevice;
  badDevice.u64("guestCid", 1);
  badDevice.u32("nextHostPort", VirtioVsock::kFirstHostPort);
  badState.device = badDevice.take();
  snapshot::StateWriter bad;
  badState.save(bad);
  auto fresh = std::make_unique<VirtioPci>(std::make_unique<VirtioVsock>(tempSocketPath(), 3), rig.memory, rig.interrupts, nullptr, false);
  snapshot::StateReader badIn(bad.data(), "test");
  CHECK_THROWS_WITH_AS(fresh->snapshotSection("device:vsock")->restore(badIn), doctest::Contains("guestCid"), Error);
  VirtioPci::State lowPort = rig.pci->saveState();
  snapshot::StateWriter lowDevice;
  lowDevice.u64("guestCid", 3);
  lowDevice.u32("nextHostPort", 5);
  lowPort.device = lowDevice.take();
  snapshot::StateWriter low;
  lowPort.save(low);
  snapshot::StateReader lowIn(low.data(), "test");
  CHECK_THROWS_WITH_AS(fresh->snapshotSection("device:vsock")->restore(lowIn), doctest::Contains("nextHostPort"), Error);
}

}  // namespace
}  // namespace hyve::virtio
