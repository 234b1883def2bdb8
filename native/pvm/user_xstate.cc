#include "pvm/user_xstate.h"

#include "pvm/cpuid_policy.h"
#include "util/error.h"

namespace hyve::pvm {

namespace {
constexpr uint64_t kCr4Osxsave = 1ull << 18;
}

std::string_view UserXstatePin::afterRun(hv::Vcpu& vcpu) {
  if (failed_) return {};
  hv::SpecialRegisters sregs = vcpu.specialRegisters();
  if (sregs.cs.dpl != 0) {
    sawUserMode_ = true;
    return {};
  }
  if (sregs.cr4 & kCr4Osxsave) return {};
  try {
    // XCR0 first: OSXSAVE with KVM's reset value (x87 only) would leave XMM out of the
    // XSAVE that glibc's lazy-binding trampoline uses to preserve argument registers.
    if (!xcr0Set_) {
      vcpu.setXcr0(kUserXcr0);
      xcr0Set_ = true;
    }
    sregs.cr4 |= kCr4Osxsave;
    vcpu.setSpecialRegisters(sregs);
  } catch (const Error&) {
    // Without the pin the guest runs as before; the statistics say it is missing.
    failed_ = true;
    return "pvm:xstate-pin-refused";
  }
  return sawUserMode_ ? "pvm:xstate-repin" : "pvm:xstate-pin";
}

}  // namespace hyve::pvm
