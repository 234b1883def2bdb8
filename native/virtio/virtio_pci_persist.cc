// VirtioPci::State in a snapshot, field by field (see snapshot/state_io.h): the PCI
// function, the transport registers, the MSI-X table, then each queue.
#include "virtio/virtio_pci.h"

namespace hyve::virtio {

void VirtioPci::State::save(snapshot::StateWriter& out) const {
  pci.save(out);
  const Transport& t = transport;
  out.u32("deviceFeatureSelect", t.deviceFeatureSelect);
  out.u32("driverFeatureSelect", t.driverFeatureSelect);
  out.u64("driverFeatures", t.driverFeatures);
  out.u16("configMsixVector", t.configMsixVector);
  out.u8("status", t.status);
  out.u8("configGeneration", t.configGeneration);
  out.u16("queueSelect", t.queueSelect);
  out.u8("isr", t.isr);
  out.blob("msixTable", t.msixTable);
  out.blob("msixPending", t.msixPending);
  out.u16("queueCount", static_cast<uint16_t>(queues.size()));
  for (const auto& q : queues) q.save(out);
  out.blob("device", device);
}

// Sizes that depend on the device (queue count, vector count) are checked by restoreState().
VirtioPci::State VirtioPci::State::load(snapshot::StateReader& in) {
  State s;
  s.pci = PciDevice::State::load(in);
  Transport& t = s.transport;
  t.deviceFeatureSelect = in.u32("deviceFeatureSelect");
  t.driverFeatureSelect = in.u32("driverFeatureSelect");
  t.driverFeatures = in.u64("driverFeatures");
  t.configMsixVector = in.u16("configMsixVector");
  t.status = in.u8("status");
  t.configGeneration = in.u8("configGeneration");
  t.queueSelect = in.u16("queueSelect");
  t.isr = in.u8("isr", 3);
  auto table = in.blob("msixTable");
  t.msixTable.assign(table.begin(), table.end());
  auto pending = in.blob("msixPending");
  t.msixPending.assign(pending.begin(), pending.end());
  uint16_t count = in.u16("queueCount", 64);
  for (uint16_t i = 0; i < count; ++i) s.queues.push_back(SplitQueue::State::load(in, kMaxQueueSize));
  auto device = in.blob("device");
  s.device.assign(device.begin(), device.end());
  return s;
}

}  // namespace hyve::virtio
