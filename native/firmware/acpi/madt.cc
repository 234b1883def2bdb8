#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

#include "core/layout.h"
#include "util/error.h"

#include <string>

namespace hyve::firmware::acpi {
namespace {

// Interrupt controller structure types (ACPI 6.4, table 5.45).
constexpr uint8_t kLocalApic = 0;
constexpr uint8_t kIoApic = 1;
constexpr uint8_t kInterruptSourceOverride = 2;
constexpr uint8_t kLocalApicNmi = 4;

constexpr uint32_t kPcatCompat = 1u << 0;  // there is a dual 8259 PIC to mask
constexpr uint32_t kLocalApicEnabled = 1u << 0;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint8_t kIsaBus = 0;

// MPS INTI flags (table 5.50): polarity in bits 0-1, trigger mode in bits 2-3.
constexpr uint16_t kActiveHigh = 0x1;
constexpr uint16_t kEdge = 0x1 << 2;
constexpr uint16_t kLevel = 0x3 << 2;
constexpr uint16_t kConforming = 0;

constexpr uint8_t kPitIrq = 0;
constexpr uint32_t kPitGsi = 2;  // the IOAPIC input the PIT is wired to (see interrupts.h)
constexpr uint8_t kLint1 = 1;

void sourceOverride(ByteBuffer& madt, uint8_t irq, uint32_t gsi, uint16_t flags) {
  madt.u8(kInterruptSourceOverride);
  madt.u8(10);
  madt.u8(kIsaBus);
  madt.u8(irq);
  madt.u32(gsi);
  madt.u16(flags);
}

}  // namespace

std::vector<uint8_t> buildMadt(uint32_t cpuCount) {
  // xAPIC ids are 8 bits, 0xff is broadcast, and the IOAPIC takes the id after the CPUs.
  if (cpuCount == 0 || cpuCount >= 0xff) {
    throw Error(ErrorCode::BadConfig, "MADT: the CPU count must be 1-254, got " + std::to_string(cpuCount));
  }
  ByteBuffer madt = beginTable("APIC", 5);
  madt.u32(static_cast<uint32_t>(layout::kLapicBase));
  madt.u32(kPcatCompat);
  for (uint32_t cpu = 0; cpu < cpuCount; ++cpu) {
    madt.u8(kLocalApic);
    madt.u8(8);
    madt.u8(static_cast<uint8_t>(cpu));  // ACPI processor UID
    madt.u8(static_cast<uint8_t>(cpu));  // APIC id
    madt.u32(kLocalApicEnabled);
  }
  madt.u8(kIoApic);
  madt.u8(12);
  madt.u8(static_cast<uint8_t>(cpuCount));  // IOAPIC id
  madt.u8(0);
  madt.u32(static_cast<uint32_t>(layout::kIoapicBase));
  madt.u32(0);  // GSI base
  sourceOverride(madt, kPitIrq, kPitGsi, kEdge | kActiveHigh);
  // The SCI is level-triggered; ISA's default would be edge.
  sourceOverride(madt, layout::kAcpiSciIrq, layout::kAcpiSciIrq, kLevel | kActiveHigh);
  madt.u8(kLocalApicNmi);
  madt.u8(6);
  madt.u8(kAllProcessors);
  madt.u16(kConforming);
  madt.u8(kLint1);
  return finishTable(std::move(madt));
}

}  // namespace hyve::firmware::acpi
