// virtio-console snapshots, driven through the transport's registers as the guest's driver
// would (MULTIPORT control messages, port 0 and a named port on a real UNIX socket): a
// snapshot restored into a fresh device keeps the console's input, the pending control
// messages and the ports' open state, listens on its own socket, reports the reset peer
// to the guest and carries bytes both ways; damaged fields are refused by name.
#include "snapshot/snapshot_file.h"
#include "snapshot/state_io.h"
#include "unix_sockets.h"
#include "virtio/console/virtio_console.h"
#include "virtio/virtio_pci.h"
#include "virtio_rig.h"
#include "vmm/board.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace hyve::virtio {
namespace {

constexpr unsigned kQueues = 6;  // port 0's pair, the control pair, port 1's pair
constexpr unsigned kControlRx = 2, kControlTx = 3, kPortRx = 4, kPortTx = 5;
constexpr uint16_t kDeviceReady = 0, kDeviceAdd = 1, kPortReady = 3, kConsolePort = 4, kPortOpen = 6, kPortName = 7;
constexpr const char* kPortNameText = "org.hyve.test";

std::string tempSocketPath() {
  static int serial = 0;
  return "/tmp/hyve-console-test-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
}

VirtioConsole::Config consoleConfig(const std::string& socket, std::vector<uint8_t>* output = nullptr) {
  VirtioConsole::Config config;
  config.console = true;
  config.ports.push_back({kPortNameText, socket});
  config.consoleOutput = [output](std::span<const uint8_t> bytes) {
    if (output) output->insert(output->end(), bytes.begin(), bytes.end());
  };
  config.consoleDrained = [] {};
  return config;
}

UniqueFd connectTo(const std::string& path) {
  UniqueFd fd = test::unixSocket();
  sockaddr_un a = test::addressOf(path);
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

using test::receive;

struct Message {
  uint32_t id;
  uint16_t event;
  uint16_t value;
  std::string extra;
  bool operator==(const Message&) const = default;
};

// The guest driver's side: six queues on a Rig, a buffer per descriptor.
struct ConsoleDriver {
  Rig& rig;
  uint16_t avail[kQueues] = {}, used[kQueues] = {}, next[kQueues] = {};

  static uint64_t buffer(unsigned queue, uint16_t desc) { return 0x100000 + 0x10000 * uint64_t{queue} + 0x1000 * uint64_t{desc}; }
  void start() {
    rig.negotiate(uint64_t{1} << 1);  // MULTIPORT
    for (uint16_t q = 0; q < kQueues; ++q) rig.setupQueue(kSize, q);
    rig.setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
  // Makes a buffer available on `queue`: device-writable of `length` bytes, or holding `data`.
  void post(unsigned queue, const std::string& data, uint32_t length = 0) {
    uint16_t desc = next[queue]++ % kSize;
    uint64_t at = buffer(queue, desc);
    rig.memory.write(at, data.data(), data.size());
    rig.descriptor(kDesc + kQueueStride * queue, desc, at, data.empty() ? length : static_cast<uint32_t>(data.size()), data.empty() ? kWrite : 0);
    rig.memory.writeObject<uint16_t>(kAvail + kQueueStride * queue + 4 + 2 * (avail[queue] % kSize), desc);
    ++avail[queue];
    rig.memory.writeObject<uint16_t>(kAvail + kQueueStride * queue + 2, avail[queue]);
    rig.setBar<uint16_t>(kNotifyOffset + kNotifyMultiplier * queue, 0);
    serve();
  }
  void serve() {
    for (int i = 0; i < 4; ++i) rig.pci->pollForTest();
  }
  // What the device put in `queue`'s buffers since the last call, one string per buffer;
  // waits up to two seconds for `want` of them (the port watcher runs on its own thread).
  std::vector<std::string> takeUsed(unsigned queue, size_t want = 0) {
    std::vector<std::string> out;
    for (int tries = 0; tries < 200; ++tries) {
      serve();
      uint16_t usedIdx = 0;
      rig.memory.read(kUsed + kQueueStride * queue + 2, &usedIdx, 2);
      while (used[queue] != usedIdx) {
        uint32_t entry[2];
        rig.memory.read(kUsed + kQueueStride * queue + 4 + 8 * (used[queue] % kSize), entry, 8);
        ++used[queue];
        std::string bytes(entry[1], '\0');
        rig.memory.read(buffer(queue, static_cast<uint16_t>(entry[0])), bytes.data(), bytes.size());
        out.push_back(bytes);
      }
      if (out.size() >= want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return out;
  }
  void control(uint32_t id, uint16_t event, uint16_t value) {
    std::string message(8, '\0');
    std::memcpy(message.data(), &id, 4);
    std::memcpy(message.data() + 4, &event, 2);
    std::memcpy(message.data() + 6, &value, 2);
    post(kControlTx, message);
  }
  std::vector<Message> messages(size_t want) {
    std::vector<Message> out;
    for (const auto& raw : takeUsed(kControlRx, want)) {
      REQUIRE(raw.size() >= 8);
      Message m{};
      std::memcpy(&m.id, raw.data(), 4);
      std::memcpy(&m.event, raw.data() + 4, 2);
      std::memcpy(&m.value, raw.data() + 6, 2);
      m.extra = raw.substr(8);
      out.push_back(m);
    }
    return out;
  }
};

std::unique_ptr<VirtioPci> freshTransport(Rig& rig, const std::string& socket) {
  return std::make_unique<VirtioPci>(std::make_unique<VirtioConsole>(consoleConfig(socket)), rig.memory, rig.interrupts, nullptr, false);
}

// Restores the rig's transport state with `device` as the device's fields into a fresh console.
void restoreDevice(Rig& rig, snapshot::StateWriter device) {
  VirtioPci::State state = rig.pci->saveState();
  state.device = device.take();
  snapshot::StateWriter out;
  state.save(out);
  auto fresh = freshTransport(rig, tempSocketPath());
  snapshot::StateReader in(out.data(), "test");
  fresh->snapshotSection("device:console")->restore(in);
}

void refused(Rig& rig, snapshot::StateWriter device, const char* field) {
  CHECK_THROWS_WITH_AS(restoreDevice(rig, std::move(device)), doctest::Contains(field), Error);
}

// Device fields as the console writes them, with one port, a guest-open byte (a bool: 0
// or 1), console input and at most one control message.
snapshot::StateWriter deviceFields(const std::string& name, uint8_t guestOpen, const std::vector<uint8_t>& input, const std::string& message) {
  snapshot::StateWriter w;
  w.boolean("console", true);
  w.u32("ports", 1);
  w.blob("name", {reinterpret_cast<const uint8_t*>(name.data()), name.size()});
  w.u8("guestOpen", guestOpen);
  w.boolean("peer", false);
  w.boolean("hostClosed", false);
  w.blob("consoleInput", input);
  w.u32("control", message.empty() ? 0 : 1);
  if (!message.empty()) w.blob("message", {reinterpret_cast<const uint8_t*>(message.data()), message.size()});
  return w;
}

TEST_CASE("virtio-console: a snapshot restored into a fresh device keeps working; the copy has its own socket and a reset peer") {
  std::string path = tempSocketPath();
  std::vector<uint8_t> output;
  Rig rig(std::make_unique<VirtioConsole>(consoleConfig(path, &output)));
  auto& console = static_cast<VirtioConsole&>(rig.pci->device());
  ConsoleDriver driver{rig};
  driver.start();

  // The driver's start (§5.3.6.2): both ports added, port 1 named and open on both sides.
  for (int i = 0; i < 4; ++i) driver.post(kControlRx, {}, 128);
  driver.control(0, kDeviceReady, 1);
  CHECK(driver.messages(2) == std::vector<Message>{{0, kDeviceAdd, 0, ""}, {1, kDeviceAdd, 0, ""}});
  driver.control(1, kPortReady, 1);
  CHECK(driver.messages(2) == std::vector<Message>{{1, kPortName, 0, kPortNameText}, {1, kPortOpen, 1, ""}});
  driver.control(1, kPortOpen, 1);  // a guest process opens /dev/vport0p1

  // Bytes both ways with a peer.
  UniqueFd peer = connectTo(path);
  REQUIRE(::send(peer.get(), "ping", 4, 0) == 4);
  driver.post(kPortRx, {}, 64);
  CHECK(driver.takeUsed(kPortRx, 1) == std::vector<std::string>{"ping"});
  driver.post(kPortTx, "pong");
  CHECK(receive(peer.get(), 4) == "pong");
  driver.post(1, "hvc0 out");
  CHECK(std::string(output.begin(), output.end()) == "hvc0 out");

  // State the snapshot must carry: console input nobody took, control messages the driver
  // has no buffers for yet.
  CHECK(console.pushConsoleInput(std::vector<uint8_t>{'a', 'b', 'c'}) == 3);
  driver.control(0, kPortReady, 1);  // CONSOLE_PORT and PORT_OPEN for port 0 wait
  rig.pci->pauseDevice();
  snapshot::StateWriter out;
  rig.pci->snapshotSection("device:pci-00:01.0:virtio-console")->save(out);
  rig.pci->resumeDevice();

  // What a restoring caller learns from the snapshot's file to name the copy's sockets.
  char dir[] = "/tmp/hyve-console-snapshot-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  snapshot::Header header;
  header.hyveVersion = snapshot::hyveVersion();
  header.backend = "test";
  header.sections = {"device:com1", "device:pci-00:01.0:virtio-console"};
  snapshot::writeStateFile(dir, header, {{"device:com1", {}}, {"device:pci-00:01.0:virtio-console", out.data()}});
  auto saved = Board::consolesInSnapshot(snapshot::readStateFile(dir).sections);
  ::unlink((std::string(dir) + "/state.bin").c_str());
  ::rmdir(dir);
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].function.slot == 1);
  CHECK(saved[0].console);
  CHECK(saved[0].ports == std::vector<std::string>{kPortNameText});

  // The copy listens on its own path while the original's still listens.
  std::string copyPath = tempSocketPath();
  auto copy = freshTransport(rig, copyPath);
  snapshot::StateReader in(out.data(), "test");
  copy->snapshotSection("device:console")->restore(in);
  auto original = std::move(rig.pci);  // still listening
  rig.pci = std::move(copy);           // the driver now talks to the copy, over the same rings
  UniqueFd another = connectTo(path);
  CHECK(another.valid());

  // The pending messages first, then the original's peer reported gone (PORT_OPEN 0).
  driver.post(kControlRx, {}, 128);
  driver.post(kControlRx, {}, 128);
  driver.post(kControlRx, {}, 128);
  CHECK(driver.messages(3) == std::vector<Message>{{0, kConsolePort, 1, ""}, {0, kPortOpen, 1, ""}, {1, kPortOpen, 0, ""}});
  driver.post(0, {}, 16);
  CHECK(driver.takeUsed(0, 1) == std::vector<std::string>{"abc"});

  // The copy's first peer reopens the port for the guest, and bytes go both ways again.
  UniqueFd copyPeer = connectTo(copyPath);
  driver.post(kControlRx, {}, 128);
  CHECK(driver.messages(1) == std::vector<Message>{{1, kPortOpen, 1, ""}});
  REQUIRE(::send(copyPeer.get(), "again", 5, 0) == 5);
  driver.post(kPortRx, {}, 64);
  CHECK(driver.takeUsed(kPortRx, 1) == std::vector<std::string>{"again"});
  driver.post(kPortTx, "back");
  CHECK(receive(copyPeer.get(), 4) == "back");
  CHECK((driver.rig.status() & kStatusNeedsReset) == 0);
}

TEST_CASE("virtio-console: damaged snapshot fields are refused by name") {
  Rig rig(std::make_unique<VirtioConsole>(consoleConfig(tempSocketPath())));
  ConsoleDriver driver{rig};
  driver.start();
  std::string portOpen(8, '\0');
  uint32_t id = 1;
  uint16_t event = kPortOpen, value = 1;
  std::memcpy(portOpen.data(), &id, 4);
  std::memcpy(portOpen.data() + 4, &event, 2);
  std::memcpy(portOpen.data() + 6, &value, 2);
  std::string badEvent = portOpen;
  badEvent[4] = 99;
  std::string badPort = portOpen;
  badPort[0] = 5;  // past the last port

  refused(rig, deviceFields("another.name", 1, {}, portOpen), "ports [console,another.name]");
  refused(rig, deviceFields("bad name", 1, {}, portOpen), "'name'");
  refused(rig, deviceFields(kPortNameText, 2, {}, portOpen), "guestOpen");
  refused(rig, deviceFields(kPortNameText, 1, std::vector<uint8_t>(VirtioConsole::kConsoleInputBytes + 1), portOpen), "consoleInput");
  refused(rig, deviceFields(kPortNameText, 1, {}, badEvent), "event 99");
  refused(rig, deviceFields(kPortNameText, 1, {}, badPort), "port 5");
  refused(rig, deviceFields(kPortNameText, 1, {}, "short"), "shorter than a control header");
  snapshot::StateWriter tooMany;
  tooMany.boolean("console", true);
  tooMany.u32("ports", VirtioConsole::kMaxNamedPorts + 1);
  refused(rig, std::move(tooMany), "'ports'");

  // The fields as written are accepted (the edits above were the only damage).
  CHECK_NOTHROW(restoreDevice(rig, deviceFields(kPortNameText, 1, {'x'}, portOpen)));
}

}  // namespace
}  // namespace hyve::virtio
