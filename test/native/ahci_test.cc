// The AHCI HBA driven through its registers as Linux's ahci driver drives it, over a fake
// guest RAM and interrupt controller: identity, COMRESET and signatures, IDENTIFY, DMA
// reads and writes reaching the image, FLUSH, TRIM, the ATAPI command set, and hostile
// command lists (addresses outside RAM, short PRDTs, bad FIS lengths, slots the HBA does
// not have) ending in the port's error registers; snapshots field by field.
#include "ahci/ahci_hba.h"
#include "ahci/ata_disk.h"
#include "ahci/atapi_cd.h"
#include "core/guest_memory.h"
#include "core/layout.h"
#include "fake_interrupts.h"
#include "snapshot/state_io.h"
#include "temp_image.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

namespace hyve::ahci {
namespace {

using test::TempImage;

constexpr uint64_t kClb = 0x10000, kFb = 0x11000, kTable = 0x12000, kData = 0x40000;
constexpr uint32_t kPort0 = kPortBase;

struct Rig {
  GuestMemory memory{16 * layout::MiB};
  test::FakeInterrupts interrupts;
  std::unique_ptr<AhciHba> hba;

  explicit Rig(std::unique_ptr<AtaDrive> drive, unsigned slots = 32) {
    std::vector<std::unique_ptr<AtaDrive>> drives;
    drives.push_back(std::move(drive));
    hba = std::make_unique<AhciHba>(std::move(drives), memory, interrupts, slots);
    hba->attach(nullptr, IrqLine(&interrupts, 20));
  }
  uint32_t reg(uint32_t offset) {
    uint32_t v = 0;
    hba->barRead(kAbar, offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
  void setReg(uint32_t offset, uint32_t v) { hba->barWrite(kAbar, offset, {reinterpret_cast<const uint8_t*>(&v), 4}); }
  uint32_t config32(uint32_t offset) {
    uint32_t v = 0;
    hba->configRead(offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
  void setConfig16(uint32_t offset, uint16_t v) { hba->configWrite(offset, {reinterpret_cast<const uint8_t*>(&v), 2}); }

  // What ahci_port_start/ahci_start_engine do.
  void start() {
    setReg(kPort0 + kPxClb, uint32_t(kClb));
    setReg(kPort0 + kPxFb, uint32_t(kFb));
    setReg(kPort0 + kPxCmd, kCmdFre);
    setReg(kPort0 + kPxCmd, kCmdFre | kCmdSt);
    setReg(kPort0 + kPxIe, ~0u);
    setReg(kGhc, kGhcAe | kGhcIe);
  }
  void stop() { setReg(kPort0 + kPxCmd, kCmdFre); }

  struct Prd {
    uint64_t address;
    uint32_t bytes;
  };
  // Builds slot `slot`'s header and table (FIS, packet, PRDT) and issues it.
  void issue(uint8_t command, uint64_t lba, uint16_t count, std::vector<Prd> prdt, unsigned slot = 0, uint16_t features = 0,
             const std::vector<uint8_t>& packet = {}, uint32_t fisDwords = 5, uint64_t table = kTable) {
    uint8_t fis[64] = {0x27, 0x80, command, uint8_t(features), uint8_t(lba), uint8_t(lba >> 8), uint8_t(lba >> 16), 0x40,
                       uint8_t(lba >> 24), uint8_t(lba >> 32), uint8_t(lba >> 40), uint8_t(features >> 8), uint8_t(count),
                       uint8_t(count >> 8)};
    memory.write(table, fis, sizeof fis);
    std::vector<uint8_t> acmd(16, 0);
    std::copy(packet.begin(), packet.end(), acmd.begin());
    memory.write(table + 0x40, acmd.data(), 16);
    for (size_t i = 0; i < prdt.size(); ++i) {
      uint32_t prd[4] = {uint32_t(prdt[i].address), uint32_t(prdt[i].address >> 32), 0, prdt[i].bytes - 1};
      memory.write(table + 0x80 + 16 * i, prd, 16);
    }
    uint32_t header[8] = {fisDwords | (packet.empty() ? 0 : 0x20) | uint32_t(prdt.size()) << 16, 0xdeadbeef, uint32_t(table),
                          uint32_t(table >> 32)};
    memory.write(kClb + 32 * slot, header, sizeof header);
    setReg(kPort0 + kPxCi, 1u << slot);
  }
  uint32_t prdbc(unsigned slot = 0) {
    uint32_t v = 0;
    memory.read(kClb + 32 * slot + 4, &v, 4);
    return v;
  }
  std::vector<uint8_t> guest(uint64_t at, size_t n) {
    std::vector<uint8_t> out(n);
    memory.read(at, out.data(), n);
    return out;
  }
  uint8_t d2hStatus() { return guest(kFb + 0x40, 4)[2]; }
};

std::unique_ptr<RawDisk> raw(const TempImage& image, bool readOnly = false) {
  DiskOptions options;
  options.path = image.path;
  options.readOnly = readOnly;
  return std::make_unique<RawDisk>(options);
}

std::string ataString(const std::vector<uint8_t>& identify, unsigned word, unsigned words) {
  std::string s;
  for (unsigned i = 0; i < words; ++i) s += char(identify[2 * (word + i) + 1]), s += char(identify[2 * (word + i)]);
  return s;
}

TEST_CASE("ahci: ICH8 identity, ABAR in BAR 5, MSI, the PCS word, no NCQ") {
  TempImage image(1 << 20);
  Rig rig(std::make_unique<AtaDisk>(raw(image), "S1"));
  CHECK(rig.config32(0x00) == 0x28218086);
  CHECK((rig.config32(0x08) >> 8) == 0x010601);
  CHECK(rig.hba->bar(kAbar).kind == pci::BarKind::Memory32);
  CHECK((rig.config32(0x34) & 0xff) != 0);
  CHECK((rig.config32(rig.config32(0x34) & 0xff) & 0xff) == pci::kCapabilityMsi);
  CHECK((rig.config32(0x90) >> 16 & 0x1) == 1);  // PCS: port 0 enabled, so Linux need not write it
  uint32_t cap = rig.reg(kCap);
  CHECK((cap & (1u << 30)) == 0);  // SNCQ
  CHECK((cap & (1u << 31)) != 0);  // 64-bit addresses
  CHECK(((cap >> 8) & 0x1f) == 31);
  CHECK((cap & 0x1f) == 0);  // one port
  CHECK(rig.reg(kPi) == 1);
  CHECK(rig.reg(kVs) == 0x00010300);
  CHECK(rig.reg(kGhc) == kGhcAe);
  CHECK(rig.reg(kPort0 + kPxSsts) == 0x123);
  CHECK(rig.reg(kPort0 + kPxSig) == kSignatureAta);
  CHECK((rig.reg(kPort0 + kPxTfd) & kStatusBsy) == 0);
}

TEST_CASE("ahci: COMRESET through PxSCTL drops the link, then posts the signature FIS") {
  TempImage image(1 << 20);
  Rig rig(std::make_unique<AtapiCd>(raw(image, true)));
  rig.start();
  rig.setReg(kPort0 + kPxSctl, 0x301);
  CHECK(rig.reg(kPort0 + kPxSsts) == 0);
  CHECK((rig.reg(kPort0 + kPxTfd) & kStatusBsy) != 0);
  rig.setReg(kPort0 + kPxSctl, 0x300);
  CHECK(rig.reg(kPort0 + kPxSsts) == 0x123);
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);  // BSY clear again: the drive is ready
  CHECK(rig.reg(kPort0 + kPxSig) == kSignatureAtapi);
  auto fis = rig.guest(kFb + 0x40, 14);
  CHECK(fis[0] == 0x34);
  CHECK(fis[12] == 0x01);
  CHECK(fis[5] == 0x14);
  CHECK(fis[6] == 0xeb);
  // HBA reset: GHC.HR reads back clear at once, interrupts off, the port's registers cleared.
  rig.setReg(kGhc, kGhcHr);
  CHECK(rig.reg(kGhc) == kGhcAe);
  CHECK(rig.reg(kPort0 + kPxClb) == 0);
  CHECK(rig.reg(kPort0 + kPxSig) == kSignatureAtapi);
}

TEST_CASE("ahci-hd: IDENTIFY DEVICE over INTx, then over MSI") {
  TempImage image(64 << 20);
  Rig rig(std::make_unique<AtaDisk>(raw(image), "SERIAL-7"));
  rig.start();
  rig.issue(0xec, 0, 0, {{kData, 512}});
  CHECK(rig.prdbc() == 512);
  CHECK(rig.reg(kPort0 + kPxCi) == 0);
  CHECK((rig.reg(kPort0 + kPxIs) & (kIsDhrs | kIsPss)) == (kIsDhrs | kIsPss));
  CHECK(rig.reg(kIs) == 1);
  CHECK(rig.interrupts.level(20));
  auto id = rig.guest(kData, 512);
  CHECK(ataString(id, 27, 7) == "HYVE AHCI DISK");
  CHECK(ataString(id, 10, 4) == "SERIAL-7");
  uint64_t sectors = 0;
  std::memcpy(&sectors, id.data() + 200, 8);
  CHECK(sectors == (64 << 20) / 512);
  CHECK((id[83 * 2 + 1] & 0x04) != 0);  // LBA48
  CHECK((id[169 * 2] & 1) == 1);         // TRIM
  CHECK((id[76 * 2 + 1] & 1) == 0);      // no NCQ
  uint8_t sum = 0;
  for (uint8_t b : id) sum = uint8_t(sum + b);
  CHECK(sum == 0);
  // Clearing PxIS drops the line.
  rig.setReg(kPort0 + kPxIs, ~0u);
  CHECK(rig.reg(kIs) == 0);
  CHECK_FALSE(rig.interrupts.level(20));

  // MSI enabled: the line stays low and each completion sends the message.
  uint8_t msi = uint8_t(rig.config32(0x34));
  rig.hba->configWrite(msi + 4, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("\x00\x00\xe0\xfe"), 4));
  rig.setConfig16(msi + 12, 0x41);
  rig.setConfig16(msi + 2, 1);
  rig.issue(0xec, 0, 0, {{kData, 512}}, 3);
  CHECK_FALSE(rig.interrupts.level(20));
  REQUIRE(rig.interrupts.msis.size() == 1);
  CHECK(rig.interrupts.msis[0].address == 0xfee00000);
  CHECK(rig.interrupts.msis[0].data == 0x41);
}

TEST_CASE("ahci-hd: DMA writes reach the image through a scattered PRDT, reads come back, FLUSH, TRIM punches holes") {
  TempImage image(8 << 20);
  Rig rig(std::make_unique<AtaDisk>(raw(image), ""));
  rig.start();
  std::vector<uint8_t> pattern(4096);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = uint8_t(i * 7 + 3);
  rig.memory.write(kData, pattern.data(), 1024);
  rig.memory.write(kData + 0x10000, pattern.data() + 1024, 3072);
  rig.issue(0x35, 100, 8, {{kData, 1024}, {kData + 0x10000, 3072}});  // WRITE DMA EXT
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);
  CHECK(rig.prdbc() == 4096);
  CHECK(image.read(100 * 512, 4096) == pattern);

  rig.issue(0xc8, 100, 8, {{kData + 0x20000, 4096}});  // READ DMA (28-bit)
  CHECK(rig.guest(kData + 0x20000, 4096) == pattern);
  rig.issue(0xea, 0, 0, {});  // FLUSH CACHE EXT
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);
  rig.issue(0xef, 0, 0x46, {}, 0, 0x03);  // SET FEATURES: UDMA 6
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);

