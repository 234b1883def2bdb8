#include "ahci/ata_disk.h"

#include "block/disk_snapshot.h"

#include <algorithm>
#include <cstring>

namespace hyve::ahci {

namespace {

// ATA8-ACS command codes.
constexpr uint8_t kDataSetManagement = 0x06;
constexpr uint8_t kReadSectors = 0x20;
constexpr uint8_t kReadSectorsExt = 0x24;
constexpr uint8_t kReadDmaExt = 0x25;
constexpr uint8_t kWriteSectors = 0x30;
constexpr uint8_t kWriteSectorsExt = 0x34;
constexpr uint8_t kWriteDmaExt = 0x35;
constexpr uint8_t kExecuteDiagnostic = 0x90;
constexpr uint8_t kReadDma = 0xc8;
constexpr uint8_t kWriteDma = 0xca;
constexpr uint8_t kStandbyImmediate = 0xe0;
constexpr uint8_t kIdleImmediate = 0xe1;
constexpr uint8_t kStandby = 0xe2;
constexpr uint8_t kIdle = 0xe3;
constexpr uint8_t kCheckPowerMode = 0xe5;
constexpr uint8_t kFlushCache = 0xe7;
constexpr uint8_t kFlushCacheExt = 0xea;
constexpr uint8_t kIdentifyDevice = 0xec;
constexpr uint8_t kSetFeatures = 0xef;

// DATA SET MANAGEMENT: the TRIM bit, and the 512-byte blocks of ranges one command may carry
// (IDENTIFY word 105). Each range is 8 bytes: LBA in bits 0-47, sectors in 48-63.
constexpr uint16_t kTrimBit = 1;
constexpr uint16_t kMaxTrimBlocks = 8;

}  // namespace

AtaDisk::AtaDisk(std::unique_ptr<RawDisk> disk, std::string serial)
    : disk_(std::move(disk)), serial_(std::move(serial)), sectors_(disk_ ? disk_->sizeBytes() / kSector : 0) {
  if (serial_.empty()) serial_ = "HYVE-AHCI-DISK";
}

void AtaDisk::reset() {
  writeCache_ = true;
  udmaMode_ = 0x40;
}

std::array<uint16_t, 256> AtaDisk::identify() const {
  std::array<uint16_t, 256> w{};
  uint64_t chs = std::min<uint64_t>(sectors_ / (16 * 63), 16383);
  w[1] = static_cast<uint16_t>(chs);  // obsolete geometry, for old drivers
  w[3] = 16;
  w[6] = 63;
  putAtaString(std::span(w).subspan(10, 10), serial_);
  putAtaString(std::span(w).subspan(23, 4), "0001");
  putAtaString(std::span(w).subspan(27, 20), "HYVE AHCI DISK");
  w[47] = 0x8000;  // READ/WRITE MULTIPLE not supported (no SET MULTIPLE MODE)
  w[49] = 0x0b00;  // IORDY, LBA, DMA
  w[50] = 0x4000;
  w[53] = 0x0006;  // words 64-70 and 88 valid
  w[54] = static_cast<uint16_t>(chs);
  w[55] = 16;
  w[56] = 63;
  uint32_t chsSectors = static_cast<uint32_t>(chs * 16 * 63);
  w[57] = static_cast<uint16_t>(chsSectors);
  w[58] = static_cast<uint16_t>(chsSectors >> 16);
  uint32_t lba28 = static_cast<uint32_t>(std::min<uint64_t>(sectors_, 0x0fffffff));
  w[60] = static_cast<uint16_t>(lba28);
  w[61] = static_cast<uint16_t>(lba28 >> 16);
  w[63] = 0x0007;  // multiword DMA 0-2 supported, none selected
  w[64] = 0x0003;  // PIO 3-4
  w[65] = w[66] = w[67] = w[68] = 120;
  w[69] = disk_->readOnly() ? 0 : 0x4020;  // deterministic zeroes after TRIM (holes read as zeros)
  w[76] = 0x0006;  // SATA Gen1 and Gen2; no NCQ
  w[80] = 0x01f0;  // ATA/ATAPI-4 to ATA8-ACS
  w[82] = 0x4068;  // NOP, look-ahead, write cache, power management
  w[83] = 0x7400;  // FLUSH CACHE EXT, FLUSH CACHE, 48-bit addresses
  w[84] = 0x4000;
  w[85] = static_cast<uint16_t>(0x4048 | (writeCache_ ? 0x0020 : 0));
  w[86] = 0x3400;
  w[87] = 0x4000;
  w[88] = static_cast<uint16_t>(0x007f | udmaMode_ << 8);
  // Word 93 (PATA hardware reset result) stays 0: with word 80 that is how Linux tells SATA.
  for (unsigned i = 0; i < 4; ++i) w[100 + i] = static_cast<uint16_t>(sectors_ >> (16 * i));
  w[105] = disk_->readOnly() ? 0 : kMaxTrimBlocks;
  w[106] = 0x4000;  // one logical sector per physical sector
  w[169] = disk_->readOnly() ? 0 : 0x0001;  // DATA SET MANAGEMENT TRIM
  w[217] = 1;  // non-rotating: the guest treats it as an SSD
  sealIdentify(w);
  return w;
}

AtaResult AtaDisk::execute(const AtaCommand& c, const DataBuffers& data) {
  switch (c.command) {
    case kIdentifyDevice: {
      auto words = identify();
      AtaResult r = AtaResult::ok(data.copyIn({reinterpret_cast<const uint8_t*>(words.data()), 512}));
      r.pioIn = true;
      r.overflow = r.transferred < 512;
      return r;
    }
    case kReadDma: return transfer(c, data, false, false, false);
    case kReadDmaExt: return transfer(c, data, true, false, false);
    case kReadSectors: return transfer(c, data, false, false, true);
    case kReadSectorsExt: return transfer(c, data, true, false, true);
    case kWriteDma: return transfer(c, data, false, true, false);
    case kWriteDmaExt: return transfer(c, data, true, true, false);
    case kWriteSectors: return transfer(c, data, false, true, true);
    case kWriteSectorsExt: return transfer(c, data, true, true, true);
    case kFlushCache:
    case kFlushCacheExt:
      return disk_->flush() ? AtaResult::ok() : AtaResult::abort();
    case kDataSetManagement: return trim(c, data);
    case kSetFeatures: return setFeatures(c);
    case kStandbyImmediate:
    case kIdleImmediate:
    case kStandby:
    case kIdle:
      // A guest powering off flushes first; make sure that reached the file too.
      return disk_->flush() ? AtaResult::ok() : AtaResult::abort();
    case kCheckPowerMode: {
      AtaResult r = AtaResult::ok();
      r.count = 0xff;  // active or idle
      return r;
    }
    case kExecuteDiagnostic: {
      AtaResult r = AtaResult::ok();
      r.error = 0x01;  // no error detected (the error register is the diagnostic code)
      r.count = 1;
      r.lba = 1;
      return r;
    }
    default:
      return AtaResult::abort();
  }
}

AtaResult AtaDisk::transfer(const AtaCommand& c, const DataBuffers& data, bool ext, bool write, bool pio) {
  uint64_t lba = ext ? c.lba & 0xffffffffffffull : c.lba & 0x0fffffff;
  uint64_t count = ext ? (c.count ? c.count : 65536u) : ((c.count & 0xff) ? (c.count & 0xff) : 256u);
  if (lba > sectors_ || count > sectors_ - lba) return AtaResult::abort(kErrorIdnf | kErrorAbrt);
  if (write && disk_->readOnly()) return AtaResult::abort();
  uint64_t bytes = count * kSector;
  if (data.size() < bytes) {
    AtaResult r = AtaResult::abort();
    r.overflow = true;
    return r;
  }
  auto iov = data.first(bytes);
  bool ok = write ? disk_->write(lba * kSector, iov) : disk_->read(lba * kSector, iov);
  if (!ok) {
    // A medium error: the guest sees an uncorrectable sector, not a hung command.
    return AtaResult{.status = kStatusReady | kStatusErr, .error = 0x40, .lba = lba};
  }
  AtaResult r = AtaResult::ok(bytes);
  r.pioIn = pio && !write;
  return r;
}

AtaResult AtaDisk::trim(const AtaCommand& c, const DataBuffers& data) {
  if (!(c.features & kTrimBit) || disk_->readOnly()) return AtaResult::abort();
  uint64_t blocks = c.count;
  if (blocks == 0 || blocks > kMaxTrimBlocks) return AtaResult::abort();
  std::array<uint8_t, kMaxTrimBlocks * kSector> ranges{};
  uint64_t bytes = blocks * kSector;
  if (data.copyOut(std::span(ranges).first(bytes)) < bytes) {
    AtaResult r = AtaResult::abort();
    r.overflow = true;
    return r;
  }
  for (uint64_t at = 0; at < bytes; at += 8) {
    uint64_t entry;
    std::memcpy(&entry, ranges.data() + at, 8);
    uint64_t lba = entry & 0xffffffffffffull, length = entry >> 48;
    if (length == 0) continue;  // unused entries are zero-length
    if (lba > sectors_ || length > sectors_ - lba) return AtaResult::abort(kErrorIdnf | kErrorAbrt);
    // IDENTIFY word 69 promises zeros after TRIM: where holes cannot be punched, write them.
    if (!disk_->discard(lba * kSector, length * kSector) && !disk_->writeZeroes(lba * kSector, length * kSector)) {
      return AtaResult::abort();
    }
  }
  return AtaResult::ok(bytes);
}

AtaResult AtaDisk::setFeatures(const AtaCommand& c) {
  switch (c.features & 0xff) {
    case 0x02: writeCache_ = true; return AtaResult::ok();
    case 0x82: writeCache_ = false; return AtaResult::ok();
    case 0x03: {  // set transfer mode: the count register names it
      uint8_t mode = c.count & 0xff;
      if ((mode >> 3) == 8 && (mode & 7) <= 6) udmaMode_ = static_cast<uint8_t>(1u << (mode & 7));  // UDMA n
      else if ((mode >> 3) > 1 && (mode >> 3) != 4) return AtaResult::abort();  // PIO (0, 1) and MWDMA (4) accepted
      return AtaResult::ok();
    }
    case 0x55: case 0xaa:  // read look-ahead off / on
    case 0x66: case 0xcc:  // reverting to power-on defaults off / on
      return AtaResult::ok();
    default:
      return AtaResult::abort();
  }
}

void AtaDisk::save(snapshot::StateWriter& out, const std::string& diskFile) const {
  out.boolean("writeCache", writeCache_);
  out.u8("udmaMode", udmaMode_);
  out.blob("serial", std::span(reinterpret_cast<const uint8_t*>(serial_.data()), serial_.size()));
  saveDiskToSnapshot(*disk_, out, diskFile, "ahci-hd");
}

void AtaDisk::load(snapshot::StateReader& in, const std::string& diskFile) {
  bool writeCache = in.boolean("writeCache");
  uint8_t mode = in.u8("udmaMode", 0x40);
  if (mode == 0 || (mode & (mode - 1))) in.fail("udmaMode must name one UDMA mode");
  auto serial = in.blob("serial");
  if (serial.empty() || serial.size() > 20) in.fail("the serial must have 1 to 20 bytes");
  auto disk = restoreDiskFromSnapshot(in, diskFile, "ahci-hd");
  writeCache_ = writeCache;
  udmaMode_ = mode;
  serial_.assign(serial.begin(), serial.end());
  sectors_ = disk->sizeBytes() / kSector;
  disk_ = std::move(disk);
}

}  // namespace hyve::ahci
