// A vCPU without KVM for tests and fuzz targets of code that edits vCPU state (the PVM
// fixups and pins): registers, special registers, MSRs and XCR0 are plain fields, and
// translation is the identity (under a mask) or absent.
#pragma once

#include "hv/hypervisor.h"
#include "util/error.h"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

namespace hyve::test {

class FakeVcpu final : public hv::Vcpu {
 public:
  hv::Registers regs{};
  hv::SpecialRegisters sregs{};
  std::map<uint32_t, uint64_t> msrValues;
  bool translates = true;
  uint64_t translateMask = ~0ull;
  uint64_t xcr0 = 1;  // KVM's reset value: x87 only
  bool refuseSpecialRegisters = false;  // KVM_SET_SREGS fails, as for a CR4 KVM rejects

  uint32_t id() const override { return 0; }
  hv::VcpuExit run() override { return {}; }
  void requestStop() override {}
  void bindToCurrentThread() override {}
  void kick() override {}
  hv::Registers registers() const override { return regs; }
  void setRegisters(const hv::Registers& r) override { regs = r; }
  hv::SpecialRegisters specialRegisters() const override { return sregs; }
  void setSpecialRegisters(const hv::SpecialRegisters& s) override {
    if (refuseSpecialRegisters) throw Error(ErrorCode::Hypervisor, "KVM_SET_SREGS failed: Invalid argument");
    sregs = s;
  }
  void setCpuid(std::span<const hv::CpuidEntry>) override {}
  std::vector<hv::Msr> msrs(std::span<const uint32_t> indices) const override {
    std::vector<hv::Msr> out;
    for (uint32_t index : indices) {
      auto it = msrValues.find(index);
      out.push_back({index, it == msrValues.end() ? 0 : it->second});
    }
    return out;
  }
  void setMsrs(std::span<const hv::Msr> values) override {
    for (const auto& m : values) msrValues[m.index] = m.value;
  }
  void setXcr0(uint64_t value) override { xcr0 = value; }
  void injectException(const hv::ExceptionInjection&) override {}
  // Identity-mapped within (a mask of) RAM, like a kernel's direct map; or no mapping.
  std::optional<uint64_t> translate(uint64_t guestVirtual) const override {
    if (!translates) return std::nullopt;
    return guestVirtual & translateMask;
  }
  void applyFirmwareDefaults() override {}
  bool waitsOnOtherVcpus() const override { return false; }
  void setBreakpoints(std::span<const uint64_t>) override {}
  void saveState(snapshot::StateWriter&) const override {}
  void restoreState(snapshot::StateReader&, std::chrono::nanoseconds) override {}
};

}  // namespace hyve::test
