#include "pvm/instruction_fixup.h"

#include "pvm/fixup_context.h"
#include "pvm/privilege_return.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>

namespace hyve::pvm {
namespace {

// lock cmpxchg16b needs its operand 16-byte aligned.
struct alignas(16) Octword {
  uint64_t low, high;
};

uint64_t widthMask(unsigned bits) { return bits >= 64 ? ~0ull : (1ull << bits) - 1; }

void setArithmeticFlags(FixupContext& c, uint64_t set) {
  c.regs.rflags = (c.regs.rflags & ~rflags::kArithmetic) | set;
}

Problem setAlignmentCheck(FixupContext& c, bool enabled) {
  if (c.cpl != 0) {
    c.raise(vector::kInvalidOpcode);
    return {};
  }
  c.regs.rflags = enabled ? (c.regs.rflags | rflags::kAlignmentCheck) : (c.regs.rflags & ~rflags::kAlignmentCheck);
  c.skip();
  return {};
}

std::optional<uint64_t> readOperand(FixupContext& c, const ZydisDecodedOperand& operand, unsigned width,
                                    std::string& problem) {
  if (operand.type == ZYDIS_OPERAND_TYPE_REGISTER) {
    auto value = readGpr(c.regs, operand.reg.value);
    if (!value) problem = std::string("unsupported source register ") + ZydisRegisterGetString(operand.reg.value);
    return value;
  }
  auto address = linearAddress(c, operand, problem);
  if (!address) return std::nullopt;
  uint64_t value = 0;
  const size_t bytes = width / 8;
  if (readLinear(c.vcpu, c.memory, *address, &value, bytes) != bytes) {
    problem = "cannot read " + std::to_string(bytes) + " bytes at " + hex(*address) + " (unmapped or not RAM)";
    return std::nullopt;
  }
  return value;
}

Problem popcnt(FixupContext& c) {
  const unsigned width = c.instruction.operand_width;
  const auto& destination = c.operands[0];
  std::string problem;
  auto source = readOperand(c, c.operands[1], width, problem);
  if (!source) return problem;
  const uint64_t value = *source & widthMask(width);
  if (destination.type != ZYDIS_OPERAND_TYPE_REGISTER ||
      !writeGpr(c.regs, destination.reg.value, static_cast<uint64_t>(std::popcount(value)))) {
    return "unsupported destination operand";
  }
  setArithmeticFlags(c, value == 0 ? rflags::kZero : 0);
  c.skip();
  return {};
}

// RDRAND/RDSEED stay visible in CPUID (they seed the kernel's RNG at boot), so the kernel
// runs them in kernel mode; the host's RNG stands in for the CPU's.
Problem randomNumber(FixupContext& c) {
  const auto& destination = c.operands[0];
  uint64_t random = 0;
  const bool ok = ::getrandom(&random, sizeof(random), GRND_NONBLOCK) == static_cast<ssize_t>(sizeof(random));
  if (destination.type != ZYDIS_OPERAND_TYPE_REGISTER ||
      !writeGpr(c.regs, destination.reg.value, ok ? random : 0)) {
    return "unsupported destination operand";
  }
  // CF=1 means a value was delivered; CF=0 tells the guest to retry, as the CPU may.
  setArithmeticFlags(c, ok ? rflags::kCarry : 0);
  c.skip();
  return {};
}

// Host pointer to `size` naturally aligned bytes of guest memory at a linear address.
uint8_t* hostPointer(FixupContext& c, uint64_t linear, size_t size, std::string& problem) {
  auto physical = c.vcpu.translate(linear);
  if (!physical) {
    problem = "address " + hex(linear) + " is not mapped";
    return nullptr;
  }
  auto bytes = c.memory.slice(*physical, size);
  if (bytes.size() != size || bytes.data() == nullptr ||
      reinterpret_cast<uintptr_t>(bytes.data()) % size != 0) {
    problem = "address " + hex(linear) + " (physical " + hex(*physical) + ") is not guest RAM";
    return nullptr;
  }
  return bytes.data();
}

// Atomic on the host, so it stays atomic against other vCPUs running natively.
Problem compareExchange16(FixupContext& c) {
  std::string problem;
  auto address = linearAddress(c, c.operands[0], problem);
  if (!address) return problem;
  if (*address % 16 != 0) {
    c.raise(vector::kGeneralProtection, 0);
    return {};
  }
  uint8_t* target = hostPointer(c, *address, 16, problem);
  if (target == nullptr) return problem;
  uint64_t low = c.regs.rax, high = c.regs.rdx;
  bool equal;
  asm volatile("lock cmpxchg16b %[target]"
               : [target] "+m"(*reinterpret_cast<Octword*>(target)), "+a"(low), "+d"(high), "=@ccz"(equal)
               : "b"(c.regs.rbx), "c"(c.regs.rcx)
               : "memory");
  if (!equal) {
    c.regs.rax = low;
    c.regs.rdx = high;
  }
  c.regs.rflags = equal ? (c.regs.rflags | rflags::kZero) : (c.regs.rflags & ~rflags::kZero);
  c.skip();
  return {};
}

Problem compareExchange8(FixupContext& c) {
  std::string problem;
  auto address = linearAddress(c, c.operands[0], problem);
  if (!address) return problem;
  if (*address % 8 != 0) {
    // The CPU allows it, but a host atomic across a cache line is a split lock.
    return "misaligned operand at " + hex(*address);
  }
  uint8_t* target = hostPointer(c, *address, 8, problem);
  if (target == nullptr) return problem;
  uint64_t expected = ((c.regs.rdx & 0xffffffff) << 32) | (c.regs.rax & 0xffffffff);
  const uint64_t desired = ((c.regs.rcx & 0xffffffff) << 32) | (c.regs.rbx & 0xffffffff);
  const bool equal = __atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(target), &expected, desired, false,
                                                 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  if (!equal) {
    c.regs.rax = expected & 0xffffffff;  // 32-bit register writes
    c.regs.rdx = expected >> 32;
  }
  c.regs.rflags = equal ? (c.regs.rflags | rflags::kZero) : (c.regs.rflags & ~rflags::kZero);
  c.skip();
  return {};
}

Problem carryOut(FixupContext& c) {
  switch (c.instruction.mnemonic) {
    case ZYDIS_MNEMONIC_INT3:
      // A trap: the guest's #BP handler expects RIP after the int3.
      c.skip();
      c.raise(vector::kBreakpoint);
      return {};
    case ZYDIS_MNEMONIC_UD0:
    case ZYDIS_MNEMONIC_UD1:
    case ZYDIS_MNEMONIC_UD2:
      // WARN()/BUG(): the kernel's #UD handler does the rest.
      c.raise(vector::kInvalidOpcode);
      return {};
    case ZYDIS_MNEMONIC_CLAC: return setAlignmentCheck(c, false);
    case ZYDIS_MNEMONIC_STAC: return setAlignmentCheck(c, true);
    case ZYDIS_MNEMONIC_LFENCE:
    case ZYDIS_MNEMONIC_MFENCE:
    case ZYDIS_MNEMONIC_SFENCE:
    case ZYDIS_MNEMONIC_SERIALIZE:
      // The exit already serialises the vCPU; the fence orders our side too.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      c.skip();
      return {};
    case ZYDIS_MNEMONIC_FWAIT:          // no x87 exceptions are ever pending in kernel mode
    case ZYDIS_MNEMONIC_PREFETCH:       // hints: no architectural effect, never fault
    case ZYDIS_MNEMONIC_PREFETCHNTA:
    case ZYDIS_MNEMONIC_PREFETCHT0:
    case ZYDIS_MNEMONIC_PREFETCHT1:
    case ZYDIS_MNEMONIC_PREFETCHT2:
    case ZYDIS_MNEMONIC_PREFETCHW:
    case ZYDIS_MNEMONIC_PREFETCHWT1:
    case ZYDIS_MNEMONIC_ENDBR32:        // a no-op with CET-IBT hidden
    case ZYDIS_MNEMONIC_ENDBR64:
      c.skip();
      return {};
    case ZYDIS_MNEMONIC_POPCNT: return popcnt(c);
    case ZYDIS_MNEMONIC_RDRAND:
    case ZYDIS_MNEMONIC_RDSEED: return randomNumber(c);
    case ZYDIS_MNEMONIC_CMPXCHG16B: return compareExchange16(c);
    case ZYDIS_MNEMONIC_CMPXCHG8B: return compareExchange8(c);
    case ZYDIS_MNEMONIC_SWAPGS: return emulateSwapgs(c);
    case ZYDIS_MNEMONIC_SYSRET: return emulateSysret(c);
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
    case ZYDIS_MNEMONIC_IRETQ: return emulateIretq(c);
    case ZYDIS_MNEMONIC_XSAVE:
    case ZYDIS_MNEMONIC_XSAVE64:
    case ZYDIS_MNEMONIC_XSAVEC:
    case ZYDIS_MNEMONIC_XSAVEC64:
    case ZYDIS_MNEMONIC_XSAVEOPT:
    case ZYDIS_MNEMONIC_XSAVEOPT64:
    case ZYDIS_MNEMONIC_XSAVES:
    case ZYDIS_MNEMONIC_XSAVES64:
    case ZYDIS_MNEMONIC_XRSTOR:
    case ZYDIS_MNEMONIC_XRSTOR64:
    case ZYDIS_MNEMONIC_XRSTORS:
    case ZYDIS_MNEMONIC_XRSTORS64:
    case ZYDIS_MNEMONIC_XGETBV:
    case ZYDIS_MNEMONIC_XSETBV:
      return "XSAVE state cannot be emulated; the PVM CPUID policy hides XSAVE and hyve passes `noxsave`, "
             "so check that the kernel command line still has it and that the kernel honours it";
    default:
      return "no fixup exists for this instruction";
  }
}

}  // namespace

InstructionFixup::InstructionFixup(const GuestMemory& memory) : memory_(memory) {
  ZydisDecoderInit(&decoder_, decoderMode_, decoderStackWidth_);
  ZydisFormatterInit(&formatter_, ZYDIS_FORMATTER_STYLE_INTEL);
}

FixupResult InstructionFixup::handle(hv::Vcpu& vcpu, const hv::VcpuExit& exit) {
  const hv::Registers regs = vcpu.registers();
  const hv::SpecialRegisters sregs = vcpu.specialRegisters();
  const CpuMode mode = cpuMode(sregs);
  const unsigned cpl = currentPrivilegeLevel(sregs, mode);
  const ZydisMachineMode machineMode = zydisMachineMode(mode);
  const ZydisStackWidth stackWidth = zydisStackWidth(sregs, mode);
  if (machineMode != decoderMode_ || stackWidth != decoderStackWidth_) {
    ZydisDecoderInit(&decoder_, machineMode, stackWidth);
    decoderMode_ = machineMode;
    decoderStackWidth_ = stackWidth;
  }

  uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH] = {};
  size_t available = 0;
  ZydisDecodedInstruction instruction;
  ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT];
  auto decode = [&] {
    return available != 0 &&
           ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder_, bytes, available, &instruction, operands));
  };
  available = std::min(exit.instruction.size(), sizeof(bytes));
  if (available) std::memcpy(bytes, exit.instruction.data(), available);
  bool decoded = decode();
  if (!decoded) {
    // The backend gave no bytes (or too few): fetch them through the guest's page tables.
    const uint64_t linear = mode == CpuMode::Long64 ? regs.rip : (sregs.cs.base + regs.rip) & 0xffffffff;
    available = readLinear(vcpu, memory_, linear, bytes, sizeof(bytes));
    decoded = decode();
  }

  FixupResult result;
  const std::string where = " at rip " + hex(regs.rip) + " in " + describeMode(mode, cpl);
  if (!decoded) {
    ++stats_.failed["(undecodable)"];
    result.error = available == 0 ? "cannot read the instruction" + where
                                  : "cannot decode the instruction (" + hexBytes(bytes, available) + ")" + where;
    return result;
  }
  result.mnemonic = ZydisMnemonicGetString(instruction.mnemonic);

  FixupContext context{vcpu, memory_, regs, sregs, mode, cpl, instruction, operands, false, false, std::nullopt};
  if (Problem problem = carryOut(context)) {
    ++stats_.failed[result.mnemonic];
    char text[256] = {};
    if (ZYAN_FAILED(ZydisFormatterFormatInstruction(&formatter_, &instruction, operands,
                                                    instruction.operand_count_visible, text, sizeof(text),
                                                    regs.rip, nullptr))) {
      std::snprintf(text, sizeof(text), "%s", result.mnemonic.c_str());
    }
    result.error = "cannot emulate `" + std::string(text) + "` (" + hexBytes(bytes, instruction.length) + ")" +
                   where + ": " + *problem;
    return result;
  }

  // Segments first: they decide the mode the new RIP/RSP are interpreted in.
  if (context.sregsChanged) vcpu.setSpecialRegisters(context.sregs);
  if (context.regsChanged) vcpu.setRegisters(context.regs);
  if (context.exception) {
    vcpu.injectException(*context.exception);
    result.injectedVector = context.exception->vector;
  }
  ++stats_.handled[result.mnemonic];
  result.handled = true;
  return result;
}

}  // namespace hyve::pvm
