// How the legacy BIOS area [0xE0000, 0x100000) is shared: ACPI tables in the lower 64 KiB
// (the RSDP at its start, inside the range OSes scan), then in the upper 64 KiB, which
// Linux scans for both the MP floating pointer and the SMBIOS entry points, the MP table
// (32 KiB) and SMBIOS (32 KiB). Keeping them apart lets each be written or left out (-Y)
// on its own, and the MP table is not limited by the 1 KiB EBDA.
#pragma once

#include "core/layout.h"

#include <cstdint>

namespace hyve::firmware {

constexpr uint64_t kAcpiAreaStart = layout::kBiosStart;
constexpr uint64_t kAcpiAreaEnd = layout::kBiosStart + 64 * layout::KiB;
constexpr uint64_t kMpTableAreaStart = kAcpiAreaEnd;
constexpr uint64_t kMpTableAreaEnd = kMpTableAreaStart + 32 * layout::KiB;
constexpr uint64_t kSmbiosAreaStart = kMpTableAreaEnd;
constexpr uint64_t kSmbiosAreaEnd = layout::kBiosEnd;

// The MP floating pointer structure; the configuration table follows it.
constexpr uint64_t kMpFloatingPointer = kMpTableAreaStart;

// The SMBIOS entry points (16-byte aligned, as the scan steps) and the table after them.
constexpr uint64_t kSmbiosEntryPoint64 = kSmbiosAreaStart;
constexpr uint64_t kSmbiosEntryPoint32 = kSmbiosAreaStart + 0x20;
constexpr uint64_t kSmbiosTable = kSmbiosAreaStart + 0x40;

static_assert(kAcpiAreaEnd <= layout::kBiosEnd && kMpFloatingPointer % 16 == 0);
static_assert(kSmbiosEntryPoint64 % 16 == 0 && kSmbiosEntryPoint32 % 16 == 0 && kSmbiosTable < kSmbiosAreaEnd);

}  // namespace hyve::firmware
