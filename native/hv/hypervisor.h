// The boundary between hyve and the host's hypervisor API. Everything above this
// header (devices, loader, machine) is backend-neutral; KVM lives in hv/kvm/, and a
// macOS Hypervisor.framework backend would be a sibling implementing the same classes.
#pragma once

#include "core/interrupts.h"
#include "snapshot/state_io.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hyve::hv {

struct Registers {
  uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rip, rflags;
};

struct Segment {
  uint64_t base;
  uint32_t limit;
  uint16_t selector;
  uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

// A present, flat (base 0, 4 GiB, page-granular) code or data segment, as the boot
// protocol and SYSRET define them. `longMode` makes a 64-bit code segment (L=1, D=0).
constexpr Segment flatSegment(uint16_t selector, uint8_t type, uint8_t dpl, bool longMode) {
  Segment s{};
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = dpl;
  s.db = longMode ? 0 : 1;
  s.s = 1;
  s.l = longMode ? 1 : 0;
  s.g = 1;
  return s;
}

struct DescriptorTable {
  uint64_t base;
  uint16_t limit;
};

struct SpecialRegisters {
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  uint64_t cr0, cr2, cr3, cr4, cr8, efer, apicBase;
};

struct CpuidEntry {
  uint32_t function, index, flags;
  uint32_t eax, ebx, ecx, edx;
};

struct Msr {
  uint32_t index;
  uint64_t value;
};

// Why a vCPU stopped running guest code.
struct VcpuExit {
  enum class Kind {
    PortIo,             // io: port, size, write, data
    Mmio,               // mmio: address, write, data
    Halt,               // HLT with the in-kernel LAPIC absent (rare with an irqchip)
    Shutdown,           // triple fault
    SystemReset,        // the hypervisor reports a guest reset request
    SystemShutdown,     // the hypervisor reports a guest poweroff request
    EmulationFailure,   // the host's instruction emulator gave up: instruction bytes below
    Interrupted,        // a signal or requestStop() interrupted the run
    Breakpoint,         // a hardware breakpoint set with setBreakpoints(): address = RIP
    InternalError,      // other hypervisor-internal failure
    Unknown,
  };
  Kind kind = Kind::Unknown;
  uint32_t rawReason = 0;     // backend-specific, for diagnostics
  // PortIo / Mmio
  uint64_t address = 0;
  bool write = false;
  uint32_t size = 0;          // bytes per access
  uint32_t count = 1;         // repetitions (string I/O)
  std::span<uint8_t> data;    // size*count bytes, owned by the vCPU; fill it for reads
  // EmulationFailure / InternalError
  uint32_t suberror = 0;
  std::vector<uint8_t> instruction;  // bytes at RIP, when the backend reports them
  std::vector<uint64_t> details;     // raw backend words
};

// Pending-exception injection (e.g. #UD, #BP) for the instruction-fixup layer.
struct ExceptionInjection {
  uint8_t vector;
  std::optional<uint32_t> errorCode;
};

class Vcpu {
 public:
  virtual ~Vcpu() = default;
  virtual uint32_t id() const = 0;

  // Runs the vCPU until the next exit that needs user space. Call from the vCPU's own thread.
  virtual VcpuExit run() = 0;
  // Makes the current or next run() on this vCPU return Interrupted. Safe from any thread.
  virtual void requestStop() = 0;
  // Must be called on the vCPU's thread before run(): lets requestStop() signal it.
  virtual void bindToCurrentThread() = 0;
  // Makes a run() in progress return Interrupted (the profiler's sampling tick), without
  // requesting a stop: a vCPU that is not inside run() just carries on. Safe from any
  // thread once bindToCurrentThread() has run, until the vCPU's thread is joined.
  virtual void kick() = 0;

