#include "core/guest_memory.h"
#include "vmm/guest_stack.h"

#include <doctest/doctest.h>

namespace hyve {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kPresentWritable = 3, kPageSize = 1ull << 7;
constexpr uint64_t kPml4 = 0x10000, kPdpt = 0x11000, kPd = 0x12000, kKernelPd = 0x13000, kPt = 0x14000;
constexpr uint64_t kKernelBase = 0xffffffff80000000ull;  // PML4 511, PDPT 510

// 16 MiB of guest RAM with long-mode page tables: the first 1 GiB identity-mapped with
// 2 MiB pages, and kKernelBase mapped with 4 KiB pages onto physical 4 MiB.
struct Rig {
  GuestMemory memory{16 * kMiB};
  PagingMode mode{(1ull << 31) | 1, kPml4, 1ull << 5, (1ull << 10) | (1ull << 8)};

  Rig() {
    put(kPml4, kPdpt | kPresentWritable);
    put(kPml4 + 511 * 8, kPdpt | kPresentWritable);
    put(kPdpt, kPd | kPresentWritable);
    put(kPdpt + 510 * 8, kKernelPd | kPresentWritable);
    for (uint64_t i = 0; i < 512; ++i) put(kPd + i * 8, (i * 2 * kMiB) | kPresentWritable | kPageSize);
    put(kKernelPd, kPt | kPresentWritable);
    for (uint64_t i = 0; i < 512; ++i) put(kPt + i * 8, (4 * kMiB + i * 0x1000) | kPresentWritable);
  }
  void put(uint64_t gpa, uint64_t value) { REQUIRE(memory.writeObject(gpa, value)); }
  // A frame at guest-virtual `frame` (inside the kernel mapping): saved rbp, return address.
  void frame(uint64_t frame, uint64_t savedRbp, uint64_t ret) {
    uint64_t phys = 4 * kMiB + (frame - kKernelBase);
    put(phys, savedRbp);
    put(phys + 8, ret);
  }
};

TEST_CASE("guest stack: translation through 4 KiB and 2 MiB pages, nothing outside the tables") {
  Rig rig;
  GuestVirtualMemory virt(rig.memory, rig.mode);
  CHECK(virt.translate(0x123456) == 0x123456);
  CHECK(virt.translate(kKernelBase + 0x1234) == 4 * kMiB + 0x1234);
  CHECK_FALSE(virt.translate(0x0000700000000000ull).has_value());  // PML4 entry not present
  CHECK_FALSE(virt.translate(0x8000000000000000ull).has_value());  // non-canonical
  CHECK(virt.translate(0x30000000) == 0x30000000u);                // mapped, but not RAM:
  CHECK_FALSE(virt.read64(0x30000000).has_value());                // reads refuse it
  rig.put(kPml4 + 8, (1ull << 40) | kPresentWritable);              // a table outside RAM
  GuestVirtualMemory fresh(rig.memory, rig.mode);
  CHECK_FALSE(fresh.translate(1ull << 39).has_value());
  rig.put(kPml4 + 16, 0xffff'ffff'ffff'f000ull | kPresentWritable);  // address bits beyond 52
  CHECK_FALSE(fresh.translate(2ull << 39).has_value());
  // No paging: guest-virtual is guest-physical.
  GuestVirtualMemory flat(rig.memory, {1, 0, 0, 0});
  CHECK(flat.translate(0x5000) == 0x5000u);
}

TEST_CASE("guest stack: a frame-pointer chain is followed to its end") {
  Rig rig;
  uint64_t a = kKernelBase + 0x100, b = kKernelBase + 0x200, c = kKernelBase + 0x300;
  rig.frame(a, b, 0xffffffff81000010);
  rig.frame(b, c, 0xffffffff81000020);
  rig.frame(c, 0, 0xffffffff81000030);
  GuestVirtualMemory virt(rig.memory, rig.mode);
  auto stack = walkFramePointers(virt, 0xffffffff81000000, a, false);
  CHECK(stack == std::vector<uint64_t>{0xffffffff81000000, 0xffffffff81000010, 0xffffffff81000020, 0xffffffff81000030});
}

TEST_CASE("guest stack: loops, wild pointers and deep chains end the walk") {
  Rig rig;
  GuestVirtualMemory virt(rig.memory, rig.mode);
  uint64_t rip = 0xffffffff81000000;
  uint64_t a = kKernelBase + 0x100, b = kKernelBase + 0x200;

  rig.frame(a, a, 0xffffffff81000010);  // points to itself
  CHECK(walkFramePointers(virt, rip, a, false).size() == 2);
  rig.frame(a, b, 0xffffffff81000010);  // a -> b -> a
  rig.frame(b, a, 0xffffffff81000020);
  CHECK(walkFramePointers(virt, rip, a, false).size() == 3);

  CHECK(walkFramePointers(virt, rip, 0x0000700000000000ull, false).size() == 1);  // unmapped
  CHECK(walkFramePointers(virt, rip, 0x30000000, false).size() == 1);             // not RAM
  CHECK(walkFramePointers(virt, rip, 0x8000000000000000ull, false).size() == 1);  // non-canonical
  CHECK(walkFramePointers(virt, rip, 0xfffffffffffffff8ull, false).size() == 1);  // wraps around
  CHECK(walkFramePointers(virt, rip, a + 4, false).size() == 1);                  // misaligned
  rig.frame(a, b, 0x8000000000000000ull);                                          // bad return address
  CHECK(walkFramePointers(virt, rip, a, false).size() == 1);

  // 300 frames, each pointing to the next: the walk stops at its cap.
  for (uint64_t i = 0; i < 300; ++i) rig.frame(kKernelBase + 0x1000 + i * 16, kKernelBase + 0x1000 + (i + 1) * 16, rip + i);
  CHECK(walkFramePointers(virt, rip, kKernelBase + 0x1000, false).size() == 64);
  CHECK(walkFramePointers(virt, rip, kKernelBase + 0x1000, false, 5).size() == 5);
}

}  // namespace
}  // namespace hyve
