// virtio-blk (virtio 1.x §5.2) on a RawDisk: reads, writes, FLUSH (completed only after
// fdatasync), GET_ID, DISCARD and WRITE_ZEROES (hole punching), RO. Requests are served
// synchronously on the transport's worker thread with preadv/pwritev straight into guest
// memory, so there is no bounce buffer and no second thread to hand completions back from.
#pragma once

#include "block/raw_disk.h"
#include "virtio/virtio_device.h"

#include <memory>

namespace hyve::virtio {

class VirtioBlk final : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kSegMax = kQueueSize - 2;  // the header and status take two
  static constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per range
  static constexpr uint32_t kMaxDiscardSegments = 16;

  explicit VirtioBlk(std::unique_ptr<RawDisk> disk, std::string serial);
  // A disk a snapshot restore supplies (restoreDeviceState); until then it has no medium.
  VirtioBlk() = default;

  uint16_t deviceId() const override { return kDeviceBlock; }
  uint32_t pciClass() const override { return 0x010000; }  // mass storage, SCSI (what QEMU reports)
  uint64_t features() const override;
  std::string_view threadRole() const override { return "virtio-blk"; }
  std::vector<uint16_t> queueSizes() const override { return {kQueueSize}; }
  void readConfig(uint64_t offset, std::span<uint8_t> data) const override;
  uint32_t handle(unsigned queue, const Chain& chain) override;
  // A snapshot keeps the disk as the guest saw it at the pause in `files`.disk (a reflink
  // or sparse copy); every restore writes to its own ephemeral copy of that file, so
  // restores never see each other's writes and the snapshot stays as it was.
  void saveDeviceState(snapshot::StateWriter& out, const std::string& files) const override;
  void restoreDeviceState(snapshot::StateReader& in, const std::string& files) override;

  const RawDisk& disk() const { return *disk_; }

 private:
  uint8_t ranges(const Chain& chain, uint64_t dataBytes, bool zeroes);

  std::unique_ptr<RawDisk> disk_;  // null until a restore supplies it
  std::string serial_;
  uint64_t sectors_ = 0;
};

}  // namespace hyve::virtio
