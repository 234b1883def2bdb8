// Internal to the instruction-fixup layer: the instructions a kernel uses to change privilege
// or reload segment state, which KVM's emulator leaves to us (written from the Intel SDM
// pseudo-code for SYSRET, IRET and SWAPGS).
#pragma once

#include "pvm/fixup_context.h"

namespace hyve::pvm {

Problem emulateSysret(FixupContext& c);
// IRETQ in 64-bit mode, to the same or an outer privilege level. Other forms are left alone.
Problem emulateIretq(FixupContext& c);
Problem emulateSwapgs(FixupContext& c);

}  // namespace hyve::pvm
