#include "util/reserved_buffer.h"

#include "util/error.h"

#include <cstring>
#include <string>

namespace hyve {

namespace {

void checkRoom(size_t size, size_t more, size_t capacity) {
  if (more > capacity - size) {
    throw Error(ErrorCode::Internal, "reserved buffer of " + std::to_string(capacity) + " bytes overrun by " +
                                         std::to_string(more - (capacity - size)));
  }
}

}  // namespace

ReservedBuffer::ReservedBuffer(size_t capacity) {
  if (capacity == 0) return;
  void* addr = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) throwErrno(ErrorCode::Memory, "cannot reserve " + std::to_string(capacity >> 20) + " MiB for unpacking");
  mapping_ = Mapping(addr, capacity);
}

void ReservedBuffer::commit(size_t written) {
  checkRoom(size_, written, capacity());
  size_ += written;
}

void ReservedBuffer::append(std::span<const uint8_t> bytes) {
  checkRoom(size_, bytes.size(), capacity());
  if (!bytes.empty()) std::memcpy(mapping_.data() + size_, bytes.data(), bytes.size());
  size_ += bytes.size();
}

void ReservedBuffer::appendFill(size_t length, uint8_t value) {
  checkRoom(size_, length, capacity());
  std::memset(mapping_.data() + size_, value, length);
  size_ += length;
}

}  // namespace hyve
