#include "pvm/cpuid_policy.h"
#include "pvm/user_xstate.h"

#include "fake_vcpu.h"

#include <doctest/doctest.h>

namespace hyve::pvm {
namespace {

constexpr uint64_t kOsxsave = 1ull << 18;

test::FakeVcpu vcpuAt(unsigned dpl) {
  test::FakeVcpu vcpu;
  vcpu.sregs.cr4 = 0x6b0;  // what Linux runs with: PAE, PGE, OSFXSR, OSXMMEXCPT
  vcpu.sregs.cs = hv::flatSegment(static_cast<uint16_t>(dpl ? 0x33 : 0x10), 0xb, static_cast<uint8_t>(dpl), true);
  return vcpu;
}

TEST_CASE("user xstate pin: XCR0 becomes x87|SSE before CR4.OSXSAVE is set, from kernel mode only") {
  UserXstatePin pin;
  test::FakeVcpu user = vcpuAt(3);
  CHECK(pin.afterRun(user).empty());  // user mode: nothing is rewritten
  CHECK(user.sregs.cr4 == 0x6b0);
  CHECK(user.xcr0 == 1);

  test::FakeVcpu kernel = vcpuAt(0);
  UserXstatePin fresh;
  CHECK(fresh.afterRun(kernel) == "pvm:xstate-pin");
  CHECK(kernel.xcr0 == kUserXcr0);
  CHECK(kernel.sregs.cr4 == (0x6b0 | kOsxsave));
  CHECK(fresh.afterRun(kernel).empty());  // already pinned
}

TEST_CASE("user xstate pin: a CR4 write that dropped OSXSAVE after user mode ran is counted as a re-pin") {
  UserXstatePin pin;
  test::FakeVcpu vcpu = vcpuAt(0);
  CHECK(pin.afterRun(vcpu) == "pvm:xstate-pin");
  vcpu.sregs.cs = vcpuAt(3).sregs.cs;
  CHECK(pin.afterRun(vcpu).empty());
  vcpu.sregs = vcpuAt(0).sregs;  // the kernel rewrote CR4 from its shadow
  CHECK(pin.afterRun(vcpu) == "pvm:xstate-repin");
  CHECK((vcpu.sregs.cr4 & kOsxsave) != 0);
}

TEST_CASE("user xstate pin: KVM refusing the registers leaves the vCPU as it was, once") {
  UserXstatePin pin;
  test::FakeVcpu vcpu = vcpuAt(0);
  vcpu.refuseSpecialRegisters = true;
  CHECK(pin.afterRun(vcpu) == "pvm:xstate-pin-refused");
  CHECK(vcpu.sregs.cr4 == 0x6b0);
  CHECK(pin.afterRun(vcpu).empty());  // not retried on every exit
}

TEST_CASE("PVM CPUID policy: leaf 0xd offers exactly the x87 and SSE state, XSAVE stays visible to KVM") {
  std::vector<hv::CpuidEntry> entries = {
      {1, 0, 0, 0, 0, 0xffffffff, 0},
      {0xd, 0, 0, 0x2e7, 2696, 2696, 0},
      {0xd, 1, 0, 0xf, 0x100, 0x1800, 0},
      {0xd, 2, 0, 256, 576, 0, 0},
  };
  applyPvmCpuidPolicy(entries);
  CHECK((entries[0].ecx & (1u << 26)) != 0);  // XSAVE: KVM refuses CR4.OSXSAVE without it
  CHECK((entries[0].ecx & (1u << 28)) == 0);  // AVX stays hidden
  CHECK(entries[1].eax == kUserXcr0);
  CHECK(entries[1].ebx == 576);
  CHECK(entries[1].ecx == 576);
  CHECK(entries[1].edx == 0);
  CHECK(entries[2].eax == 0);  // no XSAVEOPT/XSAVEC/XSAVES
  CHECK(entries[3].eax == 0);
  CHECK(entries[3].ebx == 0);
}

}  // namespace
}  // namespace hyve::pvm
