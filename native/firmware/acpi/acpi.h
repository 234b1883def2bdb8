// Writes the ACPI tables the guest OS discovers the machine from: RSDP, XSDT, FADT (with
// FACS and DSDT), MADT and HPET, all inside the BIOS area (see firmware/bios_area.h).
#pragma once

#include "core/guest_memory.h"
#include "core/layout.h"
#include "firmware/pci_intx_routing.h"

#include <cstdint>

namespace hyve::firmware {

struct AcpiConfig {
  uint32_t cpuCount = 1;             // 1-254; APIC ids 0..cpuCount-1, the IOAPIC gets id cpuCount
  uint32_t hpetBlockId = 0;          // bits 0-31 of the HPET's general capabilities register
  PciIntxRouting pciRouting = defaultPciIntxGsi;
  uint8_t s5SleepType = layout::kAcpiS5SleepType;
};

// Lays the tables out in [kAcpiAreaStart, kAcpiAreaEnd), the RSDP first (16-byte aligned,
// so the legacy scan of 0xE0000-0xFFFFF finds it too), and returns the RSDP's address for
// boot_params.acpi_rsdp_addr. Throws Error(BadConfig) for a bad CPU count and
// Error(Internal) if the tables do not fit.
uint64_t writeAcpiTables(const GuestMemory& memory, const AcpiConfig& config);

}  // namespace hyve::firmware
