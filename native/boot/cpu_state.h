// The boot CPU's state at the kernel entry, and the structures in guest memory it refers
// to (flat GDT, identity page tables). The GDT descriptors and the segment registers are
// generated from the same definitions so their hidden and in-memory forms agree.
#pragma once

#include "core/guest_memory.h"
#include "hv/hypervisor.h"

#include <cstdint>

namespace hyve {

struct BootCpuState {
  enum class Mode {
    Long64,       // Linux 64-bit boot protocol: paging on, RSI = boot_params
    Protected32,  // PVH: 32-bit protected mode, paging off, EBX = hvm_start_info
  };
  Mode mode = Mode::Long64;
  hv::Registers regs{};

  // Sets the control registers, EFER, segments and GDTR for `mode`. Fields the boot
  // protocol does not cover (APIC base, TR, LDT, CR8) keep the vCPU's values.
  void applyTo(hv::SpecialRegisters& sregs) const;
};

namespace boot {

// Selectors in the loader's GDT. Linux's boot protocol requires __BOOT_CS/__BOOT_DS.
constexpr uint16_t kBootCodeSelector = 0x10;
constexpr uint16_t kBootDataSelector = 0x18;
constexpr uint16_t kBootCode32Selector = 0x20;  // PVH enters in 32-bit mode

// Writes the GDT at layout::kGdt and page tables at layout::kPml4/kPdpt/kPageDirs that
// identity-map the first 4 GiB with 2 MiB pages. Throws Error(Internal) if low RAM is missing.
void writeBootTables(const GuestMemory& memory);

BootCpuState longModeEntry(uint64_t entry);
BootCpuState pvhEntry(uint32_t entry);

}  // namespace boot
}  // namespace hyve
