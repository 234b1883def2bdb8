// Detection of PVM ("Pagetable-based Virtual Machine"): a KVM implementation without
// hardware virtualisation. Guest user mode runs natively, but guest kernel mode runs under
// KVM's instruction emulator, so hyve must hide CPU features, add kernel arguments and fix
// up instructions the emulator cannot execute (native/pvm/). Detection belongs to the KVM
// backend, which reports it as Hypervisor::emulatesGuestKernel().
#pragma once

namespace hyve::hv::kvm {

// True when the host's /dev/kvm is provided by the kvm_pvm module.
bool hostIsPvm();

}  // namespace hyve::hv::kvm