  virtual Registers registers() const = 0;
  virtual void setRegisters(const Registers& regs) = 0;
  virtual SpecialRegisters specialRegisters() const = 0;
  virtual void setSpecialRegisters(const SpecialRegisters& sregs) = 0;
  virtual void setCpuid(std::span<const CpuidEntry> entries) = 0;
  virtual std::vector<Msr> msrs(std::span<const uint32_t> indices) const = 0;
  virtual void setMsrs(std::span<const Msr> msrs) = 0;
  // XCR0, the state components XSAVE manages and AVX-class instructions may use, as the
  // guest would set it with XSETBV. Must be allowed by the CPUID given to setCpuid().
  virtual void setXcr0(uint64_t value) = 0;
  virtual void injectException(const ExceptionInjection& exception) = 0;
  // Guest-virtual to guest-physical translation with the vCPU's current page tables.
  virtual std::optional<uint64_t> translate(uint64_t guestVirtual) const = 0;
  // What PC firmware leaves behind before an OS loader runs: LINT0 = ExtINT,
  // LINT1 = NMI, x87/SSE control words at their defaults.
  virtual void applyFirmwareDefaults() = 0;
  // True if only another vCPU (an NMI, INIT or SIPI) can make this one run again: it sits
  // in HLT with interrupts disabled (RFLAGS.IF clear) and no NMI or SMI pending, or it
  // is an AP not started yet (waiting for INIT or SIPI). Call on the vCPU's thread, outside run() (a run() that returned
  // Interrupted leaves it in that state).
  virtual bool waitsOnOtherVcpus() const = 0;
  // Instruction breakpoints (at most 4, guest-virtual) that stop run() with Kind::Breakpoint.
  // An empty list removes them.
  virtual void setBreakpoints(std::span<const uint64_t> addresses) = 0;

  // Snapshots. The vCPU's complete state (registers, special registers, FPU/XSAVE, MSRs,
  // local APIC, pending events, MP state, debug registers) in a backend-specific layout.
  // Call only while no thread is inside run() on this vCPU, after any exit has been
  // completed (a run() that returned Interrupted leaves it complete).
  virtual void saveState(snapshot::StateWriter& out) const = 0;
  // Loads saveState()'s output into a fresh vCPU whose CPUID is already set. `elapsed` is
  // the host time since the save: the guest's timestamp counter is moved on by that much,
  // so guest clocks read the current time. Throws Error(BadSnapshot) on malformed input.
  virtual void restoreState(snapshot::StateReader& in, std::chrono::nanoseconds elapsed) = 0;
};

struct MemorySlot {
  uint32_t slot;
  uint64_t guestAddress;
  uint64_t size;
  void* host;
};

// Doorbells the hypervisor answers itself: a guest write to a registered MMIO address
// signals an eventfd inside the kernel (KVM ioeventfd) instead of exiting to a vCPU
// thread, so a device worker thread wakes without the vCPU waiting on it.
class IoEvents {
 public:
  virtual ~IoEvents() = default;
  // Guest writes of `length` bytes (any value) to MMIO `address` signal `eventFd`.
  // Returns false when the backend cannot; such writes then arrive as ordinary MMIO exits.
  virtual bool addIoEvent(uint64_t address, uint32_t length, int eventFd) = 0;
  virtual void removeIoEvent(uint64_t address, uint32_t length, int eventFd) = 0;
};

class Vm : public InterruptController, public IoEvents {
 public:
  ~Vm() override = default;
  virtual void mapMemory(const MemorySlot& slot) = 0;
  // Creates the in-kernel (or backend) local APICs, IOAPIC, PIC and PIT.
  virtual void createPlatform() = 0;
  virtual std::unique_ptr<Vcpu> createVcpu(uint32_t id) = 0;
  // CPUID leaves the backend can virtualise, before hyve's policy edits them.
  virtual std::vector<CpuidEntry> supportedCpuid() const = 0;
  // MSR indices the backend saves/restores (for snapshots and boot-time setup).
  virtual std::vector<uint32_t> msrIndexList() const = 0;

  // Snapshots of the platform created by createPlatform(): interrupt controllers, the
  // PIT, and the guest's paravirtual clock. Same contract as Vcpu::saveState(); call
  // restorePlatformState() after every vCPU has been restored.
  virtual void savePlatformState(snapshot::StateWriter& out) const = 0;
  virtual void restorePlatformState(snapshot::StateReader& in, std::chrono::nanoseconds elapsed) = 0;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  // Opens the host's hypervisor. Throws Error(NoKvm / KvmAccess) with a fix-it message.
  static std::unique_ptr<Hypervisor> open();
  virtual std::unique_ptr<Vm> createVm() = 0;
  virtual std::string name() const = 0;          // "kvm", "kvm-pvm", ...
  // True when guest kernel mode runs under the host's instruction emulator (PVM).
  virtual bool emulatesGuestKernel() const = 0;
  virtual uint32_t maxVcpus() const = 0;
};

}  // namespace hyve::hv
