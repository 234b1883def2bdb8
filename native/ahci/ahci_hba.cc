#include "ahci/ahci_hba.h"

#include "util/error.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace hyve::ahci {

namespace {

constexpr uint32_t kCapS64a = 1u << 31, kCapSclo = 1u << 24, kCapSam = 1u << 18, kCapGen2 = 2u << 20;
constexpr uint32_t kVersion = 0x00010300;  // AHCI 1.3
constexpr uint32_t kSstsLinkUp = 0x123;    // device present, Gen2, interface active
constexpr uint32_t kIeMask = 0xfdc000ff;   // the interrupt enables AHCI defines
constexpr uint32_t kCmdWritable = kCmdSt | kCmdClo | kCmdFre | kCmdAtapi;
constexpr uint32_t kCmdCcsShift = 8;

// Command header (AHCI 4.2.2), command table (4.2.3) and received-FIS (4.2.1) layout.
constexpr uint64_t kHeaderSize = 32;
constexpr uint64_t kTablePrdt = 0x80, kPrdSize = 16, kTableAcmd = 0x40;
constexpr uint64_t kFisArea = 256, kPioSetupAt = 0x20, kD2hAt = 0x40;
constexpr uint8_t kFisRegisterH2d = 0x27, kFisRegisterD2h = 0x34, kFisPioSetup = 0x5f;
constexpr uint8_t kControlSrst = 0x04;

uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

// ---- DataBuffers and IDENTIFY helpers ----

DataBuffers::DataBuffers(std::vector<iovec> buffers) : buffers_(std::move(buffers)) {
  for (const auto& b : buffers_) size_ += b.iov_len;
}

std::vector<iovec> DataBuffers::first(uint64_t bytes) const {
  std::vector<iovec> out;
  for (const auto& b : buffers_) {
    if (bytes == 0) break;
    uint64_t n = std::min<uint64_t>(b.iov_len, bytes);
    out.push_back({b.iov_base, n});
    bytes -= n;
  }
  return out;
}

uint64_t DataBuffers::copyIn(std::span<const uint8_t> data) const {
  uint64_t done = 0;
  for (const auto& b : buffers_) {
    if (done == data.size()) break;
    uint64_t n = std::min<uint64_t>(b.iov_len, data.size() - done);
    std::memcpy(b.iov_base, data.data() + done, n);
    done += n;
  }
  return done;
}

uint64_t DataBuffers::copyOut(std::span<uint8_t> out) const {
  uint64_t done = 0;
  for (const auto& b : buffers_) {
    if (done == out.size()) break;
    uint64_t n = std::min<uint64_t>(b.iov_len, out.size() - done);
    std::memcpy(out.data() + done, b.iov_base, n);
    done += n;
  }
  return done;
}

void putAtaString(std::span<uint16_t> words, std::string_view text) {
  for (size_t i = 0; i < words.size() * 2; ++i) {
    uint8_t c = i < text.size() ? static_cast<uint8_t>(text[i]) : ' ';
    uint16_t& w = words[i / 2];
    w = (i % 2 == 0) ? static_cast<uint16_t>((w & 0x00ff) | c << 8) : static_cast<uint16_t>((w & 0xff00) | c);
  }
}

void sealIdentify(std::array<uint16_t, 256>& words) {
  words[255] = 0x00a5;
  uint8_t sum = 0;
  for (unsigned i = 0; i < 255; ++i) sum = static_cast<uint8_t>(sum + (words[i] & 0xff) + (words[i] >> 8));
  sum = static_cast<uint8_t>(sum + 0xa5);
  words[255] = static_cast<uint16_t>(0x00a5 | static_cast<uint8_t>(-sum) << 8);
}

// ---- the HBA ----

AhciHba::AhciHba(std::vector<std::unique_ptr<AtaDrive>> drives, const GuestMemory& memory, InterruptController& interrupts,
                 unsigned slots)
    : PciDevice(pci::Identity{.vendorId = 0x8086, .deviceId = 0x2821, .revision = 2, .classCode = 0x01, .subclass = 0x06,
                              .progIf = 0x01, .subsystemVendorId = 0x8086, .subsystemId = 0x2821}),
      memory_(memory),
      interrupts_(interrupts),
      slots_(slots) {
  if (drives.empty() || drives.size() > kMaxPorts) throw Error(ErrorCode::BadConfig, "an AHCI controller takes 1 to 30 drives");
  if (slots == 0 || slots > 32) throw Error(ErrorCode::Internal, "AHCI command slots must be 1-32");
  for (auto& drive : drives) ports_.push_back(Port{{}, std::move(drive)});
  addMemoryBar(kAbar, kAbarSize, /*is64Bit=*/false, /*prefetchable=*/false);
  setInterruptPin(1);
  msiCap_ = addMsiCapability(0, /*is64Bit=*/true, /*perVectorMask=*/false);
  // Linux's Intel quirk sets the port-enable bits of PCS when they are clear; they are set.
  uint16_t implemented = static_cast<uint16_t>((1u << std::min<size_t>(ports_.size(), 8)) - 1);
  setConfig16(kPcsOffset, static_cast<uint16_t>(implemented | implemented << 8));
  resetHba();
}

void AhciHba::resetHba() {
  ghc_ = kGhcAe;
  for (auto& port : ports_) {
    port.regs = PortState{};
    port.regs.cmd = kCmdSud | kCmdPod;
    comreset(port, true);
  }
  updateInterrupts(false);
}

void AhciHba::comreset(Port& port, bool linkUp) {
  PortState& r = port.regs;
  if (!linkUp) {
    r.ssts = 0;
    r.tfd = kStatusBsy;
    r.sig = 0xffffffff;
    return;
  }
  port.drive->reset();
  r.ssts = kSstsLinkUp;
  r.tfd = kStatusReady;  // BSY clear: Linux waits for it after COMRESET before classifying
  r.sig = port.drive->signature();
  // The drive's first D2H FIS carries its signature in the count and LBA registers.
  AtaResult hello{.status = kStatusReady, .count = static_cast<uint16_t>(r.sig & 0xff), .lba = r.sig >> 8};
  postD2h(port, hello, /*interrupt=*/false);
}

void AhciHba::barRead(unsigned bar, uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (bar != kAbar) return;
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size();) {
    uint64_t at = offset + i;
    uint32_t value = readRegister(static_cast<uint32_t>(at & ~3ull));
    size_t n = std::min<size_t>(4 - (at & 3), data.size() - i);
    for (size_t k = 0; k < n; ++k) data[i + k] = static_cast<uint8_t>(value >> (8 * ((at & 3) + k)));
    i += n;
  }
}

