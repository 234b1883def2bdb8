#include "pvm/cpuid_policy.h"

#include <algorithm>
#include <cstdint>
#include <sstream>

namespace hyve::pvm {
namespace {

enum class Reg { Eax, Ebx, Ecx, Edx };

struct HiddenFeature {
  uint32_t leaf;
  uint32_t subleaf;
  Reg reg;
  uint8_t bit;
  const char* name;         // as in /proc/cpuinfo, which clearcpuid= accepts since Linux 5.19
  bool clearInKernel;       // also pass clearcpuid=name: fails emulation and PVM ignores the mask
  const char* reason;
};

// Features the kernel would use in kernel mode, i.e. inside PVM's emulator. User mode runs
// natively and only loses them as optimisations.
//
// Measured on this host's PVM (2026-11): KVM_SET_CPUID2 is honoured for leaf 0x80000001 and
// a few leaf-1 bits (CX16, x2APIC, TSC-deadline), but leaf 7 always reads as the host's
// values and leaf 1 has the host's POPCNT/SSE4.x/AES/XSAVE/AVX/MOVBE/RDRAND bits forced on.
// Hence `clearInKernel`: features whose instructions failed emulation in kernel mode are
// also named in clearcpuid=, the only thing that keeps the kernel from using them.
// Kept on purpose (measured to work in kernel mode): SSE/SSE2 moves, fxsave/fxrstor,
// RDRAND/RDSEED, CLFLUSHOPT, BMI1 (tzcnt/lzcnt), ERMS/FSRM (rep movsb/stosb), and the CR4
// bits SMEP/SMAP/UMIP, which PVM accepts and enforces. MOVBE and RDPID raise #UD in kernel
// mode, but Linux only uses them in user mode (RDPID is not advertised anyway).
constexpr HiddenFeature kHiddenFeatures[] = {
    {1, 0, Reg::Ecx, 1, "pclmulqdq", true, "pclmulqdq fails emulation (GHASH/CRC-T10DIF drivers)"},
    {1, 0, Reg::Ecx, 3, "monitor", false, "idle would use monitor/mwait; hlt exits cleanly"},
    {1, 0, Reg::Ecx, 5, "vmx", false, "no nested virtualisation under an instruction emulator"},
    {1, 0, Reg::Ecx, 9, "ssse3", true, "pshufb fails emulation (SHA/ChaCha SIMD paths)"},
    {1, 0, Reg::Ecx, 12, "fma", false, "AVX family; needs XSAVE"},
    {1, 0, Reg::Ecx, 13, "cx16", true, "SLUB's lock cmpxchg16b fails emulation"},
    {1, 0, Reg::Ecx, 17, "pcid", false, "PVM refuses CR4.PCIDE (#GP)"},
    {1, 0, Reg::Ecx, 19, "sse4_1", false, "SIMD paths the emulator cannot run"},
    {1, 0, Reg::Ecx, 20, "sse4_2", true, "crc32 fails emulation (crc32c for ext4/btrfs checksums)"},
    {1, 0, Reg::Ecx, 23, "popcnt", true, "popcnt fails emulation (hweight)"},
    {1, 0, Reg::Ecx, 25, "aes", true, "aesenc fails emulation (AES-NI)"},
    // XSAVE itself stays in KVM's table: KVM refuses CR4.OSXSAVE without it, and
    // UserXstatePin needs that bit. xsave/xrstor/xgetbv fail emulation, so `noxsave`
    // (below) keeps the kernel off them.
    {1, 0, Reg::Ecx, 28, "avx", false, "needs XSAVE; vmovdqu ymm fails emulation"},
    {1, 0, Reg::Ecx, 29, "f16c", false, "AVX family; needs XSAVE"},
    {7, 0, Reg::Ebx, 0, "fsgsbase", true, "with it, paranoid entry (NMI, #DB, #MC) runs lsl, which fails emulation"},
    {7, 0, Reg::Ebx, 2, "sgx", false, "enclave instructions are not emulated"},
    {7, 0, Reg::Ebx, 4, "hle", false, "TSX is not emulated"},
    {7, 0, Reg::Ebx, 5, "avx2", false, "AVX family; needs XSAVE"},
    {7, 0, Reg::Ebx, 8, "bmi2", true, "mulx fails emulation (curve25519 and other crypto)"},
    {7, 0, Reg::Ebx, 10, "invpcid", false, "invpcid fails emulation"},
    {7, 0, Reg::Ebx, 11, "rtm", false, "TSX is not emulated"},
    {7, 0, Reg::Ebx, 14, "mpx", false, "bound-register instructions and XSAVE state"},
    {7, 0, Reg::Ebx, 16, "avx512f", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ebx, 17, "avx512dq", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ebx, 19, "adx", true, "adcx fails emulation (bignum crypto)"},
    {7, 0, Reg::Ebx, 20, "smap", true, "stac/clac around every user access fail emulation"},
    {7, 0, Reg::Ebx, 21, "avx512ifma", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ebx, 24, "clwb", false, "clwb fails emulation (persistent-memory flushes)"},
    {7, 0, Reg::Ebx, 26, "avx512pf", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ebx, 27, "avx512er", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ebx, 28, "avx512cd", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ebx, 29, "sha_ni", true, "sha1nexte fails emulation (SHA-NI)"},
    {7, 0, Reg::Ebx, 30, "avx512bw", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ebx, 31, "avx512vl", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ecx, 1, "avx512vbmi", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ecx, 3, "pku", false, "rdpkru/wrpkru in context switch, XSAVE-managed"},
    {7, 0, Reg::Ecx, 4, "ospke", false, "mirrors CR4.PKE; PKU is hidden"},
    {7, 0, Reg::Ecx, 5, "waitpkg", false, "udelay() would run tpause"},
    {7, 0, Reg::Ecx, 6, "avx512_vbmi2", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ecx, 7, "shstk", false, "CET shadow stacks need XSAVES and MSR support"},
    {7, 0, Reg::Ecx, 8, "gfni", false, "vector crypto in kernel mode"},
    {7, 0, Reg::Ecx, 9, "vaes", false, "vector crypto; needs XSAVE"},
    {7, 0, Reg::Ecx, 10, "vpclmulqdq", false, "vector crypto; needs XSAVE"},
    {7, 0, Reg::Ecx, 11, "avx512_vnni", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ecx, 12, "avx512_bitalg", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ecx, 14, "avx512_vpopcntdq", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Ecx, 16, "la57", false, "5-level paging switch runs through 32-bit trampoline code"},
    {7, 0, Reg::Edx, 2, "avx512_4vnniw", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Edx, 3, "avx512_4fmaps", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Edx, 8, "avx512_vp2intersect", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Edx, 20, "ibt", false, "CET indirect-branch tracking needs XSAVES and MSR support"},
    {7, 0, Reg::Edx, 22, "amx_bf16", false, "AMX; needs XSAVE"},
    {7, 0, Reg::Edx, 23, "avx512_fp16", false, "AVX-512; needs XSAVE"},
    {7, 0, Reg::Edx, 24, "amx_tile", false, "AMX; needs XSAVE"},
    {7, 0, Reg::Edx, 25, "amx_int8", false, "AMX; needs XSAVE"},
    {7, 1, Reg::Eax, 4, "avx_vnni", false, "AVX family; needs XSAVE"},
    {7, 1, Reg::Eax, 5, "avx512_bf16", false, "AVX-512; needs XSAVE"},
    {0x80000001, 0, Reg::Ecx, 2, "svm", false, "no nested virtualisation under an instruction emulator"},
    {0x80000001, 0, Reg::Ecx, 6, "sse4a", false, "SIMD paths the emulator cannot run"},
    {0x80000001, 0, Reg::Ecx, 11, "xop", false, "AVX family; needs XSAVE"},
    {0x80000001, 0, Reg::Ecx, 16, "fma4", false, "AVX family; needs XSAVE"},
    {0x80000001, 0, Reg::Ecx, 21, "tbm", false, "not emulated"},
    {0x80000001, 0, Reg::Edx, 27, "rdtscp", false, "rdtscp fails emulation; rdtsc_ordered() uses (lfence;) rdtsc without it"},
};

constexpr uint32_t kXsaveLeaf = 0xd;
constexpr uint32_t kLegacyXsaveAreaBytes = 512 + 64;  // FXSAVE image plus the XSAVE header

uint32_t& reg(hv::CpuidEntry& entry, Reg which) {
  switch (which) {
    case Reg::Eax: return entry.eax;
    case Reg::Ebx: return entry.ebx;
    case Reg::Ecx: return entry.ecx;
    case Reg::Edx: return entry.edx;
  }
  return entry.eax;
}

// Leaves whose subleaf selects different data; for the others KVM reports index 0.
bool subleafMatters(uint32_t leaf) { return leaf == 7 || leaf == kXsaveLeaf; }

struct KernelArgument {
  const char* key;       // the user giving this key (with any value) means "leave it alone"
  const char* argument;
};

constexpr KernelArgument kKernelArguments[] = {
    // PVM forces the XSAVE bit on, and xsave/xrstor/xgetbv fail emulation (measured).
    // Clearing XSAVE also clears everything that depends on it (AVX, AVX-512, AMX, PKU...).
    {"noxsave", "noxsave"},
    // MDS buffer clearing runs verw on every return to user mode, and verw fails emulation
    // (measured); IBRS MSR writes, RSB stuffing and PTI CR3 switches would add emulated work
    // to every kernel entry/exit for no benefit in a test VM.
    {"mitigations", "mitigations=off"},
    // Emulated kernel code runs ~1000x slower than wall time: the lockup detectors misfire.
    {"nowatchdog", "nowatchdog"},
    // The clocksource watchdog would declare the TSC unstable when emulation stalls between
    // its reads and fall back to a clocksource read through MMIO/port exits.
    {"tsc", "tsc=reliable"},
    // The crypto self-tests run RSA private-key operations at boot: measured on Debian's
    // 6.1 kernel, more than 8 minutes of emulated bignum multiplication before /init.
    {"cryptomgr.notests", "cryptomgr.notests"},
};

// Kernel arguments before any "--" (the rest is passed to init).
std::vector<std::string> kernelTokens(const std::string& cmdline) {
  std::vector<std::string> tokens;
  std::istringstream in(cmdline);
  std::string token;
  while (in >> token) {
    if (token == "--") break;
    tokens.push_back(token);
  }
  return tokens;
}

bool hasKey(const std::vector<std::string>& tokens, const std::string& key) {
  return std::any_of(tokens.begin(), tokens.end(), [&](const std::string& token) {
    return token == key || token.rfind(key + "=", 0) == 0;
  });
}

std::vector<std::string> splitCommas(const std::string& list) {
  std::vector<std::string> items;
  std::istringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

// clearcpuid= with the user's entries (the kernel reads only the last clearcpuid=) plus
// ours; empty when the user already clears everything we need. Linux reads at most 127
// characters of it, so the list stays short: only features whose instructions failed.
std::string clearcpuidArgument(const std::vector<std::string>& tokens) {
  std::vector<std::string> userItems;
  for (const auto& token : tokens) {
    if (token.rfind("clearcpuid=", 0) == 0) {
      for (auto& item : splitCommas(token.substr(11))) userItems.push_back(item);
    }
  }
  std::vector<std::string> items = userItems;
  bool addedAny = false;
  for (const auto& feature : kHiddenFeatures) {
    if (!feature.clearInKernel) continue;
    if (std::find(items.begin(), items.end(), feature.name) != items.end()) continue;
    items.push_back(feature.name);
    addedAny = true;
  }
  if (!addedAny) return {};
  std::string argument = "clearcpuid=";
  for (size_t i = 0; i < items.size(); ++i) argument += (i ? "," : "") + items[i];
  return argument;
}

}  // namespace

void applyPvmCpuidPolicy(std::vector<hv::CpuidEntry>& entries) {
  for (auto& entry : entries) {
    if (entry.function == kXsaveLeaf) {
      // The kernel never sees XSAVE, but KVM derives the XCR0 values it accepts from this
      // leaf, and user mode must run with XCR0 = x87|SSE (see pinUserXcr0): exactly the
      // legacy area and the header, nothing compacted or supervisor.
      entry.eax = entry.index == 0 ? kUserXcr0 : 0;
      entry.ebx = entry.ecx = entry.index == 0 ? kLegacyXsaveAreaBytes : 0;
      entry.edx = 0;
      continue;
    }
    for (const auto& feature : kHiddenFeatures) {
      if (entry.function != feature.leaf) continue;
      if (subleafMatters(feature.leaf) && entry.index != feature.subleaf) continue;
      reg(entry, feature.reg) &= ~(uint32_t{1} << feature.bit);
    }
  }
}

std::vector<std::string> pvmKernelArguments(const std::string& existingCmdline) {
  const auto tokens = kernelTokens(existingCmdline);
  std::vector<std::string> arguments;
  // PVM ignores most CPUID masking, so this is what keeps the kernel off those instructions.
  if (auto clear = clearcpuidArgument(tokens); !clear.empty()) arguments.push_back(clear);
  for (const auto& argument : kKernelArguments) {
    if (!hasKey(tokens, argument.key)) arguments.push_back(argument.argument);
  }
  return arguments;
}

std::string withKernelArguments(const std::string& cmdline, const std::vector<std::string>& arguments) {
  std::string added;
  for (const auto& argument : arguments) added += (added.empty() ? "" : " ") + argument;
  if (added.empty()) return cmdline;
  // The first standalone "--" ends the kernel's arguments.
  size_t separator = std::string::npos;
  for (size_t pos = cmdline.find("--"); pos != std::string::npos; pos = cmdline.find("--", pos + 1)) {
    bool startsWord = pos == 0 || cmdline[pos - 1] == ' ' || cmdline[pos - 1] == '\t';
    bool endsWord = pos + 2 == cmdline.size() || cmdline[pos + 2] == ' ' || cmdline[pos + 2] == '\t';
    if (startsWord && endsWord) {
      separator = pos;
      break;
    }
  }
  if (separator == std::string::npos) {
    return cmdline.empty() ? added : cmdline + " " + added;
  }
  std::string before = cmdline.substr(0, separator);
  while (!before.empty() && (before.back() == ' ' || before.back() == '\t')) before.pop_back();
  return (before.empty() ? added : before + " " + added) + " " + cmdline.substr(separator);
}

}  // namespace hyve::pvm
