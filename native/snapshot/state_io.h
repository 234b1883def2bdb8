// Byte-level writer and reader for snapshot sections. The reader is bounds-checked:
// anything short or malformed throws Error(BadSnapshot) instead of reading past the end,
// so a damaged snapshot is refused, never half-applied.
#pragma once

#include "util/error.h"

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
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
  // A device State struct, prefixed by its size so a layout change is detected on restore.
  template <typename T>
  void state(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    u32(sizeof(T));
    pod(value);
  }

  const std::vector<uint8_t>& data() const { return buffer_; }
  std::vector<uint8_t> take() { return std::move(buffer_); }

 private:
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
  std::span<const uint8_t> data_;
  size_t offset_ = 0;
  std::string what_;
};

}  // namespace hyve::snapshot
