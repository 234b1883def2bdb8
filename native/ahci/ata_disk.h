// ahci-hd: an ATA disk on a RawDisk (the block backend virtio-blk uses, so read-only,
// ephemeral and flush behave the same). IDENTIFY DEVICE, READ/WRITE DMA (EXT) and their PIO
// twins, FLUSH CACHE (EXT) (completed after fdatasync), SET FEATURES, DATA SET MANAGEMENT
// TRIM (hole punching), the power-management commands a guest sends at shutdown; ABORT
// for everything else.
#pragma once

#include "ahci/ata_drive.h"
#include "block/raw_disk.h"

#include <memory>
#include <string>

namespace hyve::ahci {

class AtaDisk final : public AtaDrive {
 public:
  static constexpr uint64_t kSector = 512;
  // `disk` may be null only for a drive whose load() from a snapshot comes next.
  explicit AtaDisk(std::unique_ptr<RawDisk> disk, std::string serial);

  uint32_t signature() const override { return kSignatureAta; }
  AtaResult execute(const AtaCommand& command, const DataBuffers& data) override;
  void reset() override;
  void save(snapshot::StateWriter& out, const std::string& diskFile) const override;
  void load(snapshot::StateReader& in, const std::string& diskFile) override;

  std::array<uint16_t, 256> identify() const;

 private:
  AtaResult transfer(const AtaCommand& command, const DataBuffers& data, bool ext, bool write, bool pio);
  AtaResult trim(const AtaCommand& command, const DataBuffers& data);
  AtaResult setFeatures(const AtaCommand& command);

  std::unique_ptr<RawDisk> disk_;
  std::string serial_;
  uint64_t sectors_;
  // SET FEATURES state: the write cache (on by default: FLUSH CACHE makes writes durable)
  // and the selected UDMA mode (bit n: mode n; 0x40 = UDMA6 at power-on).
  bool writeCache_ = true;
  uint8_t udmaMode_ = 0x40;
};

}  // namespace hyve::ahci
