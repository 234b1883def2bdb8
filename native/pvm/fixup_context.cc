#include "pvm/fixup_context.h"

#include <algorithm>
#include <cstdio>

namespace hyve::pvm {
namespace {

constexpr uint64_t kCr0ProtectionEnable = 1;
constexpr uint64_t kCr4La57 = 1ull << 12;
constexpr uint64_t kEferLongModeActive = 1ull << 10;
constexpr uint64_t kPageSize = 4096;

uint64_t* gprSlot(hv::Registers& regs, ZydisRegister full) {
  switch (full) {
    case ZYDIS_REGISTER_RAX: return &regs.rax;
    case ZYDIS_REGISTER_RBX: return &regs.rbx;
    case ZYDIS_REGISTER_RCX: return &regs.rcx;
    case ZYDIS_REGISTER_RDX: return &regs.rdx;
    case ZYDIS_REGISTER_RSI: return &regs.rsi;
    case ZYDIS_REGISTER_RDI: return &regs.rdi;
    case ZYDIS_REGISTER_RSP: return &regs.rsp;
    case ZYDIS_REGISTER_RBP: return &regs.rbp;
    case ZYDIS_REGISTER_R8: return &regs.r8;
    case ZYDIS_REGISTER_R9: return &regs.r9;
    case ZYDIS_REGISTER_R10: return &regs.r10;
    case ZYDIS_REGISTER_R11: return &regs.r11;
    case ZYDIS_REGISTER_R12: return &regs.r12;
    case ZYDIS_REGISTER_R13: return &regs.r13;
    case ZYDIS_REGISTER_R14: return &regs.r14;
    case ZYDIS_REGISTER_R15: return &regs.r15;
    default: return nullptr;
  }
}

struct GprView {
  uint64_t* slot;
  unsigned width;  // bits
  unsigned shift;  // 8 for AH..BH
};

std::optional<GprView> gprView(hv::Registers& regs, ZydisRegister reg) {
  auto regClass = ZydisRegisterGetClass(reg);
  if (regClass != ZYDIS_REGCLASS_GPR8 && regClass != ZYDIS_REGCLASS_GPR16 &&
      regClass != ZYDIS_REGCLASS_GPR32 && regClass != ZYDIS_REGCLASS_GPR64) {
    return std::nullopt;
  }
  uint64_t* slot = gprSlot(regs, ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg));
  if (slot == nullptr) return std::nullopt;
  bool highByte = reg == ZYDIS_REGISTER_AH || reg == ZYDIS_REGISTER_BH || reg == ZYDIS_REGISTER_CH ||
                  reg == ZYDIS_REGISTER_DH;
  return GprView{slot, ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg), highByte ? 8u : 0u};
}

uint64_t widthMask(unsigned bits) { return bits >= 64 ? ~0ull : (1ull << bits) - 1; }

const hv::Segment* segmentFor(const hv::SpecialRegisters& sregs, ZydisRegister reg) {
  switch (reg) {
    case ZYDIS_REGISTER_ES: return &sregs.es;
    case ZYDIS_REGISTER_CS: return &sregs.cs;
    case ZYDIS_REGISTER_SS: return &sregs.ss;
    case ZYDIS_REGISTER_DS: return &sregs.ds;
    case ZYDIS_REGISTER_FS: return &sregs.fs;
    case ZYDIS_REGISTER_GS: return &sregs.gs;
    default: return nullptr;
  }
}

}  // namespace

CpuMode cpuMode(const hv::SpecialRegisters& sregs) {
  if (!(sregs.cr0 & kCr0ProtectionEnable)) return CpuMode::Real;
  if (sregs.efer & kEferLongModeActive) {
    if (sregs.cs.l) return CpuMode::Long64;
    return sregs.cs.db ? CpuMode::Compat32 : CpuMode::Compat16;
  }
  return sregs.cs.db ? CpuMode::Protected32 : CpuMode::Protected16;
}

unsigned currentPrivilegeLevel(const hv::SpecialRegisters& sregs, CpuMode mode) {
  if (mode == CpuMode::Real) return 0;
  // Architecturally CS.RPL is the CPL; KVM itself reads SS.DPL, which agrees except for a
  // null SS, whose reported DPL varies by backend.
  return sregs.cs.selector & 3;
}

ZydisMachineMode zydisMachineMode(CpuMode mode) {
  switch (mode) {
    case CpuMode::Real: return ZYDIS_MACHINE_MODE_REAL_16;
    case CpuMode::Protected16: return ZYDIS_MACHINE_MODE_LEGACY_16;
    case CpuMode::Protected32: return ZYDIS_MACHINE_MODE_LEGACY_32;
    case CpuMode::Compat16: return ZYDIS_MACHINE_MODE_LONG_COMPAT_16;
    case CpuMode::Compat32: return ZYDIS_MACHINE_MODE_LONG_COMPAT_32;
    case CpuMode::Long64: return ZYDIS_MACHINE_MODE_LONG_64;
  }
  return ZYDIS_MACHINE_MODE_LONG_64;
}

ZydisStackWidth zydisStackWidth(const hv::SpecialRegisters& sregs, CpuMode mode) {
  if (mode == CpuMode::Long64) return ZYDIS_STACK_WIDTH_64;
  if (mode == CpuMode::Real) return ZYDIS_STACK_WIDTH_16;
  return sregs.ss.db ? ZYDIS_STACK_WIDTH_32 : ZYDIS_STACK_WIDTH_16;
}

