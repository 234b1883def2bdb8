// Little-endian byte assembly for firmware tables (ACPI, MP). Tables are built in host
// memory with explicit field widths instead of packed structs, so the layout is exactly
// what the spec tables list and no unaligned member access is ever needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace hyve::firmware {

class ByteBuffer {
 public:
  void u8(uint8_t value) { bytes_.push_back(value); }
  void u16(uint16_t value) { little(value, 2); }
  void u32(uint32_t value) { little(value, 4); }
  void u64(uint64_t value) { little(value, 8); }
  void zeros(size_t count) { bytes_.insert(bytes_.end(), count, 0); }
  void append(std::span<const uint8_t> data) { bytes_.insert(bytes_.end(), data.begin(), data.end()); }
  // A fixed-width ASCII field; shorter text is padded, longer text is cut.
  void text(std::string_view value, size_t width, char pad = ' ') {
    for (size_t i = 0; i < width; ++i) bytes_.push_back(static_cast<uint8_t>(i < value.size() ? value[i] : pad));
  }

  void patchU8(size_t offset, uint8_t value) { bytes_.at(offset) = value; }
  void patchU16(size_t offset, uint16_t value) { patchLittle(offset, value, 2); }
  void patchU32(size_t offset, uint32_t value) { patchLittle(offset, value, 4); }

  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  void little(uint64_t value, size_t width) {
    for (size_t i = 0; i < width; ++i) bytes_.push_back(static_cast<uint8_t>(value >> (8 * i)));
  }
  void patchLittle(size_t offset, uint64_t value, size_t width) {
    for (size_t i = 0; i < width; ++i) bytes_.at(offset + i) = static_cast<uint8_t>(value >> (8 * i));
  }

  std::vector<uint8_t> bytes_;
};

// The byte that makes `data` (with this byte stored in a zeroed checksum field) sum to 0 mod 256.
inline uint8_t checksumByte(std::span<const uint8_t> data) {
  uint8_t sum = 0;
  for (uint8_t byte : data) sum = static_cast<uint8_t>(sum + byte);
  return static_cast<uint8_t>(-sum);
}

}  // namespace hyve::firmware
