#include "ahci/atapi_cd.h"

#include "block/disk_snapshot.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace hyve::ahci {

namespace {

constexpr uint8_t kPacket = 0xa0;
constexpr uint8_t kIdentifyPacketDevice = 0xa1;
constexpr uint8_t kDeviceReset = 0x08;
constexpr uint8_t kIdentifyDevice = 0xec;
constexpr uint8_t kSetFeatures = 0xef;
constexpr uint8_t kCheckPowerMode = 0xe5;

// SCSI / MMC operation codes.
constexpr uint8_t kTestUnitReady = 0x00;
constexpr uint8_t kRequestSense = 0x03;
constexpr uint8_t kInquiry = 0x12;
constexpr uint8_t kStartStopUnit = 0x1b;
constexpr uint8_t kPreventAllow = 0x1e;
constexpr uint8_t kReadCapacity = 0x25;
constexpr uint8_t kRead10 = 0x28;
constexpr uint8_t kReadToc = 0x43;
constexpr uint8_t kGetEventStatus = 0x4a;
constexpr uint8_t kModeSense10 = 0x5a;
constexpr uint8_t kRead12 = 0xa8;

// Sense keys and additional sense codes (SPC-4 4.5.6).
constexpr uint8_t kIllegalRequest = 0x05;
constexpr uint8_t kAscInvalidOpcode = 0x20;
constexpr uint8_t kAscLbaOutOfRange = 0x21;
constexpr uint8_t kAscInvalidField = 0x24;
constexpr uint8_t kMediumError = 0x03;
constexpr uint8_t kAscUnrecoveredRead = 0x11;

// The lead-in a CD's first track starts after: 2 seconds of 75 frames.
constexpr uint32_t kMsfOffset = 150;

uint32_t be16(const uint8_t* p) { return uint32_t{p[0]} << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }
void putBe16(uint8_t* p, uint32_t v) { p[0] = uint8_t(v >> 8), p[1] = uint8_t(v); }
void putBe32(uint8_t* p, uint32_t v) { p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v); }

// A track address as READ TOC reports it: LBA, or minute/second/frame when MSF is asked.
void putAddress(uint8_t* p, uint32_t lba, bool msf) {
  if (!msf) return putBe32(p, lba);
  uint32_t frames = lba + kMsfOffset;
  p[0] = 0;
  p[1] = static_cast<uint8_t>(std::min<uint32_t>(frames / (60 * 75), 255));
  p[2] = static_cast<uint8_t>(frames / 75 % 60);
  p[3] = static_cast<uint8_t>(frames % 75);
}

}  // namespace

AtapiCd::AtapiCd(std::unique_ptr<RawDisk> disk) : disk_(std::move(disk)), blocks_(disk_ ? (disk_->sizeBytes() + kBlock - 1) / kBlock : 0) {}

void AtapiCd::reset() { sense_ = {}; }

AtaResult AtapiCd::execute(const AtaCommand& c, const DataBuffers& data) {
  switch (c.command) {
    case kPacket:
      return packet(c, data);
    case kIdentifyPacketDevice: {
      std::array<uint16_t, 256> w{};
      w[0] = 0x85c0;  // ATAPI, CD-ROM, removable, 12-byte packets, DRQ within 50 µs
      putAtaString(std::span(w).subspan(10, 10), "HYVE-AHCI-CD");
      putAtaString(std::span(w).subspan(23, 4), "0001");
      putAtaString(std::span(w).subspan(27, 20), "HYVE AHCI CD-ROM");
      w[49] = 0x0b00;  // IORDY, LBA, DMA
      w[53] = 0x0006;
      w[63] = 0x0007;
      w[64] = 0x0003;
      w[65] = w[66] = w[67] = w[68] = 120;
      w[76] = 0x0006;
      w[80] = 0x01f0;
      w[82] = 0x4014;  // NOP, PACKET, removable media
      w[83] = 0x4000;
      w[84] = 0x4000;
      w[85] = 0x4014;
      w[87] = 0x4000;
      w[88] = 0x407f;  // UDMA 0-6, UDMA 6 selected
      sealIdentify(w);
      AtaResult r = AtaResult::ok(data.copyIn({reinterpret_cast<const uint8_t*>(w.data()), 512}));
      r.pioIn = true;
      r.overflow = r.transferred < 512;
      return r;
    }
    case kIdentifyDevice: {
      // A packet device aborts IDENTIFY DEVICE and shows its signature (ATA8-ACS 7.16).
      AtaResult r = AtaResult::abort();
      r.count = 1;
      r.lba = kSignatureAtapi >> 8;
      return r;
    }
    case kDeviceReset:
      reset();
      return AtaResult{.status = 0, .error = 0x01, .count = 1, .lba = kSignatureAtapi >> 8};
    case kSetFeatures:
    case kCheckPowerMode:
      return AtaResult::ok();
    default:
      return AtaResult::abort();
  }
}