  // TRIM the 8 sectors: they read back as zeros and the file has a hole there.
  std::vector<uint8_t> big(1 << 20, 0x5a);
  image.write(1 << 20, big);
  struct stat before{};
  ::stat(image.path.c_str(), &before);
  uint64_t range = (uint64_t{2048} << 48) | 2048;  // LBA 2048 (1 MiB), 2048 sectors
  std::vector<uint8_t> block(512, 0);
  std::memcpy(block.data(), &range, 8);
  rig.memory.write(kData, block.data(), 512);
  rig.issue(0x06, 0, 1, {{kData, 512}}, 0, 1);
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);
  CHECK(image.read(1 << 20, 4096) == std::vector<uint8_t>(4096, 0));
  struct stat after{};
  ::stat(image.path.c_str(), &after);
  CHECK(after.st_blocks < before.st_blocks);

  // Anything else is aborted: TFES, ERR/ABRT in PxTFD, the port stops until ST is cycled.
  rig.issue(0x00, 0, 0, {});  // NOP
  CHECK((rig.reg(kPort0 + kPxIs) & kIsTfes) != 0);
  CHECK(rig.reg(kPort0 + kPxTfd) == (uint32_t{kErrorAbrt} << 8 | kStatusReady | kStatusErr));
  CHECK(rig.reg(kPort0 + kPxCi) == 1);
  rig.stop();
  CHECK(rig.reg(kPort0 + kPxCi) == 0);
  rig.start();
  rig.issue(0xe7, 0, 0, {});  // FLUSH CACHE
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);
  CHECK(rig.reg(kPort0 + kPxCi) == 0);
}

