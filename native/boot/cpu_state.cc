#include "boot/cpu_state.h"

#include "core/layout.h"
#include "util/error.h"

#include <array>

namespace hyve {

namespace {

constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Ne = 1ull << 5;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kRflagsReserved = 1ull << 1;  // always-one bit; IF stays clear

constexpr uint64_t kPagePresent = 1ull << 0;
constexpr uint64_t kPageWritable = 1ull << 1;
constexpr uint64_t kPageLarge = 1ull << 7;
constexpr size_t kPageBytes = 4096;
constexpr size_t kEntriesPerTable = 512;
constexpr size_t kIdentityMappedGiB = 4;

constexpr uint8_t kTypeCodeExecReadAccessed = 0xb;
constexpr uint8_t kTypeDataReadWriteAccessed = 0x3;

constexpr hv::Segment kCode64 = hv::flatSegment(boot::kBootCodeSelector, kTypeCodeExecReadAccessed, 0, true);
constexpr hv::Segment kData = hv::flatSegment(boot::kBootDataSelector, kTypeDataReadWriteAccessed, 0, false);
constexpr hv::Segment kCode32 = hv::flatSegment(boot::kBootCode32Selector, kTypeCodeExecReadAccessed, 0, false);

constexpr uint64_t descriptor(const hv::Segment& s) {
  uint64_t limit = s.g ? s.limit >> 12 : s.limit;
  return (limit & 0xffff) | (s.base & 0xffffff) << 16 | uint64_t(s.type) << 40 | uint64_t(s.s) << 44 |
         uint64_t(s.dpl) << 45 | uint64_t(s.present) << 47 | ((limit >> 16) & 0xf) << 48 | uint64_t(s.avl) << 52 |
         uint64_t(s.l) << 53 | uint64_t(s.db) << 54 | uint64_t(s.g) << 55 | ((s.base >> 24) & 0xff) << 56;
}

static_assert(descriptor(kCode64) == 0x00af9b000000ffff);
static_assert(descriptor(kData) == 0x00cf93000000ffff);
static_assert(descriptor(kCode32) == 0x00cf9b000000ffff);

constexpr std::array<uint64_t, 5> kGdtEntries = {0, 0, descriptor(kCode64), descriptor(kData), descriptor(kCode32)};
static_assert(kGdtEntries[boot::kBootCodeSelector / 8] == descriptor(kCode64));
static_assert(kGdtEntries[boot::kBootDataSelector / 8] == descriptor(kData));
static_assert(kGdtEntries[boot::kBootCode32Selector / 8] == descriptor(kCode32));
static_assert(layout::kPageDirs + kIdentityMappedGiB * kPageBytes <= layout::kCmdline);

void writeTable(const GuestMemory& memory, uint64_t gpa, const std::array<uint64_t, kEntriesPerTable>& table) {
  if (!memory.writeObject(gpa, table)) throw Error(ErrorCode::Internal, "boot page tables do not fit in guest RAM");
}

}  // namespace

void BootCpuState::applyTo(hv::SpecialRegisters& sregs) const {
  bool longMode = mode == Mode::Long64;
  sregs.cs = longMode ? kCode64 : kCode32;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = kData;
  sregs.gdt = {layout::kGdt, static_cast<uint16_t>(sizeof(kGdtEntries) - 1)};
  sregs.idt = {0, 0};  // no handlers yet: a stray exception shuts down instead of running garbage
  sregs.cr0 = kCr0Pe | kCr0Et | kCr0Ne | (longMode ? kCr0Pg : 0);
  sregs.cr2 = 0;
  sregs.cr3 = longMode ? layout::kPml4 : 0;
  sregs.cr4 = longMode ? kCr4Pae : 0;
  sregs.efer = longMode ? kEferLme | kEferLma : 0;
}

namespace boot {

void writeBootTables(const GuestMemory& memory) {
  if (!memory.writeObject(layout::kGdt, kGdtEntries)) throw Error(ErrorCode::Internal, "boot GDT does not fit in guest RAM");

  std::array<uint64_t, kEntriesPerTable> pml4{};
  pml4[0] = layout::kPdpt | kPagePresent | kPageWritable;
  writeTable(memory, layout::kPml4, pml4);

  std::array<uint64_t, kEntriesPerTable> pdpt{};
  for (size_t gib = 0; gib < kIdentityMappedGiB; ++gib) {
    uint64_t directory = layout::kPageDirs + gib * kPageBytes;
    pdpt[gib] = directory | kPagePresent | kPageWritable;
    std::array<uint64_t, kEntriesPerTable> pd{};
    for (size_t i = 0; i < kEntriesPerTable; ++i) {
      uint64_t address = (gib * kEntriesPerTable + i) * 2 * layout::MiB;
      pd[i] = address | kPagePresent | kPageWritable | kPageLarge;
    }
    writeTable(memory, directory, pd);
  }
  writeTable(memory, layout::kPdpt, pdpt);
}

BootCpuState longModeEntry(uint64_t entry) {
  BootCpuState state;
  state.mode = BootCpuState::Mode::Long64;
  state.regs.rip = entry;
  state.regs.rsi = layout::kBootParams;
  state.regs.rsp = layout::kBootStack;
  state.regs.rflags = kRflagsReserved;
  return state;
}

BootCpuState pvhEntry(uint32_t entry) {
  BootCpuState state;
  state.mode = BootCpuState::Mode::Protected32;
  state.regs.rip = entry;
  state.regs.rbx = layout::kPvhStartInfo;
  state.regs.rsp = layout::kBootStack;
  state.regs.rflags = kRflagsReserved;
  return state;
}

}  // namespace boot
}  // namespace hyve
