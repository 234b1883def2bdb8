#include "vmm/machine.h"

#include "boot/linux_loader.h"
#include "devices/acpi_pm/acpi_pm.h"
#include "devices/acpi_pm/reset_control.h"
#include "devices/hpet/hpet.h"
#include "devices/i8042/i8042.h"
#include "devices/pci/host_bridge.h"
#include "devices/pci/lpc_bridge.h"
#include "devices/pci/pci_bus.h"
#include "devices/rtc/cmos_rtc.h"
#include "devices/uart/uart_16550.h"
#include "firmware/acpi/acpi.h"
#include "firmware/mptable.h"
#include "pvm/cpuid_policy.h"
#include "pvm/instruction_fixup.h"
#include "pvm/syscall_bridge.h"
#include "util/error.h"
#include "vmm/cpuid.h"
#include "vmm/layout.h"

#include <sys/sysinfo.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace hyve {

// Per-vCPU state owned by its thread; counters are read by stats() under `mutex`.
struct Machine::VcpuRunner {
  std::unique_ptr<hv::Vcpu> vcpu;
  std::unique_ptr<pvm::InstructionFixup> fixup;  // only on hosts that emulate the guest kernel
  std::thread thread;
  mutable std::mutex mutex;
  std::map<std::string, uint64_t> exits;
  void count(const std::string& key) {
    std::lock_guard lock(mutex);
    ++exits[key];
  }
};

namespace {

std::string hex(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

std::string hexBytes(const std::vector<uint8_t>& bytes) {
  std::string out;
  for (uint8_t b : bytes) {
    char buffer[4];
    std::snprintf(buffer, sizeof buffer, "%s%02x", out.empty() ? "" : " ", b);
    out += buffer;
  }
  return out;
}

void validate(const MachineConfig& config, uint32_t maxVcpus) {
  // Guest memory is reserved lazily, so an absurd size would only fail later, inside the
  // guest; refuse what the host could never back.
  struct sysinfo info {};
  if (::sysinfo(&info) == 0) {
    uint64_t hostBytes = static_cast<uint64_t>(info.totalram) * info.mem_unit;
    if (config.memoryBytes > hostBytes) {
      throw Error(ErrorCode::Memory, "guest memory of " + std::to_string(config.memoryBytes >> 20) +
                                         " MiB is more than this host's " + std::to_string(hostBytes >> 20) +
                                         " MiB of RAM");
    }
  }
  if (config.cpus == 0 || config.cpus > std::min<uint32_t>(maxVcpus, 64)) {
    throw Error(ErrorCode::BadConfig, "cpus must be between 1 and " + std::to_string(std::min<uint32_t>(maxVcpus, 64)) +
                                          ", got " + std::to_string(config.cpus));
  }
}

}  // namespace

Machine::Machine(MachineConfig config) : config_(std::move(config)), created_(std::chrono::steady_clock::now()) {
  hypervisor_ = hv::Hypervisor::open();
  validate(config_, hypervisor_->maxVcpus());
  bootStats_.hypervisor = hypervisor_->name();
  bootStats_.pvm = hypervisor_->emulatesGuestKernel();

  memory_ = std::make_unique<GuestMemory>(config_.memoryBytes);
  vm_ = hypervisor_->createVm();
  uint32_t slot = 0;
  for (const auto& region : memory_->regions()) {
    vm_->mapMemory({slot++, region.guestAddress, region.size, region.host});
  }
  vm_->createPlatform();
  buildDevices();
  loadGuest();
  createVcpus();
  bootStats_.setupMs = msSinceCreation();
}

Machine::~Machine() {
  stop();
  wait();
}

void Machine::buildDevices() {
  auto consoleSink = [this](ConsolePort port) {
    return [this, port](std::span<const uint8_t> bytes) {
      int64_t expected = -1;
      firstConsoleNs_.compare_exchange_strong(
          expected, std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - created_)
                        .count());
      if (config_.onConsoleOutput) config_.onConsoleOutput(port, bytes);
    };
  };
  com1_ = std::make_unique<Uart16550>(IrqLine(vm_.get(), layout::kCom1Irq), consoleSink(ConsolePort::Com1),
                                      [this] { feedConsole(ConsolePort::Com1); });
  com2_ = std::make_unique<Uart16550>(IrqLine(vm_.get(), layout::kCom2Irq), consoleSink(ConsolePort::Com2),
                                      [this] { feedConsole(ConsolePort::Com2); });
  pio_.add(layout::kCom1Port, Uart16550::kPortCount, com1_.get(), "com1");
  pio_.add(layout::kCom2Port, Uart16550::kPortCount, com2_.get(), "com2");

