// The vCPU run loop: one thread per vCPU runs the guest and handles its exits. Host
// workarounds are reached only through hv::VcpuQuirks.
#include "vmm/vcpu_runner.h"

#include "util/error.h"
#include "util/hex.h"
#include "util/seccomp.h"

#include <sys/socket.h>

#include <cstring>

namespace hyve {

namespace {

// A test hook (test/seccomp.test.ts): vCPU 0 makes a call its filter forbids, right
// after loading it, and the VM must end with an error naming the call.
bool selfTestForbiddenCall() {
  const char* setting = std::getenv("HYVE_SECCOMP_SELFTEST");
  return setting && std::strcmp(setting, "forbidden-call") == 0;
}

}  // namespace

std::string Machine::describeVcpu(hv::Vcpu& vcpu) const {
  try {
    hv::Registers regs = vcpu.registers();
    hv::SpecialRegisters sregs = vcpu.specialRegisters();
    return "vCPU " + std::to_string(vcpu.id()) + " rip " + hex(regs.rip) + " rsp " + hex(regs.rsp) + " cr0 " +
           hex(sregs.cr0) + " cr3 " + hex(sregs.cr3) + " cpl " + std::to_string(sregs.cs.dpl);
  } catch (const std::exception&) {
    return "vCPU " + std::to_string(vcpu.id());
  }
}

std::string Machine::describeTripleFault(hv::Vcpu& vcpu) const {
  // AMD's KVM reinitialises the vCPU on a shutdown intercept (the VMCB is undefined after
  // one), so it reports the reset vector, not where the guest faulted: say so instead of
  // printing registers that would send a reader to address 0xfff0.
  try {
    if (vcpu.registers().rip == 0xfff0 && vcpu.specialRegisters().cr3 == 0)
      return "vCPU " + std::to_string(vcpu.id()) +
             " (the hypervisor reset its registers at the fault, as AMD's KVM does: where it faulted is unknown; "
             "the console transcript shows how far the guest got)";
  } catch (const std::exception&) {
  }
  return describeVcpu(vcpu);
}

void Machine::runVcpu(VcpuRunner& runner) {
  hv::Vcpu& vcpu = *runner.vcpu;
  vcpu.bindToCurrentThread();
  int64_t expected = -1;
  firstRunNs_.compare_exchange_strong(
      expected,
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - created_).count());
  try {
    seccomp::confineThread("vcpu");
    if (vcpu.id() == 0 && selfTestForbiddenCall()) ::socket(AF_INET, SOCK_STREAM, 0);
    bool complete = true;  // the last run() left no exit for KVM to finish
    while (!stopping_.load(std::memory_order_acquire)) {
      if (pauseRequested_.load(std::memory_order_acquire)) {
        if (complete) {
          parkIfPausing(runner);
          continue;
        }
        // KVM finishes an exit (e.g. stores the data of a port read, or moves RIP past an
        // OUT) only on the next KVM_RUN. Saving state before that would lose or repeat the
        // access, so run once more with immediate exit: it completes and returns at once.
        vcpu.requestStop();
      }
      hv::VcpuExit exit = vcpu.run();
      complete = exit.kind == hv::VcpuExit::Kind::Interrupted;
      if (std::string_view key = runner.quirks->afterRun(vcpu); !key.empty()) runner.count(std::string(key));
      if (runner.profile) runner.profile->sampleIfRequested(vcpu, *memory_);
      using Kind = hv::VcpuExit::Kind;
      switch (exit.kind) {
        case Kind::PortIo:
          if (!handlePortIo(runner, exit)) return;
          break;
        case Kind::Mmio:
          if (!handleMmio(runner, exit)) return;
          break;
        case Kind::Interrupted:
          if (runner.haltCheckDue.exchange(false)) checkHalt(runner);
          break;  // the loop condition decides
        case Kind::Breakpoint:
          break;  // hyve sets no breakpoints yet
        case Kind::Halt:
          // Only seen without an in-kernel LAPIC wake-up source: a halted CPU with
          // interrupts off never wakes, which xhyve reports as a halt (poweroff).
          runner.count("hlt");
          if (!(vcpu.registers().rflags & (1u << 9))) {
            finish(ExitOutcome::Poweroff, "");
            return;
          }
          break;
        case Kind::Shutdown:
          runner.count("shutdown");
          finish(ExitOutcome::TripleFault, "triple fault: " + describeTripleFault(vcpu));
          return;
        case Kind::SystemReset:
          finish(ExitOutcome::Reboot, "");
          return;
        case Kind::SystemShutdown:
          finish(ExitOutcome::Poweroff, "");
          return;
        case Kind::EmulationFailure: {
          hv::QuirkResult quirk = runner.quirks->onEmulationFailure(vcpu, exit);
          if (quirk.kind == hv::QuirkResult::Kind::Handled) {
            runner.count(quirk.counter);
            break;
          }
          if (quirk.kind == hv::QuirkResult::Kind::Failed) {
            finish(ExitOutcome::Error, quirk.error + " (" + describeVcpu(vcpu) + ")");
            return;
          }
          finish(ExitOutcome::Error, "the hypervisor could not emulate the instruction " +
                                         (exit.instruction.empty() ? std::string("(bytes unknown)")
                                                                   : "[" + hexBytes(exit.instruction.data(), exit.instruction.size()) + "]") +
                                         " at " + describeVcpu(vcpu));
          return;
        }
        case Kind::InternalError:
        case Kind::Unknown: {
          std::string details;
          for (uint64_t d : exit.details) {
            details += ' ';  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on " " + str
            details += hex(d);
          }
          finish(ExitOutcome::Error, "hypervisor exit " + std::to_string(exit.rawReason) + " suberror " +
                                         std::to_string(exit.suberror) + (details.empty() ? "" : " data" + details) +
                                         " at " + describeVcpu(vcpu));
          return;
        }
      }
    }
  } catch (const std::exception& e) {
    finish(ExitOutcome::Error, std::string("vCPU ") + std::to_string(vcpu.id()) + ": " + e.what());
  }
}

