// The guest-physical memory map every part of the VMM agrees on.
// Low memory follows the PC conventions Linux expects (EBDA, BIOS area); guest RAM
// above 3 GiB is moved past 4 GiB so the 32-bit PCI hole stays free for MMIO.
#pragma once

#include <cstdint>

namespace hyve::layout {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;

// Boot structures written by the loader (all below the EBDA, outside the kernel's way).
constexpr uint64_t kGdt = 0x500;             // flat 64-bit GDT for the boot CPU
constexpr uint64_t kBootParams = 0x7000;     // Linux "zero page" (struct boot_params)
constexpr uint64_t kPml4 = 0x9000;           // identity page tables: PML4, PDPT, 4 PDs
constexpr uint64_t kPdpt = 0xa000;
constexpr uint64_t kPageDirs = 0xb000;       // 4 pages: identity-map the first 4 GiB with 2 MiB pages
constexpr uint64_t kBootStack = 0x8ff0;      // stack for the boot CPU before the kernel sets its own
constexpr uint64_t kPvhStartInfo = 0x6000;   // hvm_start_info for the PVH entry
constexpr uint64_t kCmdline = 0x20000;       // kernel command line
constexpr uint64_t kCmdlineMax = 0x10000;    // incl. the terminating NUL

// Legacy PC holes.
constexpr uint64_t kEbdaStart = 0x9fc00;     // extended BIOS data area, reported reserved
constexpr uint64_t kLowRamEnd = 0xa0000;     // VGA/BIOS area follows, reported reserved
constexpr uint64_t kBiosStart = 0xe0000;     // ACPI tables (RSDP must be in 0xe0000-0xfffff)
constexpr uint64_t kBiosEnd = 0x100000;
constexpr uint64_t kHighRamStart = 0x100000;

// Default kernel load address (Linux's LOAD_PHYSICAL_ADDR) for images that do not say.
constexpr uint64_t kKernelLoad = 0x1000000;

// 32-bit MMIO hole: [3 GiB, 4 GiB).
constexpr uint64_t kPciHoleStart = 3 * GiB;
constexpr uint64_t kPciHoleEnd = 4 * GiB;
constexpr uint64_t kPciMmioStart = kPciHoleStart;   // 32-bit BARs are allocated from here
constexpr uint64_t kPciMmioEnd = 0xfe000000;
constexpr uint64_t kIoapicBase = 0xfec00000;
constexpr uint64_t kHpetBase = 0xfed00000;
constexpr uint64_t kHpetSize = 0x400;
constexpr uint64_t kLapicBase = 0xfee00000;
// KVM needs three pages for the real-mode TSS and one for the EPT identity map, inside the hole.
constexpr uint64_t kKvmTss = 0xfffbd000;
constexpr uint64_t kKvmIdentityMap = 0xfffbc000;

// Port I/O assignments.
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint16_t kCom2Port = 0x2f8;
constexpr uint8_t kCom1Irq = 4;
constexpr uint8_t kCom2Irq = 3;
constexpr uint16_t kRtcPort = 0x70;
constexpr uint8_t kRtcIrq = 8;
constexpr uint16_t kI8042DataPort = 0x60;
constexpr uint16_t kI8042CommandPort = 0x64;
constexpr uint16_t kResetControlPort = 0xcf9;  // "reset control register"; FADT reset register
constexpr uint16_t kPciConfigAddressPort = 0xcf8;
constexpr uint16_t kPciConfigDataPort = 0xcfc;
constexpr uint16_t kAcpiPmBase = 0x600;          // PM1a_EVT (4 bytes), PM1a_CNT (2), PM_TMR (4)
constexpr uint16_t kAcpiPm1aEvt = kAcpiPmBase;
constexpr uint16_t kAcpiPm1aCnt = kAcpiPmBase + 4;
constexpr uint16_t kAcpiPmTimer = kAcpiPmBase + 8;
constexpr uint16_t kAcpiPmLength = 12;
constexpr uint8_t kAcpiSciIrq = 9;
// SLP_TYP of S5 (soft off): the DSDT's \_S5 package advertises it, PM1a_CNT acts on it.
constexpr uint8_t kAcpiS5SleepType = 5;

// IOAPIC inputs: 0-15 are the ISA IRQs (IRQ0 is wired to GSI 2), 16-23 PCI INTx.
constexpr uint32_t kIoapicPins = 24;
constexpr uint32_t kPciIntxGsiBase = 16;

}  // namespace hyve::layout
