// PciBus::State and PciDevice::State in a snapshot, field by field (see snapshot/state_io.h).
#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_device.h"

namespace hyve {

void PciBus::State::save(snapshot::StateWriter& out) const { out.u32("configAddress", configAddress); }

PciBus::State PciBus::State::load(snapshot::StateReader& in) {
  State s;
  s.configAddress = in.u32("configAddress");
  return s;
}

void PciDevice::State::save(snapshot::StateWriter& out) const {
  out.bytes("config", config);
  for (const BarInfo& bar : bars) {
    out.enumeration("barKind", bar.kind);
    out.boolean("barPrefetchable", bar.prefetchable);
    out.u64("barSize", bar.size);
  }
  out.boolean("intxRequested", intxRequested);
}

// The BARs must also match the device's own layout; PciDevice::restoreState checks that.
std::unique_ptr<snapshot::Snapshottable> PciDevice::snapshotSection(std::string name) {
  return std::make_unique<snapshot::DeviceState<PciDevice>>(std::move(name), *this);
}

PciDevice::State PciDevice::State::load(snapshot::StateReader& in) {
  State s;
  in.bytes("config", s.config);
  for (BarInfo& bar : s.bars) {
    bar.kind = in.enumeration("barKind", pci::BarKind::Memory64Upper);
    bar.prefetchable = in.boolean("barPrefetchable");
    bar.size = in.u64("barSize");
  }
  s.intxRequested = in.boolean("intxRequested");
  return s;
}

}  // namespace hyve