// With the in-kernel LAPIC, a vCPU that executes `cli; hlt` sleeps inside KVM_RUN for
// good: no exit reaches the run loop. Now and then this thread interrupts every vCPU, and
// each checks itself (checkHalt). Once every vCPU has been found, twice in a row at the
// same instruction, halted with interrupts disabled or not started (an AP), nothing can
// wake any of them (only another vCPU could), and the VM ends as bhyve ends it: a halt,
// reported as outcome poweroff.
void Machine::watchForHalt() {
  constexpr auto kInterval = std::chrono::milliseconds(500);
  std::unique_lock lock(exitMutex_);
  while (!exited_.wait_for(lock, kInterval, [this] { return exit_.has_value(); })) {
    lock.unlock();
    // A confined thread's forbidden call failed with EPERM, or the snapshot's memory file
    // shrank under the VM: the machine ends here (finish() says which).
    if (!seccomp::violation().empty() || !memory_->fileChanged().empty()) {
      finish(ExitOutcome::Error, "");
      return;
    }
    if (!pauseRequested_.load(std::memory_order_acquire)) {
      for (auto& runner : vcpus_) {
        runner->haltCheckDue.store(true);
        runner->vcpu->requestStop();
      }
    }
    lock.lock();
  }
}

void Machine::checkHalt(VcpuRunner& runner) {
  hv::Vcpu& vcpu = *runner.vcpu;
  bool halted = vcpu.waitsOnOtherVcpus();
  uint64_t rip = halted ? vcpu.registers().rip : 0;
  uint32_t checks = halted ? (rip == runner.haltedRip ? runner.haltedChecks.load() + 1 : 1) : 0;
  runner.haltedRip = rip;
  runner.haltedChecks.store(checks);
  for (const auto& other : vcpus_) {
    if (other->haltedChecks.load() < 2) return;
  }
  runner.count("halt");
  finish(ExitOutcome::Poweroff, "halted: every vCPU is in HLT with interrupts disabled or was never started (" + describeVcpu(vcpu) + ")");
}

bool Machine::handlePortIo(VcpuRunner& runner, const hv::VcpuExit& exit) {
  const BusDevice* device = nullptr;
  for (uint32_t i = 0; i < exit.count; ++i) {
    auto data = exit.data.subspan(static_cast<size_t>(i) * exit.size, exit.size);
    device = exit.write ? pio_.write(exit.address, data) : pio_.read(exit.address, data);
    if (!device) {
      if (config_.exitOnUnhandledIo) {
        finish(ExitOutcome::Error, std::string("unhandled port I/O ") + (exit.write ? "write to " : "read from ") +
                                       hex(exit.address) + " (-e is set)");
        return false;
      }
      if (!exit.write) std::memset(data.data(), 0xff, data.size());  // floating bus
    }
  }
  runner.countAccess(runner.portIo, pio_, device);
  return true;
}

bool Machine::handleMmio(VcpuRunner& runner, const hv::VcpuExit& exit) {
  const BusDevice* device = exit.write ? mmio_.write(exit.address, exit.data) : mmio_.read(exit.address, exit.data);
  if (!device) {
    if (config_.exitOnUnhandledIo) {
      finish(ExitOutcome::Error, std::string("unhandled MMIO ") + (exit.write ? "write to " : "read from ") +
                                     hex(exit.address) + " (-e is set)");
      return false;
    }
    if (!exit.write) std::memset(exit.data.data(), 0xff, exit.data.size());
  }
  runner.countAccess(runner.mmio, mmio_, device);
  return true;
}

}  // namespace hyve
