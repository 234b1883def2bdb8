#include "firmware/smbios/structure.h"

#include "util/error.h"

#include <string>

namespace hyve::firmware::smbios {

namespace {
constexpr size_t kLengthOffset = 1;
constexpr size_t kMaxStrings = 255;  // string numbers are one byte, 0 meaning "none"
}  // namespace

Structure::Structure(uint8_t type, uint16_t handle) {
  fields_.u8(type);
  fields_.u8(0);  // length, patched by finish()
  fields_.u16(handle);
}

void Structure::string(std::string_view text) {
  if (text.empty()) {
    fields_.u8(0);
    return;
  }
  if (text.find('\0') != std::string_view::npos || strings_.size() == kMaxStrings) {
    throw Error(ErrorCode::Internal, "SMBIOS: bad string '" + std::string(text) + "'");
  }
  strings_.emplace_back(text);
  fields_.u8(static_cast<uint8_t>(strings_.size()));
}

std::vector<uint8_t> Structure::finish() && {
  if (fields_.size() > UINT8_MAX) throw Error(ErrorCode::Internal, "SMBIOS: formatted area over 255 bytes");
  fields_.patchU8(kLengthOffset, static_cast<uint8_t>(fields_.size()));
  for (const std::string& text : strings_) {
    fields_.text(text, text.size());
    fields_.u8(0);
  }
  // The string set ends with a second NUL; a structure without strings has two.
  if (strings_.empty()) fields_.u8(0);
  fields_.u8(0);
  return fields_.take();
}

}  // namespace hyve::firmware::smbios
