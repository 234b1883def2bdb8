// Byte-level writer and reader for snapshot sections. The reader is bounds-checked:
// anything short or malformed throws Error(BadSnapshot) instead of reading past the end,
// so a damaged snapshot is refused, never half-applied.
//
// Device state is written field by field, each value behind its name (the named
// overloads below): a reader that expects another field, e.g. after a field was
// reordered or renamed, is refused by name, and typed readers refuse values the field
// cannot hold (a bool other than 0/1, an enum past its last value, an index past its
// array) before they reach a device.
#pragma once

#include "util/error.h"

#include <cstdint>
#include <climits>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace hyve::snapshot {

class StateWriter {
 public:
  void bytes(const void* data, size_t length) {
    if (length == 0) return;
    // resize+memcpy rather than insert(): GCC 12 warns falsely (-Wstringop-overflow) on the latter.
    size_t used = buffer_.size();
    buffer_.resize(used + length);
    std::memcpy(buffer_.data() + used, data, length);
  }
  template <typename T>
  void pod(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&value, sizeof(T));
  }
  void u8(uint8_t v) { pod(v); }
  void u32(uint32_t v) { pod(v); }
  void u64(uint64_t v) { pod(v); }
  void i64(int64_t v) { pod(v); }
  void string(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  // A length-prefixed opaque blob (e.g. a backend's raw register block).
  void blob(std::span<const uint8_t> data) {
    u64(data.size());
    bytes(data.data(), data.size());
  }
  // Named fields (see the top of this file).
  void u8(std::string_view name, uint8_t v) { field(name), u8(v); }
  void u16(std::string_view name, uint16_t v) { field(name), pod(v); }
  void u32(std::string_view name, uint32_t v) { field(name), u32(v); }
  void u64(std::string_view name, uint64_t v) { field(name), u64(v); }
  void i64(std::string_view name, int64_t v) { field(name), i64(v); }
  void boolean(std::string_view name, bool v) { field(name), u8(v ? 1 : 0); }
  template <typename E>
    requires std::is_enum_v<E>
  void enumeration(std::string_view name, E v) {
    field(name), u32(static_cast<uint32_t>(v));
  }
  // A fixed-size byte array, with its length so a resized array is refused.
  void bytes(std::string_view name, std::span<const uint8_t> data) {
    field(name), u32(static_cast<uint32_t>(data.size()));
    bytes(data.data(), data.size());
  }

  // A variable-length byte string (e.g. queued input), length-prefixed.
  void blob(std::string_view name, std::span<const uint8_t> data) { field(name), blob(data); }

  // A hypervisor ABI struct (e.g. kvm_regs), prefixed by its size so a layout change is
  // detected on restore. The kernel validates these when they are loaded back; device
  // state uses the named fields above instead.
  template <typename T>
  void state(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    u32(sizeof(T));
    pod(value);
  }

  const std::vector<uint8_t>& data() const { return buffer_; }
  std::vector<uint8_t> take() { return std::move(buffer_); }

 private:
  StateWriter& field(std::string_view name) {
    u8(static_cast<uint8_t>(name.size()));
    bytes(name.data(), name.size());
    return *this;
  }

  std::vector<uint8_t> buffer_;
};

class StateReader {
 public:
  StateReader(std::span<const uint8_t> data, std::string what) : data_(data), what_(std::move(what)) {}

  std::span<const uint8_t> bytes(size_t length) {
    if (length > data_.size() - offset_) fail("is truncated");
    auto out = data_.subspan(offset_, length);
    offset_ += length;
    return out;
  }
  template <typename T>
  T pod() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, bytes(sizeof(T)).data(), sizeof(T));
    return value;
  }
  uint8_t u8() { return pod<uint8_t>(); }
  uint32_t u32() { return pod<uint32_t>(); }
  uint64_t u64() { return pod<uint64_t>(); }
  int64_t i64() { return pod<int64_t>(); }
  std::string string() {
    uint32_t length = u32();
    auto b = bytes(length);
    return {b.begin(), b.end()};
  }
  std::span<const uint8_t> blob() {
    uint64_t length = u64();
    if (length > data_.size() - offset_) fail("is truncated");
    return bytes(static_cast<size_t>(length));
  }
  // Named fields, as StateWriter writes them. `max` bounds a value where the device
  // needs it (an index, a count, a register width).
  uint8_t u8(std::string_view name, uint8_t max = UINT8_MAX) { return atMost(name, (field(name), u8()), max); }
  uint16_t u16(std::string_view name, uint16_t max = UINT16_MAX) {
    return atMost(name, (field(name), pod<uint16_t>()), max);
  }
  uint32_t u32(std::string_view name, uint32_t max = UINT32_MAX) { return atMost(name, (field(name), u32()), max); }
  uint64_t u64(std::string_view name, uint64_t max = UINT64_MAX) { return atMost(name, (field(name), u64()), max); }
  // Signed values within [-limit, limit].
  int64_t i64(std::string_view name, int64_t limit) {
    int64_t v = (field(name), i64());
    if (v < -limit || v > limit) fail("field '" + std::string(name) + "' is out of range (" + std::to_string(v) + ")");
    return v;
  }
  bool boolean(std::string_view name) {
    uint8_t v = (field(name), u8());
    if (v > 1) fail("field '" + std::string(name) + "' is not a boolean (" + std::to_string(v) + ")");
    return v == 1;
  }
  // An enum whose valid values are 0 through `last`.
  template <typename E>
    requires std::is_enum_v<E>
  E enumeration(std::string_view name, E last) {
    uint32_t v = atMost(name, (field(name), u32()), static_cast<uint32_t>(last));
    return static_cast<E>(v);
  }
  // A fixed-size byte array: the saved length must be exactly `out.size()`.
  void bytes(std::string_view name, std::span<uint8_t> out) {
    uint32_t length = (field(name), u32());
    if (length != out.size()) {
      fail("field '" + std::string(name) + "' has " + std::to_string(length) + " bytes, not " +
           std::to_string(out.size()));
    }
    std::memcpy(out.data(), bytes(length).data(), length);
  }

  std::span<const uint8_t> blob(std::string_view name) { return (field(name), blob()); }

  // A hypervisor ABI struct written by StateWriter::state().
  template <typename T>
  T state() {
    uint32_t size = u32();
    if (size != sizeof(T)) fail("was written by a build with a different state layout");
    return pod<T>();
  }

  bool atEnd() const { return offset_ == data_.size(); }
  // Every section must be consumed exactly: trailing bytes mean a format mismatch.
  void expectEnd() const {
    if (!atEnd()) fail("has " + std::to_string(data_.size() - offset_) + " unexpected trailing bytes");
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(ErrorCode::BadSnapshot, "snapshot " + what_ + " " + why);
  }

 private:
  StateReader& field(std::string_view name) {
    uint8_t length = u8();
    auto found = bytes(length);
    if (std::string_view(reinterpret_cast<const char*>(found.data()), found.size()) != name) {
      fail("has field '" + std::string(reinterpret_cast<const char*>(found.data()), found.size()) + "' where '" +
           std::string(name) + "' belongs (a different state layout)");
    }
    return *this;
  }
  template <typename T>
  T atMost(std::string_view name, T value, T max) const {
    if (value > max) {
      fail("field '" + std::string(name) + "' is out of range (" + std::to_string(value) + " > " + std::to_string(max) + ")");
    }
    return value;
  }

  std::span<const uint8_t> data_;
  size_t offset_ = 0;
  std::string what_;
};

}  // namespace hyve::snapshot
