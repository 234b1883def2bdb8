// What sits behind an AHCI port: a device that executes ATA commands (ahci-hd) or ATAPI
// packets (ahci-cd). The HBA (ahci_hba.h) fetches the command FIS, the packet and the
// PRDT from guest memory, bounds-checked, and hands the drive the PRDT as host iovecs; the
// drive never sees a guest address. What the drive answers becomes the D2H FIS, PxTFD and
// PxIS.
#pragma once

#include "snapshot/state_io.h"

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace hyve::ahci {

// ATA status and error register bits (ATA8-ACS 6.1, 6.2).
constexpr uint8_t kStatusErr = 0x01;
constexpr uint8_t kStatusDrq = 0x08;
constexpr uint8_t kStatusDsc = 0x10;  // "device seek complete", still expected by drivers
constexpr uint8_t kStatusDrdy = 0x40;
constexpr uint8_t kStatusBsy = 0x80;
constexpr uint8_t kStatusReady = kStatusDrdy | kStatusDsc;
constexpr uint8_t kErrorAbrt = 0x04;
constexpr uint8_t kErrorIdnf = 0x10;

// Device signatures (PxSIG) after a reset (SATA 1.0 / ATA8-ACS 9.12).
constexpr uint32_t kSignatureAta = 0x00000101;
constexpr uint32_t kSignatureAtapi = 0xeb140101;

// The fields of a Register H2D FIS (SATA 3.0 10.3.4) a drive reads.
struct AtaCommand {
  uint8_t command = 0;
  uint16_t features = 0;
  uint16_t count = 0;
  uint64_t lba = 0;  // 48 bits
  uint8_t device = 0;
  std::array<uint8_t, 16> packet{};  // the ATAPI command (ACMD), for PACKET
};

// The guest's data buffers for one command: the PRDT as host memory, in order.
class DataBuffers {
 public:
  explicit DataBuffers(std::vector<iovec> buffers);
  uint64_t size() const { return size_; }
  // The first `bytes` bytes (at most size()) as iovecs, for preadv/pwritev.
  std::vector<iovec> first(uint64_t bytes) const;
  // Copies `data` to the start of the buffers, as much as fits; returns how much did.
  uint64_t copyIn(std::span<const uint8_t> data) const;
  // Copies the first `out.size()` bytes (at most size()) out of the buffers.
  uint64_t copyOut(std::span<uint8_t> out) const;

 private:
  std::vector<iovec> buffers_;
  uint64_t size_ = 0;
};

struct AtaResult {
  uint8_t status = kStatusReady;
  uint8_t error = 0;
  uint64_t transferred = 0;  // bytes moved through the PRDT (PRDBC)
  bool pioIn = false;        // a PIO data-in command: the HBA also posts a PIO Setup FIS
  bool overflow = false;     // the PRDT was shorter than the command's data (PxIS.OFS)
  // Register values a reset or an aborted IDENTIFY reports (the signature), else zero.
  uint16_t count = 0;
  uint64_t lba = 0;

  static AtaResult ok(uint64_t transferred = 0) { return {.transferred = transferred}; }
  static AtaResult abort(uint8_t error = kErrorAbrt) { return {.status = kStatusReady | kStatusErr, .error = error}; }
};

class AtaDrive {
 public:
  virtual ~AtaDrive() = default;
  virtual uint32_t signature() const = 0;
  // Executes one command. Throws nothing for anything a guest can send.
  virtual AtaResult execute(const AtaCommand& command, const DataBuffers& data) = 0;
  // A COMRESET or an HBA reset: back to power-on defaults.
  virtual void reset() = 0;
  // Guest-visible drive state (sense data, write cache, transfer mode) field by field, and
  // the medium: its contents copied to `diskFile` in the snapshot directory, reopened from
  // there on load (block/disk_snapshot.h). A failed load leaves the drive as it was.
  virtual void save(snapshot::StateWriter& out, const std::string& diskFile) const = 0;
  virtual void load(snapshot::StateReader& in, const std::string& diskFile) = 0;
};

// Puts an ATA string into IDENTIFY words: space-padded, two characters a word, the first
// in the high byte (ATA8-ACS 3.4.9).
void putAtaString(std::span<uint16_t> words, std::string_view text);
// Word 255: signature 0xa5 and the checksum that makes all 512 bytes sum to zero.
void sealIdentify(std::array<uint16_t, 256>& words);

}  // namespace hyve::ahci
