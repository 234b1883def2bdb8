#include "firmware/smbios/uuid.h"

#include "util/error.h"

#include <random>

namespace hyve::firmware {
namespace {

constexpr size_t kTextLength = 36;

bool isDash(size_t position) { return position == 8 || position == 13 || position == 18 || position == 23; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Uuid parseUuid(std::string_view text) {
  auto bad = [&] {
    return Error(ErrorCode::BadConfig,
                 "invalid UUID '" + std::string(text) + "': expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)");
  };
  if (text.size() != kTextLength) throw bad();
  Uuid uuid{};
  size_t nibble = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (isDash(i)) {
      if (text[i] != '-') throw bad();
      continue;
    }
    int value = hexValue(text[i]);
    if (value < 0) throw bad();
    uuid[nibble / 2] = static_cast<uint8_t>(uuid[nibble / 2] << 4 | value);
    ++nibble;
  }
  return uuid;
}

Uuid randomUuid() {
  std::random_device source;  // the kernel's entropy: two VMs must not share an identity
  Uuid uuid{};
  for (size_t i = 0; i < uuid.size(); i += 4) {
    uint32_t word = source();
    for (size_t j = 0; j < 4; ++j) uuid[i + j] = static_cast<uint8_t>(word >> (8 * j));
  }
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);  // version 4
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return uuid;
}

std::string formatUuid(const Uuid& uuid) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(kTextLength);
  for (size_t i = 0; i < uuid.size(); ++i) {
    if (isDash(text.size())) text += '-';
    text += kDigits[uuid[i] >> 4];
    text += kDigits[uuid[i] & 0xf];
  }
  return text;
}

}  // namespace hyve::firmware
