// Carries out, in the VMM, the instructions PVM's kernel-mode emulator gives up on
// (VcpuExit::Kind::EmulationFailure). Each failing instruction is decoded with Zydis in the
// vCPU's current mode and handled per mnemonic; anything unknown is reported, not guessed.
// One instance per vCPU thread (it owns a decoder and formatter; no shared state).
// Measured on this host: int3, clac/stac, popcnt, cmpxchg16b and fwait reach us; PVM itself
// runs fences, rdrand, swapgs, sysretq and iretq (and injects #UD for ud2), so those
// handlers are fallbacks for PVM builds that differ, checked against the SDM and KVM.
#pragma once

#include "core/guest_memory.h"
#include "hv/hypervisor.h"

#include <Zydis/Zydis.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace hyve::pvm {

struct FixupResult {
  bool handled = false;
  std::string mnemonic;                  // e.g. "popcnt"; empty if the bytes did not decode
  std::optional<uint8_t> injectedVector; // exception delivered to the guest, if any
  // When not handled: the instruction, its bytes, RIP and CPU mode, and why, e.g.
  // "cannot emulate `xrstor64 [rcx]` (48 0f ae 29) at rip 0xffffffff81001234 in 64-bit kernel mode: ..."
  std::string error;
};

struct FixupStats {
  std::map<std::string, uint64_t> handled;   // mnemonic -> count
  std::map<std::string, uint64_t> failed;    // mnemonic (or "(undecodable)") -> count
};

class InstructionFixup {
 public:
  explicit InstructionFixup(const GuestMemory& memory);

  // For an EmulationFailure exit: carries the instruction out on `vcpu` (registers, memory,
  // injected exception) and returns handled, or leaves the vCPU untouched and explains.
  // Hypervisor call failures propagate as hyve::Error.
  FixupResult handle(hv::Vcpu& vcpu, const hv::VcpuExit& exit);

  const FixupStats& stats() const { return stats_; }

 private:
  const GuestMemory& memory_;
  ZydisDecoder decoder_{};
  ZydisMachineMode decoderMode_ = ZYDIS_MACHINE_MODE_LONG_64;
  ZydisStackWidth decoderStackWidth_ = ZYDIS_STACK_WIDTH_64;
  ZydisFormatter formatter_{};
  FixupStats stats_;
};

}  // namespace hyve::pvm
