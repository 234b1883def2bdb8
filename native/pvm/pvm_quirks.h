// The PVM workarounds as hv::Quirks: CPUID policy and kernel arguments at build time,
// the syscall bridge and the instruction fixups in the run loop.
#pragma once

#include "core/guest_memory.h"
#include "hv/quirks.h"

#include <memory>

namespace hyve::pvm {

// For a machine whose guest memory is `memory` (which must outlive the result).
std::unique_ptr<hv::Quirks> makePvmQuirks(const GuestMemory& memory);

}  // namespace hyve::pvm
