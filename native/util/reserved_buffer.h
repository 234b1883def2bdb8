// A byte buffer that grows inside a range of address space reserved up front. Appending
// never moves, copies or zero-fills what is already there, and the kernel supplies
// (zeroed) pages only as they are first written: filling it costs time and memory
// proportional to the bytes written, however it is filled (one large piece, or ten
// thousand empty ones). Used for decompressed output whose size is known only as a cap.
#pragma once

#include "util/mapping.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace hyve {

class ReservedBuffer {
 public:
  ReservedBuffer() = default;
  // Reserves `capacity` bytes of address space (no memory yet). Throws Error(Memory).
  explicit ReservedBuffer(size_t capacity);

  const uint8_t* data() const { return mapping_.data(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return mapping_.size(); }
  std::span<const uint8_t> bytes() const { return {mapping_.data(), size_}; }
  operator std::span<const uint8_t>() const { return bytes(); }

  // The writable space after the contents; commit() what was written there.
  std::span<uint8_t> spare() { return {mapping_.data() + size_, capacity() - size_}; }
  void commit(size_t written);  // throws Error(Internal) past the capacity
  // Append bytes, or `length` copies of `value`; throw Error(Internal) past the capacity.
  void append(std::span<const uint8_t> bytes);
  void appendFill(size_t length, uint8_t value);

  // Returns the memory to the system.
  void reset() {
    mapping_.reset();
    size_ = 0;
  }

 private:
  Mapping mapping_;
  size_t size_ = 0;
};

}  // namespace hyve
