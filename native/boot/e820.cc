#include "boot/e820.h"

#include "core/layout.h"

#include <algorithm>

namespace hyve {

std::vector<E820Entry> buildE820Map(const GuestMemory& memory) {
  using namespace layout;
  std::vector<E820Entry> map;
  map.push_back({0, kEbdaStart, E820Type::Ram});
  map.push_back({kEbdaStart, kBiosEnd - kEbdaStart, E820Type::Reserved});
  for (const auto& region : memory.regions()) {
    // The first region starts at 0; its part below 1 MiB is described above.
    uint64_t start = std::max(region.guestAddress, kHighRamStart);
    uint64_t end = region.guestAddress + region.size;
    if (end > start) map.push_back({start, end - start, E820Type::Ram});
  }
  // Everything the platform decodes above the PCI BAR window: no OS may put RAM or BARs there.
  map.push_back({kPciMmioEnd, kPciHoleEnd - kPciMmioEnd, E820Type::Reserved});
  std::sort(map.begin(), map.end(), [](const E820Entry& a, const E820Entry& b) { return a.address < b.address; });
  return map;
}

}  // namespace hyve