std::string describeMode(CpuMode mode, unsigned cpl) {
  std::string name;
  switch (mode) {
    case CpuMode::Real: return "real mode";
    case CpuMode::Protected16: name = "16-bit protected"; break;
    case CpuMode::Protected32: name = "32-bit protected"; break;
    case CpuMode::Compat16: name = "16-bit compatibility"; break;
    case CpuMode::Compat32: name = "32-bit compatibility"; break;
    case CpuMode::Long64: name = "64-bit"; break;
  }
  if (cpl == 0) return name + " kernel mode";
  if (cpl == 3) return name + " user mode";
  return name + " mode at CPL " + std::to_string(cpl);
}

void FixupContext::skip() {
  uint64_t next = regs.rip + instruction.length;
  if (mode == CpuMode::Long64) {
    regs.rip = next;
  } else {
    regs.rip = next & widthMask(mode == CpuMode::Protected32 || mode == CpuMode::Compat32 ? 32 : 16);
  }
  regsChanged = true;
}

void FixupContext::raise(uint8_t vector, std::optional<uint32_t> errorCode) {
  exception = hv::ExceptionInjection{vector, errorCode};
}

std::optional<uint64_t> readGpr(const hv::Registers& regs, ZydisRegister reg) {
  auto copy = regs;
  auto view = gprView(copy, reg);
  if (!view) return std::nullopt;
  return (*view->slot >> view->shift) & widthMask(view->width);
}

bool writeGpr(hv::Registers& regs, ZydisRegister reg, uint64_t value) {
  auto view = gprView(regs, reg);
  if (!view) return false;
  if (view->width == 64 || view->width == 32) {
    *view->slot = value & widthMask(view->width);  // 32-bit writes clear bits 63:32
  } else {
    uint64_t mask = widthMask(view->width) << view->shift;
    *view->slot = (*view->slot & ~mask) | ((value << view->shift) & mask);
  }
  return true;
}

bool isCanonical(uint64_t address, const hv::SpecialRegisters& sregs) {
  unsigned bits = (sregs.cr4 & kCr4La57) ? 57 : 48;
  auto shifted = static_cast<int64_t>(address << (64 - bits)) >> (64 - bits);
  return static_cast<uint64_t>(shifted) == address;
}

std::optional<uint64_t> linearAddress(const FixupContext& c, const ZydisDecodedOperand& operand,
                                      std::string& problem) {
  if (operand.type != ZYDIS_OPERAND_TYPE_MEMORY || operand.mem.type != ZYDIS_MEMOP_TYPE_MEM) {
    problem = "operand is not a memory reference";
    return std::nullopt;
  }
  const auto& mem = operand.mem;
  uint64_t offset = 0;
  if (mem.base == ZYDIS_REGISTER_RIP || mem.base == ZYDIS_REGISTER_EIP) {
    if (ZYAN_FAILED(ZydisCalcAbsoluteAddress(&c.instruction, &operand, c.regs.rip, &offset))) {
      problem = "cannot resolve the RIP-relative address";
      return std::nullopt;
    }
  } else {
    if (mem.base != ZYDIS_REGISTER_NONE) {
      auto base = readGpr(c.regs, mem.base);
      if (!base) {
        problem = std::string("unsupported base register ") + ZydisRegisterGetString(mem.base);
        return std::nullopt;
      }
      offset += *base;
    }
    if (mem.index != ZYDIS_REGISTER_NONE) {
      auto index = readGpr(c.regs, mem.index);
      if (!index) {
        problem = std::string("unsupported index register ") + ZydisRegisterGetString(mem.index);
        return std::nullopt;
      }
      offset += *index * mem.scale;
    }
    if (mem.disp.has_displacement) offset += static_cast<uint64_t>(mem.disp.value);
  }
  offset &= widthMask(c.instruction.address_width);

  if (c.mode == CpuMode::Long64) {
    // Only FS and GS keep a base in 64-bit mode.
    if (mem.segment == ZYDIS_REGISTER_FS) offset += c.sregs.fs.base;
    if (mem.segment == ZYDIS_REGISTER_GS) offset += c.sregs.gs.base;
    if (!isCanonical(offset, c.sregs)) {
      problem = "non-canonical address " + hex(offset);
      return std::nullopt;
    }
    return offset;
  }
  const hv::Segment* segment = segmentFor(c.sregs, mem.segment);
  if (segment == nullptr) {
    problem = "unknown segment register";
    return std::nullopt;
  }
  // Segment limits are not checked: only the kernel's own flat segments get here.
  return (segment->base + offset) & 0xffffffffull;
}

size_t readLinear(const hv::Vcpu& vcpu, const GuestMemory& memory, uint64_t linear, void* out, size_t length) {
  auto* bytes = static_cast<uint8_t*>(out);
  size_t done = 0;
  while (done < length) {
    uint64_t address = linear + done;
    size_t chunk = std::min<uint64_t>(length - done, kPageSize - (address & (kPageSize - 1)));
    auto physical = vcpu.translate(address);
    if (!physical || !memory.read(*physical, bytes + done, chunk)) break;
    done += chunk;
  }
  return done;
}

}  // namespace hyve::pvm
