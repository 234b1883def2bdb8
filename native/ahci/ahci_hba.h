// An AHCI 1.3 host bus adapter (Serial ATA AHCI 1.3.1) as an Intel ICH8 function
// (8086:2821, class 01/06/01), so Linux's ahci driver binds: generic host control and one
// port register block per drive in BAR 5 (ABAR), MSI (one vector) or INTx.
//
// A port follows the spec's state machine as far as a driver can see it: COMRESET through
// PxSCTL.DET brings the link up with the drive's signature in PxSIG; PxCMD.ST/FRE start
// the command list and received-FIS engines; a PxCI bit makes the port fetch that slot's
// command header, its command FIS (and ATAPI packet) and PRDT, run the command and post
// the D2H (and PIO Setup) FIS. No NCQ (CAP.SNCQ clear): one command at a time.
//
// Commands run synchronously on the vCPU thread that rang PxCI, under the HBA's lock. That
// is bounded: a command moves at most 32 MiB (65536 sectors) or, for ATAPI, what the PRDT
// holds (at most 65535 entries of 4 MiB, all inside guest RAM).
//
// Everything the guest wrote is checked before use: the command list, received-FIS area,
// command table and each PRDT entry must lie inside guest RAM; the command FIS must be a
// Register H2D FIS of a sane length; a slot must be below CAP.NCS; the PRDT must hold the
// command's data. A failure stops the port as a fatal error does on hardware: PxIS.HBFS
// (bad address), PxIS.IFS (bad FIS or slot) or PxIS.OFS (PRDT too short), PxSERR, and
// PxTFD.ERR, until the driver clears PxCMD.ST.
#pragma once

#include "ahci/ata_drive.h"
#include "core/guest_memory.h"
#include "core/interrupts.h"
#include "devices/pci/pci_device.h"

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hyve::ahci {

constexpr unsigned kAbar = 5;
constexpr uint64_t kAbarSize = 0x1000;
constexpr unsigned kMaxPorts = 30;  // what fits in kAbarSize

// Generic host control (AHCI 3.1).
constexpr uint32_t kCap = 0x00, kGhc = 0x04, kIs = 0x08, kPi = 0x0c, kVs = 0x10, kCap2 = 0x24, kBohc = 0x28;
constexpr uint32_t kGhcHr = 1u << 0, kGhcIe = 1u << 1, kGhcAe = 1u << 31;
constexpr uint32_t kPortBase = 0x100, kPortStride = 0x80;

// Port registers (AHCI 3.3) and their bits.
constexpr uint32_t kPxClb = 0x00, kPxClbu = 0x04, kPxFb = 0x08, kPxFbu = 0x0c, kPxIs = 0x10, kPxIe = 0x14, kPxCmd = 0x18,
                   kPxTfd = 0x20, kPxSig = 0x24, kPxSsts = 0x28, kPxSctl = 0x2c, kPxSerr = 0x30, kPxSact = 0x34,
                   kPxCi = 0x38;
constexpr uint32_t kCmdSt = 1u << 0, kCmdSud = 1u << 1, kCmdPod = 1u << 2, kCmdClo = 1u << 3, kCmdFre = 1u << 4,
                   kCmdFr = 1u << 14, kCmdCr = 1u << 15, kCmdAtapi = 1u << 24;
constexpr uint32_t kIsDhrs = 1u << 0, kIsPss = 1u << 1, kIsDps = 1u << 5, kIsOfs = 1u << 24, kIsIfs = 1u << 27,
                   kIsHbfs = 1u << 29, kIsTfes = 1u << 30;
constexpr uint32_t kSerrProtocol = 1u << 10, kSerrInternal = 1u << 11;

class AhciHba final : public PciDevice {
 public:
  struct PortState {
    uint64_t clb = 0, fb = 0;  // command list and received-FIS base addresses
    uint32_t is = 0, ie = 0, cmd = 0, tfd = 0, sig = 0, ssts = 0, sctl = 0, serr = 0, ci = 0;
    bool stopped = false;  // a fatal error: no command runs until PxCMD.ST is cleared
  };
  struct State {
    PciDevice::State pci;
    uint32_t ghc = 0;
    std::vector<PortState> ports;
    std::vector<std::vector<uint8_t>> drives;  // each drive's own fields, as AtaDrive::save writes them
    void save(snapshot::StateWriter& out) const;
    static State load(snapshot::StateReader& in);
  };

  // One port per drive (1 to kMaxPorts). `slots` is CAP.NCS + 1: Linux ignores NCS and
  // uses tags up to 31, so the board always gives 32; tests use fewer.
  AhciHba(std::vector<std::unique_ptr<AtaDrive>> drives, const GuestMemory& memory, InterruptController& interrupts,
          unsigned slots = 32);

  void barRead(unsigned bar, uint64_t offset, std::span<uint8_t> data) override;
  void barWrite(unsigned bar, uint64_t offset, std::span<const uint8_t> data) override;

  std::unique_ptr<snapshot::Snapshottable> snapshotSection(std::string name) override;
  // Where a snapshot is being written or read: each drive's medium is copied there.
  void setSnapshotDirectory(std::function<std::string()> dir) { snapshotDir_ = std::move(dir); }
  State saveState() const;
  void restoreState(const State& state);

  static constexpr uint8_t kPcsOffset = 0x92;  // Intel "port control and status" config word

 protected:
  void configWriteHook(uint32_t offset, uint32_t size) override;

 private:
  struct Port {
    PortState regs;
    std::unique_ptr<AtaDrive> drive;
  };

  uint32_t readRegister(uint32_t offset);
  void writeRegister(uint32_t offset, uint32_t value);
  uint32_t readPort(Port& port, uint32_t reg) const;
  void writePort(Port& port, unsigned index, uint32_t reg, uint32_t value);
  void resetHba();
  void comreset(Port& port, bool linkUp);
  void runCommands(Port& port);
  // Runs slot `slot`; returns false if the port stopped on a fatal error.
  bool runSlot(Port& port, unsigned slot);
  void fatal(Port& port, uint32_t is, uint32_t serr);
  void postD2h(Port& port, const AtaResult& result, bool interrupt);
  void postPioSetup(Port& port, const AtaResult& result);
  void updateInterrupts(bool event);
  uint32_t pendingPorts() const;

  // The snapshot file that holds port `index`'s medium (empty without a directory).
  std::string driveFile(size_t index) const;

  const GuestMemory& memory_;
  std::function<std::string()> snapshotDir_;
  std::string sectionName_;  // names the drives' files in a snapshot directory
  InterruptController& interrupts_;
  const unsigned slots_;
  uint8_t msiCap_ = 0;
  mutable std::mutex mutex_;  // guards everything below; commands run under it
  uint32_t ghc_ = kGhcAe;
  std::vector<Port> ports_;
};

}  // namespace hyve::ahci
