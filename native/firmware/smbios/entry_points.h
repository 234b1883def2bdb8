// The SMBIOS entry point structures (DSP0134 3.0, section 5.2), built with their checksums.
#pragma once

#include <cstdint>
#include <vector>

namespace hyve::firmware::smbios {

constexpr uint8_t kMajorVersion = 3;
constexpr uint8_t kMinorVersion = 0;

// "_SM3_": 64-bit table address; the table ends at its end-of-table structure.
std::vector<uint8_t> entryPoint64(uint64_t tableAddress, uint32_t tableMaxBytes);
// "_SM_" with its "_DMI_" intermediate part: 32-bit address and a structure count.
std::vector<uint8_t> entryPoint32(uint32_t tableAddress, uint16_t tableBytes, uint16_t structureCount,
                                  uint16_t largestStructure);

}  // namespace hyve::firmware::smbios
