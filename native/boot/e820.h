// The guest's physical memory map as firmware reports it (BIOS e820). Built once from
// GuestMemory so the zero page, the PVH start info and the ACPI code all describe the
// same machine.
#pragma once

#include "core/guest_memory.h"

#include <cstdint>
#include <vector>

namespace hyve {

enum class E820Type : uint32_t {
  Ram = 1,
  Reserved = 2,
  Acpi = 3,
  Nvs = 4,
  Unusable = 5,
};

struct E820Entry {
  uint64_t address;
  uint64_t size;
  E820Type type;
};

// Sorted, non-overlapping: usable low RAM below the EBDA, the EBDA/VGA/BIOS area reserved
// (MP and ACPI tables live there), RAM from 1 MiB to the PCI hole, the top of the 32-bit
// hole (IOAPIC, HPET, LAPIC, KVM's TSS pages) reserved, and RAM above 4 GiB if any.
std::vector<E820Entry> buildE820Map(const GuestMemory& memory);

}  // namespace hyve
