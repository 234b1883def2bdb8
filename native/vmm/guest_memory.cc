#include "vmm/guest_memory.h"

#include "util/error.h"
#include "vmm/layout.h"

#include <algorithm>
#include <string>

namespace hyve {

GuestMemory::GuestMemory(uint64_t bytes) : totalBytes_(bytes) {
  if (bytes < 16 * layout::MiB || bytes % (2 * layout::MiB) != 0) {
    throw Error(ErrorCode::BadConfig, "guest memory must be a multiple of 2 MiB and at least 16 MiB, got " +
                                          std::to_string(bytes) + " bytes");
  }
  mapping_ = Mapping::anonymous(bytes);
  uint64_t below = std::min(bytes, layout::kPciHoleStart);
  regions_.push_back({0, below, mapping_.data()});
  if (bytes > below) {
    regions_.push_back({layout::kPciHoleEnd, bytes - below, mapping_.data() + below});
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