void AhciHba::barWrite(unsigned bar, uint64_t offset, std::span<const uint8_t> data) {
  // Registers are dwords (AHCI 3: "registers shall be accessed as DWORDs"); others are ignored.
  if (bar != kAbar || (offset & 3) || data.size() % 4) return;
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); i += 4) writeRegister(static_cast<uint32_t>(offset + i), load32(data.data() + i));
}

uint32_t AhciHba::readRegister(uint32_t offset) {
  if (offset >= kPortBase) {
    uint32_t index = (offset - kPortBase) / kPortStride;
    return index < ports_.size() ? readPort(ports_[index], (offset - kPortBase) % kPortStride) : 0;
  }
  switch (offset) {
    case kCap:
      return kCapS64a | kCapSclo | kCapSam | kCapGen2 | (slots_ - 1) << 8 | static_cast<uint32_t>(ports_.size() - 1);
    case kGhc: return ghc_;
    case kIs: return pendingPorts();
    case kPi: return static_cast<uint32_t>((1ull << ports_.size()) - 1);
    case kVs: return kVersion;
    default: return 0;  // CCC, enclosure management, CAP2, BOHC: not implemented
  }
}

void AhciHba::writeRegister(uint32_t offset, uint32_t value) {
  if (offset >= kPortBase) {
    uint32_t index = (offset - kPortBase) / kPortStride;
    if (index < ports_.size()) writePort(ports_[index], index, (offset - kPortBase) % kPortStride, value);
    return;
  }
  if (offset != kGhc) return;  // IS is derived from the ports' PxIS; the rest is read-only
  if (value & kGhcHr) return resetHba();  // completes at once: HR reads back clear
  ghc_ = kGhcAe | (value & kGhcIe);
  updateInterrupts(true);
}

