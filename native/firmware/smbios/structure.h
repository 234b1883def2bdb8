// One SMBIOS structure as the spec lays it out (DSP0134 3.0, section 6.1.2): a formatted
// area that starts with type, length and handle, then the strings it refers to by
// number, each NUL-terminated, and one more NUL. The length and the string numbers are
// computed here, so no builder counts bytes or strings by hand.
#pragma once

#include "firmware/byte_buffer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hyve::firmware::smbios {

class Structure {
 public:
  Structure(uint8_t type, uint16_t handle);

  // The formatted area after the 4-byte header.
  ByteBuffer& fields() { return fields_; }
  // Appends the string-number byte for `text`; an empty text is string 0 ("none").
  void string(std::string_view text);
  // The finished structure: length patched, string set appended.
  std::vector<uint8_t> finish() &&;

 private:
  ByteBuffer fields_;
  std::vector<std::string> strings_;
};

}  // namespace hyve::firmware::smbios
