// Hex formatting for diagnostics (addresses, instruction bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hyve {

// "0x1f00"
std::string hex(uint64_t value);
// "0f 01 ca"
std::string hexBytes(const uint8_t* bytes, size_t length);

}  // namespace hyve