uint32_t AhciHba::readPort(Port& port, uint32_t reg) const {
  const PortState& r = port.regs;
  switch (reg) {
    case kPxClb: return static_cast<uint32_t>(r.clb);
    case kPxClbu: return static_cast<uint32_t>(r.clb >> 32);
    case kPxFb: return static_cast<uint32_t>(r.fb);
    case kPxFbu: return static_cast<uint32_t>(r.fb >> 32);
    case kPxIs: return r.is;
    case kPxIe: return r.ie;
    case kPxCmd: {
      uint32_t cmd = r.cmd | kCmdSud | kCmdPod;
      if (cmd & kCmdFre) cmd |= kCmdFr;
      if (cmd & kCmdSt) cmd |= kCmdCr;
      if (r.ci) cmd |= static_cast<uint32_t>(std::countr_zero(r.ci)) << kCmdCcsShift;
      return cmd;
    }
    case kPxTfd: return r.tfd;
    case kPxSig: return r.sig;
    case kPxSsts: return r.ssts;
    case kPxSctl: return r.sctl;
    case kPxSerr: return r.serr;
    case kPxCi: return r.ci;
    default: return 0;  // PxSACT (no NCQ), PxSNTF, PxFBS, vendor
  }
}

void AhciHba::writePort(Port& port, unsigned, uint32_t reg, uint32_t value) {
  PortState& r = port.regs;
  switch (reg) {
    case kPxClb: r.clb = (r.clb & ~0xffffffffull) | (value & ~0x3ffu); break;
    case kPxClbu: r.clb = (r.clb & 0xffffffffull) | uint64_t{value} << 32; break;
    case kPxFb: r.fb = (r.fb & ~0xffffffffull) | (value & ~0xffu); break;
    case kPxFbu: r.fb = (r.fb & 0xffffffffull) | uint64_t{value} << 32; break;
    case kPxIs:
      r.is &= ~value;
      updateInterrupts(false);
      break;
    case kPxIe:
      r.ie = value & kIeMask;
      updateInterrupts(true);
      break;
    case kPxCmd: {
      bool wasStarted = r.cmd & kCmdSt;
      if (value & kCmdClo) r.tfd &= ~uint32_t{kStatusBsy | kStatusDrq};  // command list override
      r.cmd = (r.cmd & ~kCmdWritable) | (value & kCmdWritable & ~kCmdClo);
      if (wasStarted && !(r.cmd & kCmdSt)) {
        // Stopping the engine drops every issued command and the fatal-error stop.
        r.ci = 0;
        r.stopped = false;
      }
      break;
    }
    case kPxSctl: {
      uint32_t det = value & 0xf, oldDet = r.sctl & 0xf;
      r.sctl = value & 0xfff;
      if (det == 1 || det == 4) comreset(port, false);  // COMRESET asserted, or the PHY off
      else if (det == 0 && oldDet == 1) comreset(port, true);  // COMRESET released: the link comes up
      updateInterrupts(true);
      break;
    }
    case kPxSerr: r.serr &= ~value; break;
    case kPxCi: {
      if (!(r.cmd & kCmdSt)) break;  // commands are issued only to a started port
      uint32_t valid = slots_ == 32 ? ~0u : (1u << slots_) - 1;
      if (value & ~valid) {
        r.ci |= value & valid;
        fatal(port, kIsIfs, kSerrProtocol);  // a slot the HBA does not have
        break;
      }
      r.ci |= value;
      runCommands(port);
      break;
    }
    default: break;
  }
}

