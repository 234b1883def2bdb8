// SMBIOS (DSP0134 3.0): the structure table that tells the guest who and what it is
// (dmidecode, /sys/class/dmi/id, systemd and cloud-init read it), found through two entry
// points in the BIOS area Linux scans: the 64-bit "_SM3_" one and, for older guests, the
// 32-bit "_SM_" one. Both point at the same table; see firmware/bios_area.h for where.
#pragma once

#include "firmware/smbios/uuid.h"
#include "core/guest_memory.h"

#include <cstdint>
#include <vector>

namespace hyve::firmware {

struct SmbiosConfig {
  uint32_t cpuCount = 1;  // one processor structure (type 4) each
  Uuid uuid{};            // the system UUID (type 1)
};

struct SmbiosTables {
  std::vector<uint8_t> entryPoint64;  // at kSmbiosEntryPoint64
  std::vector<uint8_t> entryPoint32;  // at kSmbiosEntryPoint32
  std::vector<uint8_t> table;         // at kSmbiosTable
  uint16_t structureCount = 0;
};

// The tables for `memory` (one mapped-address range per RAM region, so they add up to the
// guest's memory and agree with the e820 map), addressed for the BIOS area. Pure: the
// binding uses it to show the bytes to tests. Throws Error(BadConfig) for a bad CPU count.
SmbiosTables buildSmbiosTables(const GuestMemory& memory, const SmbiosConfig& config);

// Builds the tables and writes them to guest RAM, clearing the rest of their area.
void writeSmbiosTables(const GuestMemory& memory, const SmbiosConfig& config);

}  // namespace hyve::firmware
