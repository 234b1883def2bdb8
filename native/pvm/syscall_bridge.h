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
//
// The invariant: the bridge holds no per-task state. Everything a syscall needs is in
// the vCPU at the moment of the trap, and it is the current task's:
// - RCX/R11 (return RIP and RFLAGS) were set by PVM at the `syscall` and are still live:
//   between the `syscall` and the #PF nothing ran but PVM's delivery of the #PF itself.
//   If an interrupt lands first (the task sits in user mode at RIP=LSTAR), the guest
//   kernel saves RCX/R11 in that task's own pt_regs, may switch tasks, and later
//   returns to it with IRET to LSTAR; the #PF then comes with the same values restored.
//   A signal taken there saves and restores them through the signal frame the same way.
// - The user RSP, RFLAGS and CS come from the hardware frame PVM pushed on the entry
//   stack (TSS.RSP0: measured at RSP0 - 0x30 for every user-mode #PF); the frame is
//   abandoned and entry_SYSCALL_64 builds pt_regs on the task's own stack, as after a
//   real `syscall`. GS base is still the user's (the kernel's SWAPGS at LSTAR swaps it)
//   and FS base is never touched.
// So a task switch inside the syscall (a blocking read, a pipe writer put to sleep)
// changes nothing the bridge relies on: the next trap is read afresh from the vCPU.
// The guest user-space torture test (test/guest-userspace.test.ts) checks the
// consequences: every preserved and xmm register, FS base and TLS around blocking
// syscalls with task switches, signals and threads.
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