TEST_CASE("ahci-hd: a read-only disk aborts writes and does not advertise TRIM; LBAs past the end are IDNF") {
  TempImage image(1 << 20);
  Rig rig(std::make_unique<AtaDisk>(raw(image, true), ""));
  rig.start();
  rig.issue(0xca, 0, 1, {{kData, 512}});
  CHECK((rig.reg(kPort0 + kPxTfd) & kStatusErr) != 0);
  CHECK(image.read(0, 512) == std::vector<uint8_t>(512, 0));
  rig.stop(), rig.start();
  rig.issue(0x25, 2047, 2, {{kData, 1024}});  // one sector past the end
  CHECK((rig.reg(kPort0 + kPxTfd) >> 8) == (kErrorIdnf | kErrorAbrt));
}

TEST_CASE("ahci: hostile command lists end in the port's error registers, and the port recovers") {
  TempImage image(1 << 20);
  Rig rig(std::make_unique<AtaDisk>(raw(image), ""), /*slots=*/8);
  auto expectFatal = [&](uint32_t is, uint32_t serr) {
    CHECK((rig.reg(kPort0 + kPxIs) & is) == is);
    CHECK((rig.reg(kPort0 + kPxSerr) & serr) == serr);
    CHECK((rig.reg(kPort0 + kPxTfd) & kStatusErr) != 0);
    CHECK(rig.interrupts.level(20));
    rig.setReg(kPort0 + kPxSerr, ~0u);
    rig.setReg(kPort0 + kPxIs, ~0u);
    rig.stop(), rig.start();
  };
  rig.start();
  rig.issue(0x25, 0, 1, {{16 * layout::MiB - 256, 512}});  // a PRD running off the end of RAM
  expectFatal(kIsHbfs, kSerrInternal);
  rig.issue(0x25, 0, 1, {{uint64_t{1} << 40, 512}});  // a PRD far outside RAM
  expectFatal(kIsHbfs, kSerrInternal);
  rig.issue(0x25, 0, 1, {{kData, 512}}, 0, 0, {}, 5, uint64_t{3} << 30);  // the command table in the PCI hole
  expectFatal(kIsHbfs, kSerrInternal);
  rig.issue(0x25, 0, 1, {}, 0);  // no PRDT for a one-sector read
  expectFatal(kIsOfs, 0);
  rig.issue(0x25, 0, 4, {{kData, 512}});  // a PRDT shorter than the transfer
  expectFatal(kIsOfs, 0);
  rig.issue(0xec, 0, 0, {{kData, 512}}, 0, 0, {}, /*fisDwords=*/0);
  expectFatal(kIsIfs, kSerrProtocol);
  rig.issue(0xec, 0, 0, {{kData, 512}}, 0, 0, {}, /*fisDwords=*/31);
  expectFatal(kIsIfs, kSerrProtocol);
  rig.issue(0xec, 0, 0, {{kData, 512}}, /*slot=*/9);  // beyond CAP.NCS
  expectFatal(kIsIfs, kSerrProtocol);
  rig.setReg(kPort0 + kPxClb, 0xfffffc00);  // the command list itself outside RAM
  rig.setReg(kPort0 + kPxCi, 1);
  expectFatal(kIsHbfs, kSerrInternal);
  // 65535 PRD entries of 4 MiB each, all on the same RAM: bounded, and a read fills only what it asks for.
  rig.issue(0x25, 0, 1, std::vector<Rig::Prd>(65535, Rig::Prd{kData, 4 << 20}), 0, 0, {}, 5, 0x100000);
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);
  CHECK(rig.prdbc() == 512);
  // Recovered: a good command completes.
  rig.issue(0xec, 0, 0, {{kData, 512}});
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);
  CHECK(rig.prdbc() == 512);
}

