// Which IOAPIC input each PCI slot's INTx pin drives. The PCI bus owns the scheme; the ACPI
// _PRT and the MP table only describe it, so both take it from the caller.
#pragma once

#include "core/layout.h"

#include <cstdint>
#include <functional>

namespace hyve::firmware {

constexpr uint32_t kPciSlots = 32;
constexpr uint32_t kPciIntxPins = 4;  // INTA..INTD as 0..3

// Returns the GSI for (slot 0-31, pin 0-3 = INTA-INTD).
using PciIntxRouting = std::function<uint32_t(uint32_t slot, uint32_t pin)>;

// The default swizzle: spreads the slots' pins over the IOAPIC's eight PCI inputs.
inline uint32_t defaultPciIntxGsi(uint32_t slot, uint32_t pin) {
  return layout::kPciIntxGsiBase + (slot + pin) % (layout::kIoapicPins - layout::kPciIntxGsiBase);
}

}  // namespace hyve::firmware
