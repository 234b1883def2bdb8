#include "core/guest_memory.h"

#include "core/layout.h"
#include "util/error.h"

#include <algorithm>
#include <string>

namespace hyve {

GuestMemory::GuestMemory(uint64_t bytes) : totalBytes_(bytes) {
  validateSize();
  mapping_ = Mapping::anonymous(bytes);
  layOutRegions();
}

GuestMemory::GuestMemory(uint64_t bytes, int fd) : totalBytes_(bytes) {
  validateSize();
  // MAP_NORESERVE: a restored guest is charged only for the pages it writes.
  void* addr = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  if (addr == MAP_FAILED) throwErrno(ErrorCode::Memory, "cannot map the snapshot's guest memory");
  mapping_ = Mapping(addr, bytes);
  layOutRegions();
}

void GuestMemory::validateSize() const {
  if (totalBytes_ < 16 * layout::MiB || totalBytes_ % (2 * layout::MiB) != 0) {
    throw Error(ErrorCode::BadConfig, "guest memory must be a multiple of 2 MiB and at least 16 MiB, got " +
                                          std::to_string(totalBytes_) + " bytes");
  }
}

void GuestMemory::layOutRegions() {
  uint64_t below = std::min(totalBytes_, layout::kPciHoleStart);
  regions_.push_back({0, below, mapping_.data()});
  if (totalBytes_ > below) {
    regions_.push_back({layout::kPciHoleEnd, totalBytes_ - below, mapping_.data() + below});
  }
}

uint64_t GuestMemory::lowRamEnd() const { return regions_.front().size; }

std::span<uint8_t> GuestMemory::slice(uint64_t gpa, uint64_t length) const {
  for (const auto& region : regions_) {
    if (gpa >= region.guestAddress && gpa - region.guestAddress <= region.size &&
        length <= region.size - (gpa - region.guestAddress)) {
      return {region.host + (gpa - region.guestAddress), static_cast<size_t>(length)};
    }
  }
  return {};
}

bool GuestMemory::read(uint64_t gpa, void* out, uint64_t length) const {
  auto span = slice(gpa, length);
  if (span.size() != length || (length != 0 && span.data() == nullptr)) return false;
  if (length != 0) std::memcpy(out, span.data(), length);
  return true;
}

bool GuestMemory::write(uint64_t gpa, const void* data, uint64_t length) const {
  auto span = slice(gpa, length);
  if (span.size() != length || (length != 0 && span.data() == nullptr)) return false;
  if (length != 0) std::memcpy(span.data(), data, length);
  return true;
}

}  // namespace hyve