TEST_CASE("ahci-cd: ATAPI signature, IDENTIFY PACKET, INQUIRY, READ CAPACITY, READ(10/12), TOC, sense for the rest") {
  TempImage image(10 * 2048 + 100);  // a partial last block reads as zeros
  std::vector<uint8_t> block(2048);
  for (size_t i = 0; i < block.size(); ++i) block[i] = uint8_t(i ^ 0xa5);
  image.write(3 * 2048, block);
  Rig rig(std::make_unique<AtapiCd>(raw(image, true)));
  rig.start();
  CHECK(rig.reg(kPort0 + kPxSig) == kSignatureAtapi);
  rig.issue(0xec, 0, 0, {{kData, 512}});  // IDENTIFY DEVICE: aborted, with the signature
  CHECK((rig.reg(kPort0 + kPxTfd) & kStatusErr) != 0);
  CHECK(rig.guest(kFb + 0x40, 7)[6] == 0xeb);
  rig.stop(), rig.start();
  rig.issue(0xa1, 0, 0, {{kData, 512}});
  CHECK(rig.guest(kData, 2) == std::vector<uint8_t>{0xc0, 0x85});

  auto packet = [&](std::vector<uint8_t> cdb, uint32_t bytes) {
    rig.issue(0xa0, 0, 0, {{kData, bytes}}, 0, 1, cdb);
    return rig.guest(kData, bytes);
  };
  auto inquiry = packet({0x12, 0, 0, 0, 36, 0}, 36);
  CHECK(inquiry[0] == 0x05);
  CHECK(std::string(inquiry.begin() + 8, inquiry.begin() + 16) == "HYVE    ");
  auto capacity = packet({0x25}, 8);
  CHECK(capacity == std::vector<uint8_t>{0, 0, 0, 10, 0, 0, 8, 0});  // last LBA 10, 2048-byte blocks
  CHECK(packet({0x28, 0, 0, 0, 0, 3, 0, 0, 1, 0}, 2048) == block);
  CHECK(packet({0xa8, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0}, 2048) == block);
  CHECK(rig.prdbc() == 2048);
  auto toc = packet({0x43, 0, 0, 0, 0, 0, 0, 0, 20, 0}, 20);
  CHECK(toc[3] == 1);
  CHECK(toc[14] == 0xaa);
  CHECK(toc[19] == 11);  // lead-out at block 11
  auto session = packet({0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40}, 12);  // format 1 the SFF-8020 way
  CHECK(session[1] == 10);
  auto mode = packet({0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 28, 0}, 28);
  CHECK(mode[8] == 0x2a);
  auto event = packet({0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0}, 8);
  CHECK(event[5] == 0x02);  // media present
  packet({0x00}, 2);        // TEST UNIT READY
  CHECK(rig.reg(kPort0 + kPxTfd) == kStatusReady);

  // A write is not an MMC command this drive has: CHECK CONDITION, ILLEGAL REQUEST.
  packet({0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, 2048);
  CHECK((rig.reg(kPort0 + kPxTfd) >> 8) == (0x05 << 4 | kErrorAbrt));
  CHECK((rig.reg(kPort0 + kPxIs) & kIsTfes) != 0);
  rig.stop(), rig.start();
  auto sense = packet({0x03, 0, 0, 0, 18, 0}, 18);
  CHECK(sense[2] == 0x05);
  CHECK(sense[12] == 0x20);
  packet({0x28, 0, 0, 0, 0, 11, 0, 0, 1, 0}, 2048);  // past the end
  rig.stop(), rig.start();
  CHECK(packet({0x03, 0, 0, 0, 18, 0}, 18)[12] == 0x21);
}

TEST_CASE("ahci: port and HBA registers and the medium survive a snapshot field by field; bad fields are refused") {
  TempImage image(1 << 20);
  image.write(2048 * 3, std::vector<uint8_t>(2048, 'm'));  // block 3 of the CD, as it was at the snapshot
  char dir[] = "/tmp/hyve-ahci-snap-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string snapshotDir = dir;
  const char* section = "device:pci-00:05.0:ahci-cd";
  Rig rig(std::make_unique<AtapiCd>(raw(image, true)));
  rig.hba->setSnapshotDirectory([&] { return snapshotDir; });
  (void)rig.hba->snapshotSection(section);
  rig.start();
  rig.issue(0xa0, 0, 0, {{kData, 18}}, 0, 1, {0x2a});  // leaves sense data and TFES
  auto state = rig.hba->saveState();
  std::string copy = std::string(dir) + "/device-pci-00-05.0-ahci-cd.port0.disk";
  struct stat st{};
  REQUIRE(::stat(copy.c_str(), &st) == 0);
  CHECK(st.st_size == (1 << 20));
  image.write(2048 * 3, std::vector<uint8_t>(2048, 'x'));  // the image changes after the snapshot
  snapshot::StateWriter out;
  state.save(out);
  auto bytes = out.take();

  // A restore builds the drive without a medium; the snapshot's copy becomes it.
  Rig fresh(std::make_unique<AtapiCd>(nullptr));
  fresh.hba->setSnapshotDirectory([&] { return snapshotDir; });
  (void)fresh.hba->snapshotSection(section);
  snapshot::StateReader in(bytes, "test");
  fresh.hba->restoreState(AhciHba::State::load(in));
  in.expectEnd();
  CHECK(fresh.reg(kPort0 + kPxClb) == kClb);
  CHECK(fresh.reg(kPort0 + kPxIs) == rig.reg(kPort0 + kPxIs));
  CHECK(fresh.reg(kPort0 + kPxTfd) == rig.reg(kPort0 + kPxTfd));
  CHECK(fresh.reg(kGhc) == (kGhcAe | kGhcIe));
  fresh.stop(), fresh.start();
  fresh.issue(0xa0, 0, 0, {{kData, 18}}, 0, 1, {0x03, 0, 0, 0, 18});
  CHECK(fresh.guest(kData, 18)[2] == 0x05);  // the sense data came along
  fresh.issue(0xa0, 0, 0, {{kData, 2048}}, 0, 1, {0x28, 0, 0, 0, 0, 3, 0, 0, 1, 0});  // READ(10) of block 3
  CHECK(fresh.guest(kData, 2048) == std::vector<uint8_t>(2048, 'm'));

  // A missing medium file is a bad snapshot.
  ::unlink(copy.c_str());
  Rig missing(std::make_unique<AtapiCd>(nullptr));
  missing.hba->setSnapshotDirectory([&] { return snapshotDir; });
  (void)missing.hba->snapshotSection(section);
  snapshot::StateReader again(bytes, "test");
  CHECK_THROWS_AS(missing.hba->restoreState(AhciHba::State::load(again)), Error);
  ::rmdir(dir);

  auto corrupt = [&](const char* field, uint32_t value) {
    auto copy = bytes;
    std::string name(field);
    auto at = std::search(copy.begin(), copy.end(), name.begin(), name.end());
    REQUIRE(at != copy.end());
    std::memcpy(&*(at + name.size()), &value, 4);
    snapshot::StateReader bad(copy, "test");
    CHECK_THROWS_AS(AhciHba::State::load(bad), Error);
  };
  corrupt("ssts", 0x7);
  corrupt("ghc", 0x1);
  corrupt("ports", 31);
  corrupt("cmd", 1u << 27);
}

}  // namespace
}  // namespace hyve::ahci
