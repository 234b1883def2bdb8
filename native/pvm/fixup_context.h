// Internal to the instruction-fixup layer: the vCPU state one fixup works on, and the
// architectural helpers handlers share (CPU mode, CPL, registers, addresses, guest reads).
#pragma once

#include "core/guest_memory.h"
#include "hv/hypervisor.h"
#include "util/hex.h"

#include <Zydis/Zydis.h>

#include <cstdint>
#include <optional>
#include <string>

namespace hyve::pvm {

enum class CpuMode { Real, Protected16, Protected32, Compat16, Compat32, Long64 };

CpuMode cpuMode(const hv::SpecialRegisters& sregs);
unsigned currentPrivilegeLevel(const hv::SpecialRegisters& sregs, CpuMode mode);
ZydisMachineMode zydisMachineMode(CpuMode mode);
ZydisStackWidth zydisStackWidth(const hv::SpecialRegisters& sregs, CpuMode mode);
// "64-bit kernel mode", "32-bit compatibility user mode", "real mode", ...
std::string describeMode(CpuMode mode, unsigned cpl);

namespace vector {
constexpr uint8_t kBreakpoint = 3;
constexpr uint8_t kInvalidOpcode = 6;
constexpr uint8_t kSegmentNotPresent = 11;
constexpr uint8_t kStackFault = 12;
constexpr uint8_t kGeneralProtection = 13;
}  // namespace vector

namespace rflags {
constexpr uint64_t kCarry = 1ull << 0;
constexpr uint64_t kFixedOne = 1ull << 1;
constexpr uint64_t kParity = 1ull << 2;
constexpr uint64_t kAdjust = 1ull << 4;
constexpr uint64_t kZero = 1ull << 6;
constexpr uint64_t kSign = 1ull << 7;
constexpr uint64_t kTrap = 1ull << 8;
constexpr uint64_t kInterrupt = 1ull << 9;
constexpr uint64_t kDirection = 1ull << 10;
constexpr uint64_t kOverflow = 1ull << 11;
constexpr uint64_t kIopl = 3ull << 12;
constexpr uint64_t kNestedTask = 1ull << 14;
constexpr uint64_t kResume = 1ull << 16;
constexpr uint64_t kVirtual8086 = 1ull << 17;
constexpr uint64_t kAlignmentCheck = 1ull << 18;
constexpr uint64_t kVirtualInterrupt = 1ull << 19;
constexpr uint64_t kVirtualInterruptPending = 1ull << 20;
constexpr uint64_t kId = 1ull << 21;
constexpr uint64_t kArithmetic = kCarry | kParity | kAdjust | kZero | kSign | kOverflow;
}  // namespace rflags

// Returned by handlers: empty when the instruction was carried out (or an exception raised
// as the CPU would), otherwise why it was left alone.
using Problem = std::optional<std::string>;

// Copies of the vCPU state that handlers edit; handle() writes back what they mark changed.
struct FixupContext {
  hv::Vcpu& vcpu;
  const GuestMemory& memory;
  hv::Registers regs;
  hv::SpecialRegisters sregs;
  CpuMode mode;
  unsigned cpl;
  const ZydisDecodedInstruction& instruction;
  const ZydisDecodedOperand* operands;  // instruction.operand_count entries

  bool regsChanged = false;
  bool sregsChanged = false;
  std::optional<hv::ExceptionInjection> exception;

  // Moves RIP past the instruction (wrapping like IP/EIP outside 64-bit mode).
  void skip();
  // Delivers an exception; for faults leave RIP alone, for traps call skip() first.
  void raise(uint8_t vector, std::optional<uint32_t> errorCode = std::nullopt);
};

// General-purpose register access by Zydis register (any width, incl. AH..BH).
std::optional<uint64_t> readGpr(const hv::Registers& regs, ZydisRegister reg);
// Writes with x86 semantics: 32-bit writes zero-extend, 8/16-bit writes merge.
bool writeGpr(hv::Registers& regs, ZydisRegister reg, uint64_t value);

bool isCanonical(uint64_t address, const hv::SpecialRegisters& sregs);

// Linear address of a memory operand (segment base, base, index*scale, displacement,
// RIP-relative), or why it cannot be formed.
std::optional<uint64_t> linearAddress(const FixupContext& c, const ZydisDecodedOperand& operand,
                                      std::string& problem);

// Copies guest-linear memory through the vCPU's page tables, page by page. Returns the
// number of bytes copied before the first untranslatable or non-RAM page.
size_t readLinear(const hv::Vcpu& vcpu, const GuestMemory& memory, uint64_t linear, void* out, size_t length);

using hyve::hex;
using hyve::hexBytes;

}  // namespace hyve::pvm
