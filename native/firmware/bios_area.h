// How the legacy BIOS area [0xE0000, 0x100000) is shared: ACPI tables in the lower 64 KiB
// (the RSDP at its start, inside the range OSes scan), the MP table in the upper 64 KiB,
// which Linux scans for the MP floating pointer. Keeping them apart lets either be written
// or left out (-Y) on its own, and the MP table is not limited by the 1 KiB EBDA.
#pragma once

#include "core/layout.h"

#include <cstdint>

namespace hyve::firmware {

constexpr uint64_t kAcpiAreaStart = layout::kBiosStart;
constexpr uint64_t kAcpiAreaEnd = layout::kBiosStart + 64 * layout::KiB;
constexpr uint64_t kMpTableAreaStart = kAcpiAreaEnd;
constexpr uint64_t kMpTableAreaEnd = layout::kBiosEnd;

// The MP floating pointer structure; the configuration table follows it.
constexpr uint64_t kMpFloatingPointer = kMpTableAreaStart;

static_assert(kAcpiAreaEnd <= layout::kBiosEnd && kMpFloatingPointer % 16 == 0);

}  // namespace hyve::firmware