  uint64_t below4g = memory_->lowRamEnd();
  uint64_t above4g = memory_->totalBytes() - below4g;
  rtc_ = std::make_unique<CmosRtc>(IrqLine(vm_.get(), layout::kRtcIrq), config_.rtcUtc, below4g, above4g);
  pio_.add(layout::kRtcPort, CmosRtc::kPortCount, rtc_.get(), "rtc");

  i8042_ = std::make_unique<I8042>(*this);
  pio_.add(layout::kI8042DataPort, 1, &i8042_->dataPort(), "i8042");
  pio_.add(layout::kI8042CommandPort, 1, &i8042_->commandPort(), "i8042");

  acpiPm_ = std::make_unique<AcpiPm>(*this);
  pio_.add(layout::kAcpiPmBase, AcpiPm::kLength, acpiPm_.get(), "acpi-pm");
  resetControl_ = std::make_unique<ResetControl>(*this);
  pio_.add(layout::kResetControlPort, ResetControl::kLength, resetControl_.get(), "reset");

  pci_ = std::make_unique<PciBus>(pio_, mmio_, *vm_);
  pci_->addDevice(0, 0, std::make_unique<HostBridge>());
  pci_->addDevice(0x1f, 0, std::make_unique<LpcBridge>());

  hpet_ = std::make_unique<Hpet>(*vm_);
  mmio_.add(layout::kHpetBase, layout::kHpetSize, hpet_.get(), "hpet");
}

void Machine::loadGuest() {
  uint64_t rsdp = 0;
  if (config_.acpi) {
    firmware::AcpiConfig acpi;
    acpi.cpuCount = config_.cpus;
    acpi.hpetBlockId = hpet_->blockId();
    acpi.pciRouting = [this](uint32_t slot, uint32_t pin) { return pci_->intxGsi(slot, pin); };
    rsdp = firmware::writeAcpiTables(*memory_, acpi);
  }
  if (config_.mpTable) {
    firmware::MpTableConfig mp;
    mp.cpuCount = config_.cpus;
    mp.pciRouting = [this](uint32_t slot, uint32_t pin) { return pci_->intxGsi(slot, pin); };
    firmware::writeMpTable(*memory_, mp);
  }

  BootConfig boot;
  boot.kernelPath = config_.kernelPath;
  boot.initrdPath = config_.initrdPath;
  boot.cmdline = config_.cmdline;
  boot.acpiRsdpAddress = rsdp;
  boot.protocol = config_.pvhEntry ? BootProtocol::Pvh : BootProtocol::Auto;
  if (hypervisor_->emulatesGuestKernel()) {
    bootStats_.addedKernelArguments = pvm::pvmKernelArguments(config_.cmdline);
    boot.cmdline = pvm::withKernelArguments(boot.cmdline, bootStats_.addedKernelArguments);
    if (config_.onLog && !bootStats_.addedKernelArguments.empty()) {
      std::string joined;
      for (const auto& a : bootStats_.addedKernelArguments) joined += (joined.empty() ? "" : " ") + a;
      config_.onLog("PVM host: guest kernel runs under KVM's instruction emulator; added kernel arguments: " + joined);
    }
  }
  loaded_ = std::make_unique<LoadedLinux>(loadLinux(*memory_, boot));
  bootStats_.kernelFormat = loaded_->report.kernelFormat;
  bootStats_.kernelCompression = loaded_->report.compression;
  bootStats_.bootPath = loaded_->report.path;
  bootStats_.decompressMs = loaded_->report.decompressMs;
}

