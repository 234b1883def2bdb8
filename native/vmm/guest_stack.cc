#include "vmm/guest_stack.h"

#include <algorithm>
#include <cstring>

namespace hyve {

namespace {

constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kCr4La57 = 1ull << 12;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kPageSize = 1ull << 7;  // PS: a 1 GiB (PDPTE) or 2 MiB (PDE) page
constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;  // bits 12..51

}  // namespace

bool isCanonical(uint64_t virt, bool la57) {
  int bits = la57 ? 57 : 48;
  auto top = static_cast<int64_t>(virt) >> (bits - 1);
  return top == 0 || top == -1;
}

std::optional<uint64_t> GuestVirtualMemory::translate(uint64_t virt) {
  if (!(mode_.cr0 & kCr0Pg)) return virt;
  if (!(mode_.efer & kEferLma) || !(mode_.cr4 & kCr4Pae)) return std::nullopt;  // legacy paging
  bool la57 = (mode_.cr4 & kCr4La57) != 0;
  if (!isCanonical(virt, la57)) return std::nullopt;
  uint64_t page = virt & ~0xfffull;
  if (page == cachedPage_) return cachedPhys_ | (virt & 0xfff);

  uint64_t table = mode_.cr3 & kAddressMask;
  int level = la57 ? 5 : 4;
  for (; level >= 1; --level) {
    uint64_t index = (virt >> (12 + 9 * (level - 1))) & 0x1ff;
    uint64_t entry = 0;
    if (!memory_.read(table + index * 8, &entry, sizeof entry)) return std::nullopt;
    if (!(entry & kPresent)) return std::nullopt;
    if ((level == 3 || level == 2) && (entry & kPageSize)) {
      uint64_t offsetBits = 12 + 9 * (level - 1);
      uint64_t base = entry & kAddressMask & ~((1ull << offsetBits) - 1);
      uint64_t phys = base | (virt & ((1ull << offsetBits) - 1));
      cachedPage_ = page;
      cachedPhys_ = phys & ~0xfffull;
      return phys;
    }
    table = entry & kAddressMask;
  }
  cachedPage_ = page;
  cachedPhys_ = table;
  return table | (virt & 0xfff);
}

std::optional<uint64_t> GuestVirtualMemory::read64(uint64_t virt) {
  uint8_t bytes[8];
  uint64_t firstPart = std::min<uint64_t>(8, 0x1000 - (virt & 0xfff));
  auto first = translate(virt);
  if (!first || !memory_.read(*first, bytes, firstPart)) return std::nullopt;
  if (firstPart < 8) {
    auto second = translate(virt + firstPart);
    if (!second || !memory_.read(*second, bytes + firstPart, 8 - firstPart)) return std::nullopt;
  }
  uint64_t value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

std::vector<uint64_t> walkFramePointers(GuestVirtualMemory& memory, uint64_t rip, uint64_t rbp, bool la57,
                                        size_t maxFrames) {
  std::vector<uint64_t> stack;
  if (maxFrames == 0) return stack;
  stack.push_back(rip);
  std::vector<uint64_t> seen;
  while (stack.size() < maxFrames) {
    if (rbp == 0 || (rbp & 7) != 0 || !isCanonical(rbp, la57) || !isCanonical(rbp + 8, la57)) break;
    if (std::find(seen.begin(), seen.end(), rbp) != seen.end()) break;  // a loop
    seen.push_back(rbp);
    auto next = memory.read64(rbp);
    auto ret = memory.read64(rbp + 8);
    if (!next || !ret || *ret == 0 || !isCanonical(*ret, la57)) break;
    stack.push_back(*ret);
    rbp = *next;
  }
  return stack;
}

}  // namespace hyve
