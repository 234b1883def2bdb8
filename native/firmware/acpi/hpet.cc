#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

#include "core/layout.h"

namespace hyve::firmware::acpi {

// IA-PC HPET specification 1.0a, section 3.2.4.
std::vector<uint8_t> buildHpet(uint32_t eventTimerBlockId) {
  // Smallest period, in main counter ticks, the OS may program in periodic mode without
  // losing interrupts; 128 is the value PC chipsets report.
  constexpr uint16_t kMinimumPeriodicTick = 128;
  ByteBuffer hpet = beginTable("HPET", 1);
  hpet.u32(eventTimerBlockId);
  appendGas(hpet, {AddressSpace::SystemMemory, 64, 0, AccessSize::Undefined, layout::kHpetBase});
  hpet.u8(0);  // HPET number
  hpet.u16(kMinimumPeriodicTick);
  hpet.u8(0);  // page protection: none claimed for the 1 KiB block
  return finishTable(std::move(hpet));
}

}  // namespace hyve::firmware::acpi
