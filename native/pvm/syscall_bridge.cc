#include "pvm/syscall_bridge.h"

#include "pvm/fixup_context.h"

#include <array>
#include <cstring>

namespace hyve::pvm {

namespace {

constexpr uint32_t kPageFaultVector = 14;
constexpr uint32_t kIdtGateSize = 16;
constexpr uint32_t kMsrLstar = 0xc0000082, kMsrFmask = 0xc0000084;
constexpr std::array<uint8_t, 3> kClac = {0x0f, 0x01, 0xca};

// The hardware exception frame under RSP at the #PF entry (error code pushed by the CPU).
struct ExceptionFrame {
  uint64_t errorCode, rip, cs, rflags, rsp, ss;
};

}  // namespace

SyscallBridge::SyscallBridge(const GuestMemory& memory) : memory_(memory) {
  ZydisDecoderInit(&decoder_, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

void SyscallBridge::watch(hv::Vcpu& vcpu) {
  std::lock_guard lock(mutex_);
  if (trapPhysical_ != 0) {
    std::array<uint8_t, 3> current{};
    if (memory_.read(trapPhysical_, current.data(), current.size()) && current == kClac) return;
  }
  plantLocked(vcpu);
}

bool SyscallBridge::plantLocked(hv::Vcpu& vcpu) {
  hv::SpecialRegisters sregs = vcpu.specialRegisters();
  // Only a 64-bit kernel with an IDT that covers #PF.
  if (!(sregs.efer & (1u << 10)) || sregs.idt.limit < (kPageFaultVector + 1) * kIdtGateSize - 1) return false;
  uint8_t gate[kIdtGateSize];
  if (readLinear(vcpu, memory_, sregs.idt.base + kPageFaultVector * kIdtGateSize, gate, sizeof gate) != sizeof gate) {
    return false;
  }
  uint64_t handler = uint64_t(gate[0]) | uint64_t(gate[1]) << 8 | uint64_t(gate[6]) << 16 | uint64_t(gate[7]) << 24;
  uint32_t high;
  std::memcpy(&high, gate + 8, 4);
  handler |= uint64_t(high) << 32;
  if (!(gate[5] & 0x80)) return false;  // gate not present yet

  // Skip an endbr64, then expect the 3-byte ASM_CLAC slot: a NOP or clac.
  uint8_t code[16];
  if (readLinear(vcpu, memory_, handler, code, sizeof code) != sizeof code) return false;
  uint64_t offset = 0;
  ZydisDecodedInstruction instruction;
  for (int i = 0; i < 2; ++i) {
    if (ZYAN_FAILED(ZydisDecoderDecodeInstruction(&decoder_, nullptr, code + offset, sizeof code - offset,
                                                  &instruction))) {
      return false;
    }
    if (instruction.mnemonic == ZYDIS_MNEMONIC_ENDBR64 && i == 0) {
      offset += instruction.length;
      continue;
    }
    break;
  }
  bool slot = instruction.length == kClac.size() &&
              (instruction.mnemonic == ZYDIS_MNEMONIC_NOP || instruction.mnemonic == ZYDIS_MNEMONIC_CLAC);
  if (!slot) return false;
  auto physical = vcpu.translate(handler + offset);
  if (!physical || !memory_.write(*physical, kClac.data(), kClac.size())) return false;
  idtBase_ = sregs.idt.base;
  trapAddress_ = handler + offset;
  trapPhysical_ = *physical;
  trapRip_.store(trapAddress_, std::memory_order_release);
  return true;
}

bool SyscallBridge::handleTrap(hv::Vcpu& vcpu, uint64_t rip) {
  if (rip == 0 || rip != trapRip_.load(std::memory_order_acquire)) return false;
  hv::Registers regs = vcpu.registers();
  ExceptionFrame frame{};
  bool haveFrame = readLinear(vcpu, memory_, regs.rsp, &frame, sizeof frame) == sizeof frame;
  uint64_t lstar = 0, fmask = 0;
  if (haveFrame && (frame.cs & 3) == 3) {
    const std::array<uint32_t, 2> indices = {kMsrLstar, kMsrFmask};
    for (const hv::Msr& msr : vcpu.msrs(indices)) {
      if (msr.index == kMsrLstar) lstar = msr.value;
      if (msr.index == kMsrFmask) fmask = msr.value;
    }
  }
  if (haveFrame && (frame.cs & 3) == 3 && lstar != 0 && frame.rip == lstar) {
    // The syscall PVM left half done: continue at LSTAR in kernel mode (which this vCPU is
    // already in, with the kernel's CS/SS) on the user's stack with SFMASK applied, as the
    // instruction defines. RCX and R11 already hold the return RIP and RFLAGS. The
    // exception frame below RSP is simply abandoned.
    regs.rip = lstar;
    regs.rsp = frame.rsp;
    regs.rflags = (frame.rflags & ~fmask) | 0x2;
    vcpu.setRegisters(regs);
    completed_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // An ordinary exception: the slot held a NOP (or a clac, whose only effect is AC=0).
  regs.rip += kClac.size();
  regs.rflags &= ~(1ull << 18);
  vcpu.setRegisters(regs);
  return true;
}

}  // namespace hyve::pvm
