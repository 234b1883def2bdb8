#include "util/hex.h"

#include <cstdio>

namespace hyve {

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string hexBytes(const uint8_t* bytes, size_t length) {
  std::string text;
  char byte[4];
  for (size_t i = 0; i < length; ++i) {
    std::snprintf(byte, sizeof(byte), i ? " %02x" : "%02x", bytes[i]);
    text += byte;
  }
  return text;
}

}  // namespace hyve