AtaResult AtapiCd::checkCondition(uint8_t key, uint8_t asc, uint8_t ascq) {
  sense_ = {key, asc, ascq};
  // The ATAPI error register carries the sense key in its high nibble (MMC, ATA8-ACS 7.21).
  return AtaResult{.status = kStatusReady | kStatusErr, .error = static_cast<uint8_t>(key << 4 | kErrorAbrt)};
}

AtaResult AtapiCd::reply(std::span<const uint8_t> bytes, uint32_t allocation, const DataBuffers& data) {
  AtaResult r = AtaResult::ok(data.copyIn(bytes.first(std::min<size_t>(bytes.size(), allocation))));
  r.pioIn = true;
  return r;
}

AtaResult AtapiCd::read(uint64_t lba, uint64_t blocks, const DataBuffers& data) {
  if (lba > blocks_ || blocks > blocks_ - lba) return checkCondition(kIllegalRequest, kAscLbaOutOfRange);
  uint64_t bytes = blocks * kBlock;
  if (data.size() < bytes) {
    AtaResult r = checkCondition(kIllegalRequest, kAscInvalidField);
    r.overflow = true;
    return r;
  }
  if (bytes && !disk_->read(lba * kBlock, data.first(bytes))) return checkCondition(kMediumError, kAscUnrecoveredRead);
  return AtaResult::ok(bytes);
}

AtaResult AtapiCd::packet(const AtaCommand& c, const DataBuffers& data) {
  const uint8_t* cdb = c.packet.data();
  if (cdb[0] != kRequestSense) sense_ = {};
  switch (cdb[0]) {
    case kTestUnitReady:
    case kPreventAllow:
    case kStartStopUnit:  // no tray to open: a guest's eject is accepted and changes nothing
      return AtaResult::ok();
    case kRequestSense: {
      uint8_t s[18] = {0x70, 0, sense_.key, 0, 0, 0, 0, 10, 0, 0, 0, 0, sense_.asc, sense_.ascq};
      sense_ = {};
      return reply(s, cdb[4], data);
    }
    case kInquiry: {
      if (cdb[1] & 1) return checkCondition(kIllegalRequest, kAscInvalidField);  // no vital product data
      uint8_t s[36] = {0x05, 0x80, 0x05, 0x32, 31};  // CD/DVD, removable, SPC-3, response format 2
      std::memcpy(s + 8, "HYVE    ", 8);
      std::memcpy(s + 16, "AHCI CD-ROM     ", 16);
      std::memcpy(s + 32, "0001", 4);
      return reply(s, be16(cdb + 3), data);
    }
    case kReadCapacity: {
      uint8_t s[8];
      putBe32(s, static_cast<uint32_t>(std::min<uint64_t>(blocks_ ? blocks_ - 1 : 0, UINT32_MAX)));
      putBe32(s + 4, kBlock);
      return reply(s, sizeof s, data);
    }
    case kRead10:
      return read(be32(cdb + 2), be16(cdb + 7), data);
    case kRead12:
      return read(be32(cdb + 2), be32(cdb + 6), data);
    case kReadToc:
      return readToc(cdb, data);
    case kModeSense10:
      return modeSense(cdb, data);
    case kGetEventStatus: {
      if (!(cdb[1] & 1)) return checkCondition(kIllegalRequest, kAscInvalidField);  // only polled
      uint8_t s[8] = {};
      if (cdb[4] & 0x10) {  // media class: no change, a medium is present
        putBe16(s, 6);
        s[2] = 0x04;
        s[3] = 0x10;
        s[5] = 0x02;
        return reply(s, be16(cdb + 7), data);
      }
      putBe16(s, 2);
      s[2] = 0x80;  // no event available
      s[3] = 0x10;
      return reply(std::span(s, 4), be16(cdb + 7), data);
    }
    default:
      return checkCondition(kIllegalRequest, kAscInvalidOpcode);
  }
}

