// Detection of PVM ("Pagetable-based Virtual Machine"): a KVM implementation without
// hardware virtualisation. Guest user mode runs natively, but guest kernel mode runs under
// KVM's instruction emulator, so hyve must hide CPU features, add kernel arguments and fix
// up instructions the emulator cannot execute (see cpuid_policy.h, instruction_fixup.h).
// Deliberately free of KVM headers so any backend can ask.
#pragma once

namespace hyve::pvm {

// True when the host's /dev/kvm is provided by the kvm_pvm module.
bool hostIsPvm();

}  // namespace hyve::pvm
