// Completes user-mode `syscall` on PVM hosts.
//
// Measured here: when guest user code executes `syscall`, this PVM build sets RIP to
// LSTAR and RCX/R11 as the instruction should, but leaves the vCPU in user mode (CS
// 0x33) without applying SFMASK. The fetch at LSTAR then faults, and the guest kernel
// receives a user-mode #PF whose RIP is LSTAR; exceptions themselves do reach guest
// kernel mode correctly. Nothing of this exits to the VMM, so hyve makes the guest's
// #PF entry exit: the 3-byte NOP (or clac) the kernel places at the start of every
// exception entry (ASM_CLAC) is replaced by `clac`, which PVM's emulator cannot run.
// On that exit, a frame that is "user mode at LSTAR" is turned into the syscall the
// guest asked for; any other page fault continues as if the NOP had run.
#pragma once

#include "core/guest_memory.h"
#include "hv/hypervisor.h"

#include <Zydis/Zydis.h>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace hyve::pvm {

class SyscallBridge {
 public:
  explicit SyscallBridge(const GuestMemory& memory);

  // Finds the guest's #PF entry through its IDT and plants the trap, once the kernel
  // has an IDT; re-plants it if the kernel rewrote the bytes (alternatives patching).
  // Cheap to call often: it only reads guest memory once the entry is known.
  void watch(hv::Vcpu& vcpu);

  // For an emulation failure at `rip`: true if it was the planted trap and has been
  // handled (either completed as a syscall or stepped over as the original NOP).
  bool handleTrap(hv::Vcpu& vcpu, uint64_t rip);

  uint64_t completedSyscalls() const { return completed_.load(std::memory_order_relaxed); }

 private:
  bool plantLocked(hv::Vcpu& vcpu);

  const GuestMemory& memory_;
  std::mutex mutex_;
  ZydisDecoder decoder_{};
  uint64_t idtBase_ = 0;
  uint64_t trapAddress_ = 0;  // guest-virtual address of the planted clac; 0 while unplanted
  uint64_t trapPhysical_ = 0;
  std::atomic<uint64_t> trapRip_{0};
  std::atomic<uint64_t> completed_{0};
};

}  // namespace hyve::pvm
