// ahci-cd: an ATAPI CD-ROM (MMC) on a read-only RawDisk with 2048-byte sectors. The SCSI
// commands a Linux sr driver and isofs need (TEST UNIT READY, INQUIRY, READ CAPACITY,
// READ(10/12), READ TOC, MODE SENSE(10), REQUEST SENSE, GET EVENT STATUS NOTIFICATION,
// PREVENT/ALLOW MEDIUM REMOVAL, START STOP UNIT) arrive through the ATA PACKET command;
// anything else is CHECK CONDITION with ILLEGAL REQUEST sense data.
#pragma once

#include "ahci/ata_drive.h"
#include "block/raw_disk.h"

#include <memory>

namespace hyve::ahci {

class AtapiCd final : public AtaDrive {
 public:
  static constexpr uint64_t kBlock = 2048;
  // `disk` may be null only for a drive whose load() from a snapshot comes next.
  explicit AtapiCd(std::unique_ptr<RawDisk> disk);

  uint32_t signature() const override { return kSignatureAtapi; }
  AtaResult execute(const AtaCommand& command, const DataBuffers& data) override;
  void reset() override;
  void save(snapshot::StateWriter& out, const std::string& diskFile) const override;
  void load(snapshot::StateReader& in, const std::string& diskFile) override;

  struct Sense {
    uint8_t key = 0, asc = 0, ascq = 0;
  };
  Sense sense() const { return sense_; }

 private:
  AtaResult packet(const AtaCommand& command, const DataBuffers& data);
  AtaResult reply(std::span<const uint8_t> bytes, uint32_t allocation, const DataBuffers& data);
  AtaResult checkCondition(uint8_t key, uint8_t asc, uint8_t ascq = 0);
  AtaResult read(uint64_t lba, uint64_t blocks, const DataBuffers& data);
  AtaResult readToc(const uint8_t* cdb, const DataBuffers& data);
  AtaResult modeSense(const uint8_t* cdb, const DataBuffers& data);

  std::unique_ptr<RawDisk> disk_;
  uint64_t blocks_;
  Sense sense_;
};

}  // namespace hyve::ahci