void AhciHba::runCommands(Port& port) {
  while (port.regs.ci && !port.regs.stopped && (port.regs.cmd & kCmdSt)) {
    unsigned slot = static_cast<unsigned>(std::countr_zero(port.regs.ci));
    if (!runSlot(port, slot)) break;
    port.regs.ci &= ~(1u << slot);
  }
}

void AhciHba::fatal(Port& port, uint32_t is, uint32_t serr) {
  PortState& r = port.regs;
  r.is |= is;
  r.serr |= serr;
  r.tfd = uint32_t{kErrorAbrt} << 8 | kStatusReady | kStatusErr;
  r.stopped = true;
  updateInterrupts(true);
}

bool AhciHba::runSlot(Port& port, unsigned slot) {
  PortState& r = port.regs;
  uint8_t header[kHeaderSize];
  if (!memory_.read(r.clb + slot * kHeaderSize, header, sizeof header)) return fatal(port, kIsHbfs, kSerrInternal), false;
  uint32_t flags = load32(header);
  uint64_t table = (load32(header + 8) & ~0x7fu) | uint64_t{load32(header + 12)} << 32;
  unsigned fisDwords = flags & 0x1f;
  uint32_t prdtLength = flags >> 16;
  if (fisDwords < 5 || fisDwords > 16) return fatal(port, kIsIfs, kSerrProtocol), false;
  auto cmdTable = memory_.slice(table, kTablePrdt + uint64_t{prdtLength} * kPrdSize);
  if (cmdTable.empty()) return fatal(port, kIsHbfs, kSerrInternal), false;
  const uint8_t* fis = cmdTable.data();
  if (fis[0] != kFisRegisterH2d) return fatal(port, kIsIfs, kSerrProtocol), false;

  AtaCommand command;
  command.command = fis[2];
  command.features = static_cast<uint16_t>(fis[3] | fis[11] << 8);
  command.lba = uint64_t{fis[4]} | uint64_t{fis[5]} << 8 | uint64_t{fis[6]} << 16 | uint64_t{fis[8]} << 24 |
                uint64_t{fis[9]} << 32 | uint64_t{fis[10]} << 40;
  command.device = fis[7];
  command.count = static_cast<uint16_t>(fis[12] | fis[13] << 8);
  // The guest may change the table under us: work from this copy.
  std::memcpy(command.packet.data(), fis + kTableAcmd, command.packet.size());

  AtaResult result;
  if (!(fis[1] & 0x80)) {
    // A device-control FIS (C clear): software reset. SRST set resets the drive; the FIS
    // that clears it gets the signature back (AHCI 10.4.1).
    if (fis[15] & kControlSrst) {
      port.drive->reset();
      std::memset(header + 4, 0, 4);
      memory_.write(r.clb + slot * kHeaderSize + 4, header + 4, 4);
      return true;
    }
    r.sig = port.drive->signature();
    result = AtaResult{.status = kStatusReady, .count = static_cast<uint16_t>(r.sig & 0xff), .lba = r.sig >> 8};
  } else {
    std::vector<iovec> buffers;
    bool notify = false;
    buffers.reserve(prdtLength);
    for (uint32_t i = 0; i < prdtLength; ++i) {
      const uint8_t* prd = cmdTable.data() + kTablePrdt + i * kPrdSize;
      uint64_t address = (load32(prd) & ~1u) | uint64_t{load32(prd + 4)} << 32;
      uint32_t dw3 = load32(prd + 12);
      uint64_t bytes = (dw3 & 0x3fffff) + 1;
      auto host = memory_.slice(address, bytes);
      if (host.empty()) return fatal(port, kIsHbfs, kSerrInternal), false;
      buffers.push_back({host.data(), host.size()});
      notify |= dw3 >> 31;
    }
    result = port.drive->execute(command, DataBuffers(std::move(buffers)));
    if (notify && result.transferred) r.is |= kIsDps;
  }

  uint32_t transferred = static_cast<uint32_t>(std::min<uint64_t>(result.transferred, UINT32_MAX));
  if (!memory_.write(r.clb + slot * kHeaderSize + 4, &transferred, 4)) return fatal(port, kIsHbfs, kSerrInternal), false;
  if (result.pioIn && !(result.status & kStatusErr)) postPioSetup(port, result);
  postD2h(port, result, /*interrupt=*/true);
  if (r.stopped) return updateInterrupts(true), false;  // the received-FIS area is outside RAM
  r.tfd = uint32_t{result.error} << 8 | result.status;
  r.is |= result.pioIn ? (kIsPss | kIsDhrs) : kIsDhrs;
  if (result.overflow) {
    fatal(port, kIsOfs, 0);
    return false;
  }
  if (result.status & kStatusErr) {
    r.is |= kIsTfes;
    r.stopped = true;
    updateInterrupts(true);
    return false;
  }
  updateInterrupts(true);
  return true;
}

