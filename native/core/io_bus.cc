#include "core/io_bus.h"

#include "util/error.h"

#include <algorithm>
#include <mutex>

namespace hyve {

void IoBus::add(uint64_t base, uint64_t length, BusDevice* device, std::string name) {
  std::unique_lock lock(mutex_);
  if (length == 0 || base + length < base) {
    throw Error(ErrorCode::Internal, "invalid bus range for " + name);
  }
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), base,
                             [](const Range& r, uint64_t b) { return r.base < b; });
  bool overlapsNext = it != ranges_.end() && it->base < base + length;
  bool overlapsPrev = it != ranges_.begin() && std::prev(it)->base + std::prev(it)->length > base;
  if (overlapsNext || overlapsPrev) {
    const Range& other = overlapsNext ? *it : *std::prev(it);
    throw Error(ErrorCode::Internal, "bus range of " + name + " overlaps " + other.name);
  }
  ranges_.insert(it, Range{base, length, device, std::move(name)});
}

void IoBus::remove(uint64_t base, BusDevice* device) {
  std::unique_lock lock(mutex_);
  std::erase_if(ranges_, [&](const Range& r) { return r.base == base && r.device == device; });
}

const IoBus::Range* IoBus::find(uint64_t address) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uint64_t a, const Range& r) { return a < r.base; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  return address - it->base < it->length ? &*it : nullptr;
}

BusDevice* IoBus::read(uint64_t address, std::span<uint8_t> data) const {
  std::shared_lock lock(mutex_);
  const Range* range = find(address);
  if (range == nullptr) return nullptr;
  range->device->read(address - range->base, data);
  return range->device;
}

BusDevice* IoBus::write(uint64_t address, std::span<const uint8_t> data) const {
  std::shared_lock lock(mutex_);
  const Range* range = find(address);
  if (range == nullptr) return nullptr;
  range->device->write(address - range->base, data);
  return range->device;
}

std::string IoBus::nameOf(const BusDevice* device) const {
  std::shared_lock lock(mutex_);
  for (const Range& range : ranges_) {
    if (range.device == device) return range.name;
  }
  return {};
}

}  // namespace hyve
