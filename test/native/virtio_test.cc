// The virtio-pci transport and the split virtqueue driven through their registers, as a
// guest driver would, over a fake guest RAM: feature negotiation, requests, interrupts
// (INTx, MSI-X, EVENT_IDX), hostile rings ending in DEVICE_NEEDS_RESET, reset and reuse,
// snapshots; then virtio-blk on a temporary image file.
#include "block/raw_disk.h"
#include "core/guest_memory.h"
#include "core/layout.h"
#include "snapshot/state_io.h"
#include "virtio/blk/virtio_blk.h"
#include "virtio/console/virtio_console.h"
#include "virtio/rng/virtio_rng.h"
#include "virtio/virtio_pci.h"
#include "temp_image.h"
#include "virtio_rig.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace hyve::virtio {
namespace {

Rig rngRig() { return Rig(std::make_unique<VirtioRng>()); }

bool allZero(const GuestMemory& memory, uint64_t gpa, size_t length) {
  std::vector<uint8_t> bytes(length);
  memory.read(gpa, bytes.data(), length);
  for (uint8_t b : bytes) {
    if (b) return false;
  }
  return true;
}

TEST_CASE("virtio-pci: a modern function with every capability in BAR 4 and MSI-X in BAR 1") {
  Rig rig = rngRig();
  CHECK(rig.config32(0x00) == (0x1044u << 16 | 0x1af4u));
  for (int type = 1; type <= 5; ++type) {
    uint32_t cap = rig.capability(pci::kCapabilityVendor, type);
    REQUIRE(cap != 0);
    if (type != 5) CHECK((rig.config32(cap + 4) & 0xff) == kVirtioBar);
  }
  uint32_t notify = rig.capability(pci::kCapabilityVendor, 2);
  CHECK(rig.config32(notify + 8) == kNotifyOffset);
  CHECK(rig.config32(notify + 16) == kNotifyMultiplier);
  uint32_t msix = rig.capability(pci::kCapabilityMsix);
  REQUIRE(msix != 0);
  CHECK(((rig.config32(msix) >> 16) & 0x7ff) == 1);  // two vectors: config and the queue
  CHECK(rig.config32(msix + 4) == kMsixBar);
  CHECK(rig.config32(msix + 8) == (kMsixPbaOffset | kMsixBar));
}

TEST_CASE("virtio-pci: the pci_cfg window reads and writes BAR 4 through config space") {
  Rig rig = rngRig();
  uint32_t cap = rig.capability(pci::kCapabilityVendor, 5);
  REQUIRE(cap != 0);
  auto configWrite32 = [&](uint32_t offset, uint32_t value) { rig.pci->configWrite(offset, {reinterpret_cast<const uint8_t*>(&value), 4}); };
  configWrite32(cap + 8, 0x14);  // offset: device_status
  configWrite32(cap + 12, 1);    // length
  rig.pci->configWrite(cap + 4, std::array<uint8_t, 1>{kVirtioBar});
  configWrite32(cap + 16, kStatusAcknowledge);  // data: a write goes through
  CHECK(rig.status() == kStatusAcknowledge);
  configWrite32(cap + 8, 0x12);  // num_queues, read back through the window
  configWrite32(cap + 12, 2);
  CHECK((rig.config32(cap + 16) & 0xffff) == 1);
}

TEST_CASE("virtio-pci: FEATURES_OK needs VERSION_1 and only offered bits") {
  Rig rig = rngRig();
  rig.setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver);
  rig.setBar<uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  CHECK(!(rig.status() & kStatusFeaturesOk));  // no VERSION_1: a legacy driver is refused
  rig.negotiate(uint64_t{1} << 40);
  CHECK(!(rig.status() & kStatusFeaturesOk));
  rig.negotiate(uint64_t{1} << kFeatureEventIdx | uint64_t{1} << kFeatureIndirectDesc);
  CHECK((rig.status() & kStatusFeaturesOk));
  rig.setBar<uint32_t>(0x00, 1);
  CHECK((rig.bar<uint32_t>(0x04) & 1) == 1);  // VERSION_1 is bit 32
}