AtaResult AtapiCd::readToc(const uint8_t* cdb, const DataBuffers& data) {
  bool msf = cdb[1] & 2;
  unsigned format = cdb[2] & 0x0f;
  if (format == 0) format = cdb[9] >> 6;  // the older place for it (SFF-8020)
  uint32_t allocation = be16(cdb + 7);
  uint8_t s[20] = {};
  switch (format) {
    case 0: {  // one data track, then the lead-out
      uint8_t start = cdb[6];
      if (start > 1 && start != 0xaa) return checkCondition(kIllegalRequest, kAscInvalidField);
      size_t at = 4;
      if (start <= 1) {
        s[at + 1] = 0x14, s[at + 2] = 1;  // ADR 1, data track; track 1
        putAddress(s + at + 4, 0, msf);
        at += 8;
      }
      s[at + 1] = 0x14, s[at + 2] = 0xaa;
      putAddress(s + at + 4, static_cast<uint32_t>(std::min<uint64_t>(blocks_, UINT32_MAX - kMsfOffset)), msf);
      at += 8;
      putBe16(s, static_cast<uint32_t>(at - 2));
      s[2] = 1, s[3] = 1;
      return reply(std::span(s, at), allocation, data);
    }
    case 1: {  // session information: one session, starting at track 1
      putBe16(s, 10);
      s[2] = 1, s[3] = 1;
      s[5] = 0x14, s[6] = 1;
      putAddress(s + 8, 0, msf);
      return reply(std::span(s, 12), allocation, data);
    }
    default:
      return checkCondition(kIllegalRequest, kAscInvalidField);
  }
}

AtaResult AtapiCd::modeSense(const uint8_t* cdb, const DataBuffers& data) {
  unsigned page = cdb[2] & 0x3f, control = cdb[2] >> 6;
  if (control == 3) return checkCondition(kIllegalRequest, 0x39);  // saving parameters not supported
  std::vector<uint8_t> s(8, 0);
  s[2] = 0x01;  // medium type: 120 mm CD-ROM, data only
  auto addErrorRecovery = [&] {
    uint8_t p[12] = {0x01, 10};
    s.insert(s.end(), p, p + sizeof p);
  };
  auto addCapabilities = [&] {
    uint8_t p[20] = {0x2a, 18};
    p[2] = 0x01;  // reads CD-R
    p[6] = 0x29;  // lock, eject, tray loader
    putBe16(p + 8, 706);  // max speed, KB/s (4x)
    putBe16(p + 14, 706);
    if (control == 1) std::memset(p + 2, 0, sizeof p - 2);  // changeable values: none
    s.insert(s.end(), p, p + sizeof p);
  };
  switch (page) {
    case 0x01: addErrorRecovery(); break;
    case 0x2a: addCapabilities(); break;
    case 0x3f: addErrorRecovery(), addCapabilities(); break;
    default: return checkCondition(kIllegalRequest, kAscInvalidField);
  }
  putBe16(s.data(), static_cast<uint32_t>(s.size() - 2));
  return reply(s, be16(cdb + 7), data);
}

void AtapiCd::save(snapshot::StateWriter& out, const std::string& diskFile) const {
  out.u8("senseKey", sense_.key);
  out.u8("senseAsc", sense_.asc);
  out.u8("senseAscq", sense_.ascq);
  saveDiskToSnapshot(*disk_, out, diskFile, "ahci-cd");
}

void AtapiCd::load(snapshot::StateReader& in, const std::string& diskFile) {
  Sense s;
  s.key = in.u8("senseKey", 0x0f);
  s.asc = in.u8("senseAsc");
  s.ascq = in.u8("senseAscq");
  auto disk = restoreDiskFromSnapshot(in, diskFile, "ahci-cd");
  if (!disk->readOnly()) in.fail("the CD's medium is not read-only");
  sense_ = s;
  blocks_ = (disk->sizeBytes() + kBlock - 1) / kBlock;
  disk_ = std::move(disk);
}

}  // namespace hyve::ahci