void Machine::createVcpus() {
  CpuidOptions cpuidOptions;
  cpuidOptions.cpuCount = config_.cpus;
  cpuidOptions.x2apic = config_.x2apic;
  std::vector<hv::CpuidEntry> supported = vm_->supportedCpuid();
  bool pvm = hypervisor_->emulatesGuestKernel();
  if (pvm) {
    pvm::applyPvmCpuidPolicy(supported);
    syscallBridge_ = std::make_unique<pvm::SyscallBridge>(*memory_);
  }

  for (uint32_t id = 0; id < config_.cpus; ++id) {
    auto runner = std::make_unique<VcpuRunner>();
    runner->vcpu = vm_->createVcpu(id);
    runner->vcpu->setCpuid(cpuidForVcpu(supported, id, cpuidOptions));
    runner->vcpu->applyFirmwareDefaults();
    if (pvm) runner->fixup = std::make_unique<pvm::InstructionFixup>(*memory_);
    if (id == 0) {
      hv::SpecialRegisters sregs = runner->vcpu->specialRegisters();
      loaded_->cpu.applyTo(sregs);
      runner->vcpu->setSpecialRegisters(sregs);
      runner->vcpu->setRegisters(loaded_->cpu.regs);
    }
    vcpus_.push_back(std::move(runner));
  }
}

void Machine::start(std::function<void(const MachineExit&)> onExit) {
  {
    std::lock_guard lock(exitMutex_);
    onExit_ = std::move(onExit);
  }
  for (auto& runner : vcpus_) {
    runner->thread = std::thread([this, r = runner.get()] { runVcpu(*r); });
  }
}

double Machine::msSinceCreation() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - created_).count();
}

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