TEST_CASE("virtio-rng: a request is filled with random bytes and raises INTx without MSI-X") {
  Rig rig = rngRig();
  rig.start();
  rig.descriptor(kDesc, 0, kBuffers, 64, kWrite);
  rig.submit(0);
  CHECK(rig.usedIdx() == 1);
  CHECK(rig.usedLen(0) == 64);
  CHECK(!allZero(rig.memory, kBuffers, 64));
  CHECK(rig.interrupts.level(0) == false);  // not attached to a bus: INTx reaches no GSI here
  CHECK(rig.bar<uint8_t>(kIsrOffset) == 1);
  CHECK(rig.bar<uint8_t>(kIsrOffset) == 0);  // reading acknowledged it
}

TEST_CASE("virtio-pci: MSI-X delivers the queue's vector; a masked vector stays pending until unmasked") {
  Rig rig = rngRig();
  uint32_t msix = rig.capability(pci::kCapabilityMsix);
  rig.setConfig16(msix + 2, pci::kMsixControlEnable);
  rig.setBar<uint64_t>(16 * 1, 0xfee00000, kMsixBar);
  rig.setBar<uint32_t>(16 * 1 + 8, 0x41, kMsixBar);
  rig.start();
  rig.setBar<uint16_t>(0x1a, 1);
  CHECK(rig.bar<uint16_t>(0x1a) == 1);
  rig.descriptor(kDesc, 0, kBuffers, 16, kWrite);
  rig.submit(0);
  CHECK(rig.interrupts.msis.empty());  // vectors start masked
  uint32_t pending = 0;
  rig.pci->barRead(kMsixBar, kMsixPbaOffset, {reinterpret_cast<uint8_t*>(&pending), 4});
  CHECK(pending == 2);
  rig.setBar<uint32_t>(16 * 1 + 12, 0, kMsixBar);  // unmask
  REQUIRE(rig.interrupts.msis.size() == 1);
  CHECK(rig.interrupts.msis[0].address == 0xfee00000);
  CHECK(rig.interrupts.msis[0].data == 0x41);
  rig.submit(0);
  CHECK(rig.interrupts.msis.size() == 2);
}

TEST_CASE("virtqueue: EVENT_IDX suppresses interrupts until used_event is passed") {
  Rig rig = rngRig();
  rig.start(uint64_t{1} << kFeatureEventIdx);
  rig.memory.writeObject<uint16_t>(kAvail + 4 + 2 * kSize, 5);  // used_event: after the sixth
  rig.descriptor(kDesc, 0, kBuffers, 8, kWrite);
  rig.submit(0);  // the first interrupt is always sent
  CHECK(rig.bar<uint8_t>(kIsrOffset) == 1);
  for (int i = 0; i < 4; ++i) rig.submit(0);
  CHECK(rig.bar<uint8_t>(kIsrOffset) == 0);
  rig.submit(0);  // used idx 6 passes used_event 5
  CHECK(rig.bar<uint8_t>(kIsrOffset) == 1);
  uint16_t availEvent = 0;
  rig.memory.read(kUsed + 4 + 8 * kSize, &availEvent, 2);
  CHECK(availEvent == 6);
}

TEST_CASE("virtqueue: indirect descriptors are followed; an indirect table inside one is refused") {
  Rig rig = rngRig();
  rig.start(uint64_t{1} << kFeatureIndirectDesc);
  constexpr uint64_t table = 0x30000;
  rig.descriptor(table, 0, kBuffers, 8, kWrite | kNext, 1);
  rig.descriptor(table, 1, kBuffers + 0x100, 8, kWrite);
  rig.descriptor(kDesc, 0, table, 32, kIndirect);
  rig.submit(0);
  CHECK(rig.usedLen(0) == 16);
  rig.descriptor(table, 1, table, 32, kIndirect);
  rig.submit(0);
  CHECK((rig.status() & kStatusNeedsReset));
  CHECK(rig.pci->lastError().find("indirect") != std::string::npos);
}

