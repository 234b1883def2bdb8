// AhciHba::State in a snapshot, field by field (see snapshot/state_io.h). Values a port
// register cannot hold (misaligned bases, bits AHCI does not define) are refused.
#include "ahci/ahci_hba.h"

#include "snapshot/snapshottable.h"

namespace hyve::ahci {

void AhciHba::State::save(snapshot::StateWriter& out) const {
  pci.save(out);
  out.u32("ghc", ghc);
  out.u32("ports", static_cast<uint32_t>(ports.size()));
  for (size_t i = 0; i < ports.size(); ++i) {
    const PortState& p = ports[i];
    out.u64("clb", p.clb);
    out.u64("fb", p.fb);
    out.u32("is", p.is);
    out.u32("ie", p.ie);
    out.u32("cmd", p.cmd);
    out.u32("tfd", p.tfd);
    out.u32("sig", p.sig);
    out.u32("ssts", p.ssts);
    out.u32("sctl", p.sctl);
    out.u32("serr", p.serr);
    out.u32("ci", p.ci);
    out.boolean("stopped", p.stopped);
    out.blob("drive", drives[i]);
  }
}

AhciHba::State AhciHba::State::load(snapshot::StateReader& in) {
  State s;
  s.pci = PciDevice::State::load(in);
  s.ghc = in.u32("ghc");
  if (s.ghc != kGhcAe && s.ghc != (kGhcAe | kGhcIe)) in.fail("field 'ghc' has bits AHCI does not define");
  uint32_t count = in.u32("ports", kMaxPorts);
  for (uint32_t i = 0; i < count; ++i) {
    PortState p;
    p.clb = in.u64("clb");
    p.fb = in.u64("fb");
    if (p.clb & 0x3ff || p.fb & 0xff) in.fail("a port's command list or FIS base is misaligned");
    p.is = in.u32("is");
    p.ie = in.u32("ie", 0xfdc000ff);
    p.cmd = in.u32("cmd");
    if (p.cmd & ~(kCmdSt | kCmdSud | kCmdPod | kCmdFre | kCmdAtapi)) in.fail("field 'cmd' has bits the port does not keep");
    p.tfd = in.u32("tfd", 0xffff);
    p.sig = in.u32("sig");
    p.ssts = in.u32("ssts");
    if (p.ssts != 0 && p.ssts != 0x123) in.fail("field 'ssts' is not a link state the port reports");
    p.sctl = in.u32("sctl", 0xfff);
    p.serr = in.u32("serr");
    p.ci = in.u32("ci");
    p.stopped = in.boolean("stopped");
    s.ports.push_back(p);
    auto drive = in.blob("drive");
    s.drives.emplace_back(drive.begin(), drive.end());
  }
  return s;
}

std::string AhciHba::driveFile(size_t index) const {
  std::string prefix = snapshot::filePrefix(snapshotDir_ ? snapshotDir_() : std::string(), sectionName_);
  return prefix.empty() ? prefix : prefix + ".port" + std::to_string(index) + ".disk";
}

AhciHba::State AhciHba::saveState() const {
  State s;
  s.pci = PciDevice::saveState();
  std::lock_guard lock(mutex_);
  s.ghc = ghc_;
  for (size_t i = 0; i < ports_.size(); ++i) {
    s.ports.push_back(ports_[i].regs);
    snapshot::StateWriter drive;
    ports_[i].drive->save(drive, driveFile(i));
    s.drives.push_back(drive.take());
  }
  return s;
}

void AhciHba::restoreState(const State& state) {
  if (state.ports.size() != ports_.size()) {
    throw Error(ErrorCode::BadSnapshot, "ahci: the snapshot has " + std::to_string(state.ports.size()) + " ports, the controller " +
                                            std::to_string(ports_.size()));
  }
  uint32_t valid = slots_ == 32 ? ~0u : (1u << slots_) - 1;
  for (const auto& p : state.ports) {
    if (p.ci & ~valid) throw Error(ErrorCode::BadSnapshot, "ahci: a port has commands issued in slots the controller lacks");
  }
  PciDevice::restoreState(state.pci);
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < ports_.size(); ++i) {
    snapshot::StateReader in(state.drives[i], "ahci drive " + std::to_string(i));
    ports_[i].drive->load(in, driveFile(i));
    in.expectEnd();
  }
  ghc_ = state.ghc;
  for (size_t i = 0; i < ports_.size(); ++i) ports_[i].regs = state.ports[i];
  updateInterrupts(false);
}

std::unique_ptr<snapshot::Snapshottable> AhciHba::snapshotSection(std::string name) {
  sectionName_ = name;
  return std::make_unique<snapshot::DeviceState<AhciHba>>(std::move(name), *this);
}

}  // namespace hyve::ahci
