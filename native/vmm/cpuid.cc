#include "vmm/cpuid.h"

namespace hyve {

namespace {
constexpr uint32_t kLeaf1EcxX2apic = 1u << 21;
constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
constexpr uint32_t kLeaf1EdxHtt = 1u << 28;
}  // namespace

std::vector<hv::CpuidEntry> cpuidForVcpu(const std::vector<hv::CpuidEntry>& supported, uint32_t vcpuIndex,
                                         const CpuidOptions& options) {
  std::vector<hv::CpuidEntry> entries = supported;
  for (auto& e : entries) {
    switch (e.function) {
      case 1:
        // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package.
        e.ebx = (e.ebx & 0x0000ffff) | (vcpuIndex << 24) | ((options.cpuCount & 0xff) << 16);
        e.ecx |= kLeaf1EcxHypervisor;
        if (!options.x2apic) e.ecx &= ~kLeaf1EcxX2apic;
        if (options.cpuCount > 1) e.edx |= kLeaf1EdxHtt;
        else e.edx &= ~kLeaf1EdxHtt;
        break;
      case 0xb:
      case 0x1f:
        // Extended topology: one thread per core, all cores in one package.
        e.edx = vcpuIndex;
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1u << 8) | e.index;  // level type SMT
        } else if (e.index == 1) {
          uint32_t shift = 0;
          while ((1u << shift) < options.cpuCount) ++shift;
          e.eax = shift;
          e.ebx = options.cpuCount;
          e.ecx = (2u << 8) | e.index;  // level type core
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;  // invalid level ends the enumeration
        }
        break;
      default:
        break;
    }
  }
  return entries;
}

}  // namespace hyve
