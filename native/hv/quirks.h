// Host-specific workarounds, behind one interface the machine calls at fixed points, so
// the machine and its run loop never branch on the kind of host. On hardware KVM these
// are the do-nothing defaults below; pvm/ implements them for hosts that emulate guest
// kernel mode (Hypervisor::emulatesGuestKernel()).
#pragma once

#include "hv/hypervisor.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hyve::hv {

// What a quirk made of an exit the hypervisor could not complete.
struct QuirkResult {
  enum class Kind { NotMine, Handled, Failed } kind = Kind::NotMine;
  std::string counter;  // Handled: the exit-statistics key, e.g. "fixup:popcnt"
  std::string error;    // Failed: why, for the VM's exit message
};

// One per vCPU, called only from that vCPU's thread.
class VcpuQuirks {
 public:
  virtual ~VcpuQuirks() = default;
  // After every run(), before its exit is handled. Returns an exit-statistics key to
  // count (e.g. "pvm:xstate-pin"), or an empty view for nothing worth counting.
  virtual std::string_view afterRun(Vcpu&) { return {}; }
  // For an EmulationFailure exit.
  virtual QuirkResult onEmulationFailure(Vcpu&, const VcpuExit&) { return {}; }
};

// One per machine, asked while it is built.
class Quirks {
 public:
  virtual ~Quirks() = default;
  // Kernel arguments to add to `cmdline` (the machine prints and adds them).
  virtual std::vector<std::string> kernelArguments(const std::string& /*cmdline*/) const { return {}; }
  // `cmdline` with `arguments` added.
  virtual std::string withKernelArguments(const std::string& cmdline, const std::vector<std::string>&) const {
    return cmdline;
  }
  // Narrows what the guest is told it may use.
  virtual void adjustCpuid(std::vector<CpuidEntry>&) const {}
  virtual std::unique_ptr<VcpuQuirks> forVcpu() { return std::make_unique<VcpuQuirks>(); }
};

}  // namespace hyve::hv