// Each hostile ring ends in NEEDS_RESET without touching memory outside RAM, and after a
// reset the same device serves a good request.
TEST_CASE("virtqueue: hostile rings set DEVICE_NEEDS_RESET, and a reset makes the device usable again") {
  struct Case {
    const char* name;
    void (*corrupt)(Rig&);
  };
  const Case cases[] = {
      {"a descriptor loop", [](Rig& r) {
         r.descriptor(kDesc, 0, kBuffers, 8, kWrite | kNext, 1);
         r.descriptor(kDesc, 1, kBuffers, 8, kWrite | kNext, 0);
         r.submit(0);
       }},
      {"a buffer outside RAM", [](Rig& r) {
         r.descriptor(kDesc, 0, 0xffff'ffff'0000ull, 8, kWrite);
         r.submit(0);
       }},
      {"a length near 4 GiB", [](Rig& r) {
         r.descriptor(kDesc, 0, kBuffers, 0xffff'fff0u, kWrite);
         r.submit(0);
       }},
      {"a head past the queue", [](Rig& r) { r.submit(kSize + 3); }},
      {"a next index past the queue", [](Rig& r) {
         r.descriptor(kDesc, 0, kBuffers, 8, kWrite | kNext, 200);
         r.submit(0);
       }},
      {"an available index that jumps", [](Rig& r) {
         r.memory.writeObject<uint16_t>(kAvail + 2, 1000);
         r.setBar<uint16_t>(kNotifyOffset, 0);
         r.pci->pollForTest();
       }},
      {"a readable buffer after a writable one", [](Rig& r) {
         r.descriptor(kDesc, 0, kBuffers, 8, kWrite | kNext, 1);
         r.descriptor(kDesc, 1, kBuffers, 8, 0);
         r.submit(0);
       }},
      {"an indirect table without INDIRECT_DESC", [](Rig& r) {
         r.descriptor(kDesc, 0, 0x30000, 16, kIndirect);
         r.submit(0);
       }},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Rig rig = rngRig();
    rig.start();
    c.corrupt(rig);
    CHECK((rig.status() & kStatusNeedsReset));
    CHECK(!rig.pci->lastError().empty());
    rig.start();  // reset, renegotiate, same rings
    CHECK(!(rig.status() & kStatusNeedsReset));
    rig.descriptor(kDesc, 0, kBuffers, 8, kWrite);
    rig.submit(0);
    CHECK(rig.usedIdx() == 1);
  }
}

TEST_CASE("virtqueue: a queue size that is not a power of two, or rings outside RAM, are refused at enable") {
  Rig rig = rngRig();
  rig.negotiate();
  rig.setupQueue(6);
  CHECK((rig.status() & kStatusNeedsReset));
  CHECK(rig.bar<uint16_t>(0x1c) == 0);
  Rig other = rngRig();
  other.negotiate();
  other.setBar<uint16_t>(0x18, 8);
  other.setBar<uint64_t>(0x30, 0x7fff'0000'0000ull);
  other.setBar<uint16_t>(0x1c, 1);
  CHECK((other.status() & kStatusNeedsReset));
}

TEST_CASE("virtio-pci: the transport and its queue survive a snapshot, field by field") {
  Rig rig = rngRig();
  rig.start(uint64_t{1} << kFeatureEventIdx);
  rig.descriptor(kDesc, 0, kBuffers, 8, kWrite);
  rig.submit(0);
  rig.submit(0);
  snapshot::StateWriter out;
  rig.pci->saveState().save(out);

  auto copy = std::make_unique<VirtioPci>(std::make_unique<VirtioRng>(), rig.memory, rig.interrupts, nullptr, false);
  snapshot::StateReader in(out.data(), "test");
  copy->restoreState(VirtioPci::State::load(in));
  in.expectEnd();
  rig.pci = std::move(copy);
  CHECK(rig.status() == (kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk));
  rig.submit(0);
  CHECK(rig.usedIdx() == 3);

  // A snapshot whose queue is bigger than the device allows is refused.
  auto state = rig.pci->saveState();
  state.queues[0].size = 4096;
  auto fresh = std::make_unique<VirtioPci>(std::make_unique<VirtioRng>(), rig.memory, rig.interrupts, nullptr, false);
  CHECK_THROWS_AS(fresh->restoreState(state), Error);
}

// ---- virtio-blk ----

using test::TempImage;

DiskOptions diskOptions(std::string path, bool readOnly = false, bool ephemeral = false) {
  DiskOptions options;
  options.path = std::move(path);
  options.readOnly = readOnly;
  options.ephemeral = ephemeral;
  return options;
}

Rig blkRig(const TempImage& image, DiskOptions options = {}) {
  options.path = image.path;
  return Rig(std::make_unique<VirtioBlk>(std::make_unique<RawDisk>(options), "serial-1"));
}

// header at kBuffers, data at kBuffers+0x100, status at kBuffers+0x80
uint8_t blkRequest(Rig& rig, uint32_t type, uint64_t sector, uint32_t dataLength, bool deviceWritesData) {
  uint32_t header[4] = {type, 0, uint32_t(sector), uint32_t(sector >> 32)};
  rig.memory.write(kBuffers, header, 16);
  rig.memory.writeObject<uint8_t>(kBuffers + 0x80, 0xee);
  rig.descriptor(kDesc, 0, kBuffers, 16, kNext, 1);
  if (dataLength) {
    rig.descriptor(kDesc, 1, kBuffers + 0x100, dataLength, uint16_t(kNext | (deviceWritesData ? kWrite : 0)), 2);
    rig.descriptor(kDesc, 2, kBuffers + 0x80, 1, kWrite);
  } else {
    rig.descriptor(kDesc, 1, kBuffers + 0x80, 1, kWrite);
  }
  rig.submit(0);
  uint8_t status = 0;
  rig.memory.read(kBuffers + 0x80, &status, 1);
  return status;
}

TEST_CASE("virtio-blk: capacity, writes reach the file, reads come back, GET_ID, FLUSH, DISCARD") {
  TempImage image(1 << 20);
  Rig rig = blkRig(image);
  CHECK(rig.config32(0) == (0x1042u << 16 | 0x1af4u));
  CHECK(rig.bar<uint64_t>(kDeviceConfigOffset) == 2048);  // sectors
  CHECK(rig.bar<uint32_t>(kDeviceConfigOffset + 12) == VirtioBlk::kSegMax);
  rig.start();

  std::vector<uint8_t> data(1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7);
  rig.memory.write(kBuffers + 0x100, data.data(), data.size());
  CHECK(blkRequest(rig, 1, 3, 1024, false) == 0);
  CHECK(image.read(3 * 512, 1024) == data);

  std::vector<uint8_t> zeros(1024, 0);
  rig.memory.write(kBuffers + 0x100, zeros.data(), zeros.size());
  CHECK(blkRequest(rig, 0, 3, 1024, true) == 0);
  std::vector<uint8_t> back(1024);
  rig.memory.read(kBuffers + 0x100, back.data(), back.size());
  CHECK(back == data);
  CHECK(rig.usedLen(1) == 1025);

  CHECK(blkRequest(rig, 0, 2047, 1024, true) == 1);  // past the end: IOERR
  CHECK(blkRequest(rig, 4, 0, 0, false) == 0);       // FLUSH
  CHECK(blkRequest(rig, 8, 0, 20, true) == 0);       // GET_ID
  char id[21] = {};
  rig.memory.read(kBuffers + 0x100, id, 20);
  CHECK(std::string(id) == "serial-1");
  CHECK(blkRequest(rig, 99, 0, 0, false) == 2);  // UNSUPP

  uint32_t range[4] = {3, 0, 2, 0};  // sector 3, 2 sectors
  rig.memory.write(kBuffers + 0x100, range, 16);
  CHECK(blkRequest(rig, 13, 0, 16, false) == 0);  // WRITE_ZEROES
  CHECK(image.read(3 * 512, 1024) == zeros);
}

TEST_CASE("virtio-blk: a read-only disk offers RO and fails writes; an ephemeral one never changes the file") {
  TempImage image(1 << 20);
  {
    Rig rig = blkRig(image, diskOptions("", true));
    rig.setBar<uint32_t>(0x00, 0);
    CHECK((rig.bar<uint32_t>(0x04) >> 5 & 1) == 1);
    rig.start();
    std::vector<uint8_t> ones(512, 1);
    rig.memory.write(kBuffers + 0x100, ones.data(), ones.size());
    CHECK(blkRequest(rig, 1, 0, 512, false) == 1);
    CHECK(image.read(0, 512) == std::vector<uint8_t>(512, 0));
  }
  {
    Rig rig = blkRig(image, diskOptions("", false, true));
    rig.start();
    std::vector<uint8_t> ones(512, 1);
    rig.memory.write(kBuffers + 0x100, ones.data(), ones.size());
    CHECK(blkRequest(rig, 1, 0, 512, false) == 0);
    CHECK(blkRequest(rig, 0, 0, 512, true) == 0);
    CHECK(image.read(0, 512) == std::vector<uint8_t>(512, 0));
  }
}

TEST_CASE("virtio-blk: a snapshot keeps the disk; each restore writes to its own copy") {
  TempImage image(1 << 20);
  char dir[] = "/tmp/hyve-blk-snap-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string snapshotDir;
  auto directory = [&] { return snapshotDir; };
  Rig rig = blkRig(image);
  rig.pci->setSnapshotDirectory(directory);
  auto section = rig.pci->snapshotSection("device:pci-00:04.0:virtio-blk");
  rig.start();
  std::vector<uint8_t> saved(512, 's');
  rig.memory.write(kBuffers + 0x100, saved.data(), saved.size());
  REQUIRE(blkRequest(rig, 1, 3, 512, false) == 0);
  snapshotDir = dir;
  snapshot::StateWriter out;
  section->save(out);
  std::string copyPath = std::string(dir) + "/device-pci-00-04.0-virtio-blk.disk";
  auto copyBytes = [&](uint64_t sector) {
    std::vector<uint8_t> b(512);
    int fd = ::open(copyPath.c_str(), O_RDONLY);
    CHECK(::pread(fd, b.data(), 512, static_cast<off_t>(sector * 512)) == 512);
    ::close(fd);
    return b;
  };
  CHECK(copyBytes(3) == saved);

  // Two restores: each reads the saved sector and writes its own; neither sees the other's
  // write, and neither the snapshot's copy nor the original image changes.
  std::vector<std::unique_ptr<VirtioPci>> restored;
  for (char fill : {'a', 'b'}) {
    auto pci = std::make_unique<VirtioPci>(std::make_unique<VirtioBlk>(), rig.memory, rig.interrupts, nullptr, false);
    pci->setSnapshotDirectory(directory);
    auto restoredSection = pci->snapshotSection("device:pci-00:04.0:virtio-blk");
    snapshot::StateReader in(out.data(), "test");
    restoredSection->restore(in);
    rig.pci = std::move(pci);
    rig.availIdx = rig.usedIdx();
    CHECK(blkRequest(rig, 0, 3, 512, true) == 0);
    std::vector<uint8_t> read(512);
    rig.memory.read(kBuffers + 0x100, read.data(), 512);
    CHECK(read == saved);
    std::vector<uint8_t> mine(512, static_cast<uint8_t>(fill));
    rig.memory.write(kBuffers + 0x100, mine.data(), 512);
    CHECK(blkRequest(rig, 1, 5, 512, false) == 0);
    CHECK(blkRequest(rig, 0, 5, 512, true) == 0);
    rig.memory.read(kBuffers + 0x100, read.data(), 512);
    CHECK(read == mine);
    restored.push_back(std::move(rig.pci));
  }
  rig.pci = std::move(restored[0]);
  rig.availIdx = rig.usedIdx();
  CHECK(blkRequest(rig, 0, 5, 512, true) == 0);
  std::vector<uint8_t> read(512);
  rig.memory.read(kBuffers + 0x100, read.data(), 512);
  CHECK(read == std::vector<uint8_t>(512, 'a'));
  CHECK(copyBytes(5) == std::vector<uint8_t>(512, 0));
  CHECK(image.read(5 * 512, 512) == std::vector<uint8_t>(512, 0));

  // A snapshot whose disk file is gone is refused.
  ::unlink(copyPath.c_str());
  auto orphan = std::make_unique<VirtioPci>(std::make_unique<VirtioBlk>(), rig.memory, rig.interrupts, nullptr, false);
  orphan->setSnapshotDirectory(directory);
  auto orphanSection = orphan->snapshotSection("device:pci-00:04.0:virtio-blk");
  snapshot::StateReader in(out.data(), "test");
  CHECK_THROWS_AS(orphanSection->restore(in), Error);
  ::rmdir(dir);
}

TEST_CASE("virtio-console: arguments are 'console' and name=socket; bad ones are refused") {
  auto config = VirtioConsole::parseArgs("console,org.a=/tmp/a.sock,b-2=/tmp/b.sock");
  CHECK(config.console);
  REQUIRE(config.ports.size() == 2);
  CHECK(config.ports[1].name == "b-2");
  CHECK(config.ports[1].socket == "/tmp/b.sock");
  for (const char* bad : {"", "x", "a=/t,a=/u", "bad name=/t", "=/t", "console,tty"}) {
    CHECK_THROWS_AS(VirtioConsole::parseArgs(bad), Error);
  }
}

// A device that defers its requests until told it can serve them.
struct Deferring final : VirtioDevice {
  bool ready = false;
  std::function<void(unsigned)> kick;
  uint16_t deviceId() const override { return kDeviceEntropy; }
  uint32_t pciClass() const override { return 0; }
  uint64_t features() const override { return 0; }
  std::vector<uint16_t> queueSizes() const override { return {kSize}; }
  void readConfig(uint64_t, std::span<uint8_t> data) const override { std::fill(data.begin(), data.end(), 0); }
  void attach(std::function<void(unsigned)> k) override { kick = std::move(k); }
  uint32_t handle(unsigned, const Chain&) override { return ready ? 7 : kDeferRequest; }
};

TEST_CASE("virtio-pci: a deferred request stays in the ring until the device kicks its queue") {
  auto owned = std::make_unique<Deferring>();
  Deferring* device = owned.get();
  Rig rig(std::move(owned));
  rig.start();
  rig.descriptor(kDesc, 0, kBuffers, 64, kWrite);
  rig.submit(0);
  rig.pci->pollForTest();
  CHECK(rig.usedIdx() == 0);
  device->ready = true;
  device->kick(0);
  rig.pci->pollForTest();
  CHECK(rig.usedIdx() == 1);
  CHECK(rig.usedLen(0) == 7);
}

TEST_CASE("virtio-console: port 0's input waits for the guest's buffers, in a bounded buffer") {
  VirtioConsole::Config config;
  config.console = true;
  int drained = 0;
  config.consoleOutput = [](std::span<const uint8_t>) {};
  config.consoleDrained = [&] { ++drained; };
  auto owned = std::make_unique<VirtioConsole>(std::move(config));
  VirtioConsole* console = owned.get();
  Rig rig(std::move(owned));
  CHECK(rig.bar<uint32_t>(kDeviceConfigOffset + 4) == 1);  // max_nr_ports: port 0 only
  rig.start(uint64_t{1} << 1);  // MULTIPORT
  rig.descriptor(kDesc, 0, kBuffers, 16, kWrite);
  rig.submit(0);
  CHECK(rig.usedIdx() == 0);  // no input yet: the buffer waits
  std::vector<uint8_t> input(10000, 'x');
  input[0] = 'h';
  CHECK(console->pushConsoleInput(input) == VirtioConsole::kConsoleInputBytes);
  rig.pci->pollForTest();
  CHECK(rig.usedIdx() == 1);
  CHECK(rig.usedLen(0) == 16);
  uint8_t first = 0;
  rig.memory.read(kBuffers, &first, 1);
  CHECK(first == 'h');
  CHECK(drained == 1);
  CHECK(console->pushConsoleInput(input) == 16);  // only the room the guest made
}

TEST_CASE("raw disk: FIFOs and missing files are refused with the path, without blocking") {
  char dir[] = "/tmp/hyve-fifo-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string fifo = std::string(dir) + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  try {
    RawDisk disk(diskOptions(fifo));
    FAIL("a FIFO was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::BadDisk);
    CHECK(std::string(e.what()).find(fifo) != std::string::npos);
  }
  CHECK_THROWS_AS(RawDisk(diskOptions(std::string(dir) + "/missing")), Error);
  ::unlink(fifo.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace hyve::virtio
