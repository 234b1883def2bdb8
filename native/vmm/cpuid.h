// The CPUID a vCPU sees: the backend's supported set, adjusted for topology and for
// what hyve emulates. PVM-specific hiding lives in pvm/cpuid_policy.
#pragma once

#include "hv/hypervisor.h"

#include <vector>

namespace hyve {

struct CpuidOptions {
  uint32_t cpuCount = 1;
  bool x2apic = true;  // xhyve's -x enables it; KVM always can
};

// Returns the leaves for vCPU `vcpuIndex` (its APIC ID equals its index).
std::vector<hv::CpuidEntry> cpuidForVcpu(const std::vector<hv::CpuidEntry>& supported, uint32_t vcpuIndex,
                                         const CpuidOptions& options);

}  // namespace hyve
