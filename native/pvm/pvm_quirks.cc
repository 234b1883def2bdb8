#include "pvm/pvm_quirks.h"

#include "pvm/cpuid_policy.h"
#include "pvm/instruction_fixup.h"
#include "pvm/syscall_bridge.h"
#include "pvm/user_xstate.h"

namespace hyve::pvm {

namespace {

class PvmVcpuQuirks final : public hv::VcpuQuirks {
 public:
  PvmVcpuQuirks(const GuestMemory& memory, SyscallBridge& bridge) : fixup_(memory), bridge_(bridge) {}

  std::string_view afterRun(hv::Vcpu& vcpu) override {
    // The bridge's trap must be in place before the guest's first user-mode syscall and
    // survive the kernel's own text patching; a periodic look is cheap.
    if (exitsUntilWatch_-- == 0) {
      bridge_.watch(vcpu);
      exitsUntilWatch_ = 64;
    }
    return xstate_.afterRun(vcpu);
  }

  hv::QuirkResult onEmulationFailure(hv::Vcpu& vcpu, const hv::VcpuExit& exit) override {
    bridge_.watch(vcpu);
    if (bridge_.handleTrap(vcpu, vcpu.registers().rip)) return {hv::QuirkResult::Kind::Handled, "pvm:exception-entry", {}};
    FixupResult result = fixup_.handle(vcpu, exit);
    if (result.handled) return {hv::QuirkResult::Kind::Handled, "fixup:" + result.mnemonic, {}};
    return {hv::QuirkResult::Kind::Failed, {}, "PVM instruction fixup: " + result.error};
  }

 private:
  InstructionFixup fixup_;
  UserXstatePin xstate_;
  SyscallBridge& bridge_;
  uint32_t exitsUntilWatch_ = 0;
};

class PvmQuirks final : public hv::Quirks {
 public:
  explicit PvmQuirks(const GuestMemory& memory) : memory_(memory), bridge_(memory) {}

  std::vector<std::string> kernelArguments(const std::string& cmdline) const override {
    return pvmKernelArguments(cmdline);
  }
  std::string withKernelArguments(const std::string& cmdline, const std::vector<std::string>& arguments) const override {
    return pvm::withKernelArguments(cmdline, arguments);
  }
  void adjustCpuid(std::vector<hv::CpuidEntry>& entries) const override { applyPvmCpuidPolicy(entries); }
  std::unique_ptr<hv::VcpuQuirks> forVcpu() override { return std::make_unique<PvmVcpuQuirks>(memory_, bridge_); }

 private:
  const GuestMemory& memory_;
  SyscallBridge bridge_;  // one per machine: every vCPU shares the guest's #PF entry
};

}  // namespace

std::unique_ptr<hv::Quirks> makePvmQuirks(const GuestMemory& memory) { return std::make_unique<PvmQuirks>(memory); }

}  // namespace hyve::pvm
