// Intel MultiProcessor Specification 1.4 tables, for guests booted without ACPI (acpi=off)
// or that prefer the MP table: the floating pointer at firmware::kMpFloatingPointer
// (inside the 0xF0000-0xFFFFF range Linux scans) followed by the configuration table.
#pragma once

#include "core/guest_memory.h"
#include "firmware/pci_intx_routing.h"

#include <cstdint>

namespace hyve::firmware {

struct MpTableConfig {
  uint32_t cpuCount = 1;  // 1-254; APIC ids 0..cpuCount-1, the IOAPIC gets id cpuCount (as in the MADT)
  PciIntxRouting pciRouting = defaultPciIntxGsi;
};

// Throws Error(BadConfig) for a bad CPU count and Error(Internal) if the table does not fit.
void writeMpTable(const GuestMemory& memory, const MpTableConfig& config);

}  // namespace hyve::firmware
