// What a guest may see and is told on a PVM host, where its kernel mode runs under KVM's
// instruction emulator: CPUID bits for instructions the emulator cannot execute are hidden,
// and kernel arguments cover what hiding does not keep away. PVM honours only part of
// KVM_SET_CPUID2 (leaf 7 and most of leaf 1 read as the host's), so the clearcpuid= and
// noxsave arguments carry most of the policy. Only for PVM hosts.
#pragma once

#include "hv/hypervisor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace hyve::pvm {

// XCR0 while a PVM guest runs: x87 and SSE, the state a kernel without XSAVE switches
// between tasks (see user_xstate.h).
constexpr uint64_t kUserXcr0 = 0x3;

// Clears, in place, the CPUID bits of features whose instructions the emulator cannot run
// but the kernel would use in kernel mode, and limits leaf 0xd to the x87 and SSE state.
void applyPvmCpuidPolicy(std::vector<hv::CpuidEntry>& entries);

// Kernel arguments to add for a PVM guest, leaving out those the user already gave
// (a user's clearcpuid= list is merged: the returned one includes theirs).
// The caller prints them, and must add them before any "--" (see withKernelArguments).
std::vector<std::string> pvmKernelArguments(const std::string& existingCmdline);

// `cmdline` with `arguments` added as kernel arguments: before a " -- " separator, whose
// tail belongs to init, otherwise at the end.
std::string withKernelArguments(const std::string& cmdline, const std::vector<std::string>& arguments);

}  // namespace hyve::pvm
