// Reading a guest's kernel stack from the host: guest-virtual addresses translated through
// the guest's own page tables, and the frame-pointer chain walked from RBP. Every read of
// guest memory (page-table entries included) is bounds-checked by GuestMemory, so a guest
// that points anywhere at all can only end a walk early, never crash or stall it.
#pragma once

#include "core/guest_memory.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace hyve {

// The control registers that decide how a guest-virtual address is translated.
struct PagingMode {
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
};

// Translates guest-virtual addresses with the guest's page tables (no paging: identity;
// 4- and 5-level long-mode paging with 1 GiB and 2 MiB pages). Legacy 32-bit paging is not
// walked: translate() returns nothing there. Remembers the last page it translated.
class GuestVirtualMemory {
 public:
  GuestVirtualMemory(const GuestMemory& memory, PagingMode mode) : memory_(memory), mode_(mode) {}

  std::optional<uint64_t> translate(uint64_t virt);
  // Reads 8 bytes at a guest-virtual address (they may straddle two pages).
  std::optional<uint64_t> read64(uint64_t virt);

 private:
  const GuestMemory& memory_;
  PagingMode mode_;
  uint64_t cachedPage_ = 1;  // never a page address: nothing cached yet
  uint64_t cachedPhys_ = 0;
};

// True when `virt` is canonical for 48-bit (or, with `la57`, 57-bit) virtual addresses.
bool isCanonical(uint64_t virt, bool la57);

// The sampled instruction pointer followed by the return addresses found by following
// saved frame pointers from `rbp` ([rbp] = the caller's rbp, [rbp+8] = the return
// address). Stops after `maxFrames` addresses, at a zero, non-canonical or unmapped frame
// or return address, and at a frame seen before (a loop).
std::vector<uint64_t> walkFramePointers(GuestVirtualMemory& memory, uint64_t rip, uint64_t rbp, bool la57,
                                        size_t maxFrames = 64);

}  // namespace hyve
