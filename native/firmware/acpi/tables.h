// Builders for the individual ACPI tables, one .cc each. Each returns the finished table
// (length and checksum set); acpi.cc decides where they go and links them together.
#pragma once

#include "firmware/pci_intx_routing.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hyve::firmware::acpi {

// Root System Description Pointer (ACPI 2.0+ form, 36 bytes) pointing at the XSDT.
std::vector<uint8_t> buildRsdp(uint64_t xsdtAddress);
constexpr size_t kRsdpSize = 36;
// Extended System Description Table listing the given tables (the DSDT and FACS are
// reached through the FADT instead).
std::vector<uint8_t> buildXsdt(const std::vector<uint64_t>& tableAddresses);
// Firmware ACPI Control Structure: global lock and waking vector; the guest writes it.
std::vector<uint8_t> buildFacs();
constexpr uint64_t kFacsAlignment = 64;
// Fixed ACPI Description Table (revision 6) for the legacy PM blocks of devices/acpi_pm.
std::vector<uint8_t> buildFadt(uint64_t dsdtAddress, uint64_t facsAddress);
// Multiple APIC Description Table: one local APIC per vCPU, the IOAPIC, ISA overrides.
std::vector<uint8_t> buildMadt(uint32_t cpuCount);
// Differentiated System Description Table: the PCI host bridge, ISA devices and \_S5.
std::vector<uint8_t> buildDsdt(const PciIntxRouting& routing, uint8_t s5SleepType);
// HPET description table; `eventTimerBlockId` must equal the HPET's capability register bits 0-31.
std::vector<uint8_t> buildHpet(uint32_t eventTimerBlockId);

}  // namespace hyve::firmware::acpi
