// Keeps guest user mode off register state its kernel does not save.
//
// A PVM guest's user mode runs natively, and on hosts without CPUID faulting its CPUID
// and XGETBV are the host's own: they report OSXSAVE, AVX and AVX-512 with the host's XCR0.
// The guest kernel runs with `noxsave` (the emulator cannot execute XSAVE), so it switches
// tasks with FXSAVE/FXRSTOR, which save x87 and XMM state only. A process that believes
// AVX is usable (glibc's string functions do, from those two instructions) then shares the
// upper YMM halves, ZMM and mask registers with every other process on that vCPU: a task
// switch in the middle of a vector loop corrupts its data.
//
// KVM loads the guest's own XCR0 into the hardware while the guest runs, but only while
// the guest's CR4.OSXSAVE is set. So this pins CR4.OSXSAVE and XCR0 = x87|SSE: user-mode
// XGETBV then reports no AVX state, glibc (and any program that checks, as the ISA
// requires) stays on SSE, and an AVX instruction raises #UD instead of corrupting another
// task's registers.
//
// The invariant has a gap: the kernel writes CR4 from its own shadow copy, which lacks
// OSXSAVE, so a CR4 write (at boot; later only for global TLB flushes and rare prctls)
// drops the bit until the next exit puts it back. Counted as "pvm:xstate-repin".
// The pin is set only from supervisor mode, where the other fixups also rewrite the
// special registers. Only for PVM hosts: with hardware virtualization the guest kernel
// owns XSAVE itself.
#pragma once

#include "hv/hypervisor.h"

#include <string_view>

namespace hyve::pvm {

class UserXstatePin {
 public:
  // Call after every exit; returns an exit-statistics key when it acted, else empty.
  std::string_view afterRun(hv::Vcpu& vcpu);

 private:
  bool xcr0Set_ = false;
  bool sawUserMode_ = false;
  bool failed_ = false;  // KVM refused: leave the vCPU alone from then on
};

}  // namespace hyve::pvm