void Machine::runVcpu(VcpuRunner& runner) {
  hv::Vcpu& vcpu = *runner.vcpu;
  vcpu.bindToCurrentThread();
  int64_t expected = -1;
  firstRunNs_.compare_exchange_strong(
      expected,
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - created_).count());
  try {
    uint32_t exitsUntilWatch = 0;
    while (!stopping_.load(std::memory_order_acquire)) {
      hv::VcpuExit exit = vcpu.run();
      // The bridge's trap must be in place before the guest's first user-mode syscall and
      // survive the kernel's own text patching; a periodic look is cheap.
      if (syscallBridge_ && exitsUntilWatch-- == 0) {
        syscallBridge_->watch(vcpu);
        exitsUntilWatch = 64;
      }
      using Kind = hv::VcpuExit::Kind;
      switch (exit.kind) {
        case Kind::PortIo:
          if (!handlePortIo(runner, exit)) return;
          break;
        case Kind::Mmio:
          if (!handleMmio(runner, exit)) return;
          break;
        case Kind::Interrupted:
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
          finish(ExitOutcome::TripleFault, "triple fault: " + describeVcpu(vcpu));
          return;
        case Kind::SystemReset:
          finish(ExitOutcome::Reboot, "");
          return;
        case Kind::SystemShutdown:
          finish(ExitOutcome::Poweroff, "");
          return;
        case Kind::EmulationFailure: {
          if (syscallBridge_) {
            syscallBridge_->watch(vcpu);
            if (syscallBridge_->handleTrap(vcpu, vcpu.registers().rip)) {
              runner.count("pvm:exception-entry");
              break;
            }
          }
          if (runner.fixup) {
            pvm::FixupResult result = runner.fixup->handle(vcpu, exit);
            if (result.handled) {
              runner.count("fixup:" + result.mnemonic);
              break;
            }
            finish(ExitOutcome::Error, "PVM instruction fixup: " + result.error + " (" + describeVcpu(vcpu) + ")");
            return;
          }
          finish(ExitOutcome::Error, "the hypervisor could not emulate the instruction " +
                                         (exit.instruction.empty() ? std::string("(bytes unknown)")
                                                                   : "[" + hexBytes(exit.instruction) + "]") +
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

bool Machine::handlePortIo(VcpuRunner& runner, const hv::VcpuExit& exit) {
  for (uint32_t i = 0; i < exit.count; ++i) {
    auto data = exit.data.subspan(static_cast<size_t>(i) * exit.size, exit.size);
    bool claimed = exit.write ? pio_.write(exit.address, data) : pio_.read(exit.address, data);
    if (!claimed) {
      if (config_.exitOnUnhandledIo) {
        finish(ExitOutcome::Error, std::string("unhandled port I/O ") + (exit.write ? "write to " : "read from ") +
                                       hex(exit.address) + " (-e is set)");
        return false;
      }
      if (!exit.write) std::memset(data.data(), 0xff, data.size());  // floating bus
    }
  }
  std::string name = pio_.nameAt(exit.address);
  runner.count("io:" + (name.empty() ? hex(exit.address) : name));
  return true;
}

bool Machine::handleMmio(VcpuRunner& runner, const hv::VcpuExit& exit) {
  bool claimed = exit.write ? mmio_.write(exit.address, exit.data) : mmio_.read(exit.address, exit.data);
  if (!claimed) {
    if (config_.exitOnUnhandledIo) {
      finish(ExitOutcome::Error, std::string("unhandled MMIO ") + (exit.write ? "write to " : "read from ") +
                                     hex(exit.address) + " (-e is set)");
      return false;
    }
    if (!exit.write) std::memset(exit.data.data(), 0xff, exit.data.size());
  }
  std::string name = mmio_.nameAt(exit.address);
  runner.count("mmio:" + (name.empty() ? "unclaimed" : name));
  return true;
}

void Machine::requestExit(ExitOutcome outcome) { finish(outcome, ""); }

void Machine::stop() { finish(ExitOutcome::Error, "stopped by host"); }

void Machine::finish(ExitOutcome outcome, std::string message) {
  std::function<void(const MachineExit&)> callback;
  MachineExit result{outcome, std::move(message)};
  {
    std::lock_guard lock(exitMutex_);
    if (exit_) return;  // the first reason wins
    exit_ = result;
    callback = onExit_;
  }
  stopping_.store(true, std::memory_order_release);
  for (auto& runner : vcpus_) runner->vcpu->requestStop();
  exited_.notify_all();
  if (callback) callback(result);
}

MachineExit Machine::wait() {
  std::unique_lock lock(exitMutex_);
  exited_.wait(lock, [this] { return exit_.has_value(); });
  MachineExit result = *exit_;
  if (!joined_) {
    joined_ = true;
    lock.unlock();
    for (auto& runner : vcpus_) {
      if (runner->thread.joinable() && runner->thread.get_id() != std::this_thread::get_id()) runner->thread.join();
    }
  }
  return result;
}

void Machine::writeConsole(ConsolePort port, std::span<const uint8_t> data) {
  {
    std::lock_guard lock(consoleMutex_);
    auto& queue = pendingInput_[static_cast<uint32_t>(port)];
    queue.insert(queue.end(), data.begin(), data.end());
  }
  feedConsole(port);
}

void Machine::feedConsole(ConsolePort port) {
  Uart16550& uart = port == ConsolePort::Com1 ? *com1_ : *com2_;
  std::lock_guard lock(consoleMutex_);
  auto& queue = pendingInput_[static_cast<uint32_t>(port)];
  while (!queue.empty()) {
    uint8_t chunk[64];
    size_t n = std::min(queue.size(), sizeof chunk);
    std::copy_n(queue.begin(), n, chunk);
    size_t taken = uart.pushInput({chunk, n});
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(taken));
    if (taken < n) break;  // FIFO full: the UART calls back when the guest drains it
  }
}

MachineStats Machine::stats() const {
  MachineStats stats = bootStats_;
  auto toMs = [](int64_t ns) { return ns < 0 ? -1.0 : static_cast<double>(ns) / 1e6; };
  stats.firstRunMs = toMs(firstRunNs_.load());
  stats.firstConsoleByteMs = toMs(firstConsoleNs_.load());
  for (const auto& runner : vcpus_) {
    std::lock_guard lock(runner->mutex);
    for (const auto& [key, count] : runner->exits) stats.exits[key] += count;
  }
  return stats;
}

}  // namespace hyve