void AhciHba::postD2h(Port& port, const AtaResult& result, bool interrupt) {
  PortState& r = port.regs;
  if (!(r.cmd & kCmdFre)) return;
  uint8_t fis[20] = {kFisRegisterD2h, static_cast<uint8_t>(interrupt ? 0x40 : 0), result.status, result.error};
  for (unsigned i = 0; i < 3; ++i) fis[4 + i] = static_cast<uint8_t>(result.lba >> (8 * i));
  for (unsigned i = 0; i < 3; ++i) fis[8 + i] = static_cast<uint8_t>(result.lba >> (24 + 8 * i));
  fis[12] = static_cast<uint8_t>(result.count);
  fis[13] = static_cast<uint8_t>(result.count >> 8);
  if (memory_.slice(r.fb, kFisArea).empty() || !memory_.write(r.fb + kD2hAt, fis, sizeof fis)) {
    r.is |= kIsHbfs;
    r.serr |= kSerrInternal;
    r.stopped = true;
  }
}

void AhciHba::postPioSetup(Port& port, const AtaResult& result) {
  PortState& r = port.regs;
  if (!(r.cmd & kCmdFre)) return;
  uint8_t fis[20] = {kFisPioSetup, 0x20 | 0x40, kStatusReady | kStatusDrq, result.error};
  fis[15] = result.status;  // E_Status: the status once the transfer is done
  uint16_t count = static_cast<uint16_t>(std::min<uint64_t>(result.transferred, 0xffff));
  std::memcpy(fis + 16, &count, 2);
  if (memory_.slice(r.fb, kFisArea).empty() || !memory_.write(r.fb + kPioSetupAt, fis, sizeof fis)) {
    r.is |= kIsHbfs;
    r.serr |= kSerrInternal;
    r.stopped = true;
  }
}

uint32_t AhciHba::pendingPorts() const {
  uint32_t pending = 0;
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i].regs.is & ports_[i].regs.ie) pending |= 1u << i;
  }
  return pending;
}

void AhciHba::updateInterrupts(bool event) {
  bool pending = (ghc_ & kGhcIe) && pendingPorts();
  pci::MsiMessage message;
  if (msiMessage(msiCap_, 0, message)) {
    setIntx(false);
    // An edge per event; a driver that clears PxIS with another cause still pending is
    // told again by the next event (Linux rereads PxIS and PxCI in its handler).
    if (pending && event) interrupts_.signalMsi(message.address, message.data);
  } else {
    setIntx(pending);
  }
}

void AhciHba::configWriteHook(uint32_t, uint32_t) {
  std::lock_guard lock(mutex_);
  updateInterrupts(false);
}

}  // namespace hyve::ahci
