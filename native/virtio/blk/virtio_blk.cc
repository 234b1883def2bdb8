#include "virtio/blk/virtio_blk.h"

#include "block/disk_snapshot.h"
#include "util/error.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace hyve::virtio {

namespace {

constexpr uint64_t kSector = 512;

// Feature bits (§5.2.3).
constexpr unsigned kSegMaxBit = 2;
constexpr unsigned kRoBit = 5;
constexpr unsigned kBlkSizeBit = 6;
constexpr unsigned kFlushBit = 9;
constexpr unsigned kDiscardBit = 13;
constexpr unsigned kWriteZeroesBit = 14;

// Request types and status values (§5.2.6).
constexpr uint32_t kIn = 0;
constexpr uint32_t kOut = 1;
constexpr uint32_t kFlush = 4;
constexpr uint32_t kGetId = 8;
constexpr uint32_t kDiscard = 11;
constexpr uint32_t kWriteZeroes = 13;
constexpr uint8_t kOk = 0;
constexpr uint8_t kIoErr = 1;
constexpr uint8_t kUnsupported = 2;
constexpr uint32_t kIdBytes = 20;

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

struct Range {
  uint64_t sector;
  uint32_t sectors;
  uint32_t flags;
};

// The chain's buffers as iovecs, from byte `skip` of `segments`, `length` bytes long.
std::vector<iovec> iovecs(const std::vector<Segment>& segments, uint64_t skip, uint64_t length) {
  std::vector<iovec> out;
  for (const auto& s : segments) {
    if (length == 0) break;
    if (skip >= s.data.size()) {
      skip -= s.data.size();
      continue;
    }
    uint64_t n = std::min<uint64_t>(s.data.size() - skip, length);
    out.push_back({s.data.data() + skip, n});
    length -= n;
    skip = 0;
  }
  return out;
}

}  // namespace

VirtioBlk::VirtioBlk(std::unique_ptr<RawDisk> disk, std::string serial)
    : disk_(std::move(disk)), serial_(std::move(serial)), sectors_(disk_->sizeBytes() / kSector) {}

uint64_t VirtioBlk::features() const {
  uint64_t f = 1ull << kSegMaxBit | 1ull << kBlkSizeBit | 1ull << kFlushBit;
  if (!disk_ || disk_->readOnly()) return f | 1ull << kRoBit;
  return f | 1ull << kDiscardBit | 1ull << kWriteZeroesBit;
}

void VirtioBlk::readConfig(uint64_t offset, std::span<uint8_t> data) const {
  uint8_t config[64] = {};
  auto put32 = [&](unsigned at, uint32_t v) { std::memcpy(config + at, &v, 4); };
  std::memcpy(config, &sectors_, 8);  // capacity, in 512-byte sectors
  put32(12, kSegMax);
  put32(20, kSector);  // blk_size
  put32(36, kMaxDiscardSectors);
  put32(40, kMaxDiscardSegments);
  put32(44, 1);  // discard_sector_alignment
  put32(48, kMaxDiscardSectors);
  put32(52, kMaxDiscardSegments);
  config[56] = 1;  // write_zeroes_may_unmap
  std::fill(data.begin(), data.end(), 0);
  if (offset < sizeof config) std::memcpy(data.data(), config + offset, std::min<uint64_t>(data.size(), sizeof config - offset));
}

void VirtioBlk::saveDeviceState(snapshot::StateWriter& out, const std::string& files) const {
  saveDiskToSnapshot(*disk_, out, files.empty() ? files : files + ".disk", "virtio-blk");
  out.blob("serial", std::span(reinterpret_cast<const uint8_t*>(serial_.data()), serial_.size()));
}

void VirtioBlk::restoreDeviceState(snapshot::StateReader& in, const std::string& files) {
  auto disk = restoreDiskFromSnapshot(in, files + ".disk", "virtio-blk");
  auto serial = in.blob("serial");
  if (serial.size() > kIdBytes) throw Error(ErrorCode::BadSnapshot, "virtio-blk: the serial is longer than 20 bytes");
  sectors_ = disk->sizeBytes() / kSector;
  disk_ = std::move(disk);
  serial_.assign(serial.begin(), serial.end());
}

uint8_t VirtioBlk::ranges(const Chain& chain, uint64_t dataBytes, bool zeroes) {
  if (disk_->readOnly()) return kIoErr;
  if (dataBytes == 0 || dataBytes % sizeof(Range) || dataBytes / sizeof(Range) > kMaxDiscardSegments) return kUnsupported;
  for (uint64_t at = 0; at < dataBytes; at += sizeof(Range)) {
    Range r{};
    chain.read(sizeof(Header) + at, std::span(reinterpret_cast<uint8_t*>(&r), sizeof r));
    if (r.sectors > kMaxDiscardSectors || r.sector > sectors_ || r.sectors > sectors_ - r.sector) return kIoErr;
    bool ok = zeroes ? disk_->writeZeroes(r.sector * kSector, uint64_t{r.sectors} * kSector)
                     : disk_->discard(r.sector * kSector, uint64_t{r.sectors} * kSector);
    if (!ok) return zeroes ? kIoErr : kOk;  // a discard is a hint: a filesystem without holes may ignore it
  }
  return kOk;
}

uint32_t VirtioBlk::handle(unsigned, const Chain& chain) {
  uint64_t writable = chain.writableBytes();
  if (writable == 0) return 0;  // nowhere to put a status: the request cannot be answered
  uint64_t statusAt = writable - 1;
  auto finish = [&](uint8_t status, uint64_t dataWritten) {
    chain.write(statusAt, std::span<const uint8_t>(&status, 1));
    return static_cast<uint32_t>(dataWritten + 1);
  };
  if (!disk_) return finish(kIoErr, 0);
  Header header{};
  if (chain.readableBytes() < sizeof header) return finish(kIoErr, 0);
  chain.read(0, std::span(reinterpret_cast<uint8_t*>(&header), sizeof header));
  uint64_t outBytes = chain.readableBytes() - sizeof header;  // data after the header
  uint64_t inBytes = statusAt;                                // data before the status byte
  auto inRange = [&](uint64_t bytes) {
    return header.sector <= sectors_ && (bytes + kSector - 1) / kSector <= sectors_ - header.sector;
  };

  switch (header.type) {
    case kIn: {
      if (!inRange(inBytes)) return finish(kIoErr, 0);
      auto iov = iovecs(chain.writable, 0, inBytes);
      return disk_->read(header.sector * kSector, iov) ? finish(kOk, inBytes) : finish(kIoErr, 0);
    }
    case kOut: {
      if (disk_->readOnly() || !inRange(outBytes)) return finish(kIoErr, 0);
      auto iov = iovecs(chain.readable, sizeof header, outBytes);
      return finish(disk_->write(header.sector * kSector, iov) ? kOk : kIoErr, 0);
    }
    case kFlush:
      return finish(disk_->flush() ? kOk : kIoErr, 0);
    case kGetId: {
      uint8_t id[kIdBytes] = {};
      std::memcpy(id, serial_.data(), std::min<size_t>(serial_.size(), kIdBytes));
      uint64_t n = std::min<uint64_t>(inBytes, kIdBytes);
      chain.write(0, std::span<const uint8_t>(id, n));
      return finish(kOk, n);
    }
    case kDiscard:
      return finish(ranges(chain, outBytes, false), 0);
    case kWriteZeroes:
      return finish(ranges(chain, outBytes, true), 0);
    default:
      return finish(kUnsupported, 0);
  }
}

}  // namespace hyve::virtio
