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
#include "snapshot/snapshot_file.h"
#include "snapshot/snapshottable.h"
#include "util/error.h"
#include "util/hex.h"
#include "vmm/cpuid.h"
#include "core/layout.h"

#include <sys/sysinfo.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <filesystem>

namespace hyve {

// Per-vCPU state owned by its thread; counters are read by stats() under `mutex`.
struct Machine::VcpuRunner {
  std::unique_ptr<hv::Vcpu> vcpu;
  std::unique_ptr<pvm::InstructionFixup> fixup;  // only on hosts that emulate the guest kernel
  std::thread thread;
  mutable std::mutex mutex;
  std::map<std::string, uint64_t> exits;  // rare exits, by reason
  // The frequent ones, by address: integer keys keep the exit path free of string work;
  // stats() turns addresses into device names.
  std::unordered_map<uint64_t, uint64_t> portIo, mmio;
  void count(const std::string& key) {
    std::lock_guard lock(mutex);
    ++exits[key];
  }
  void countAccess(std::unordered_map<uint64_t, uint64_t>& counts, uint64_t address) {
    std::lock_guard lock(mutex);
    ++counts[address];
  }
};

namespace {

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
  if (!config_.snapshotPath.empty()) {
    restoreFromSnapshot();
    bootStats_.setupMs = msSinceCreation();
    return;
  }

  memory_ = std::make_unique<GuestMemory>(config_.memoryBytes);
  buildPlatform();
  loadGuest();
  createVcpus();
  bootStats_.setupMs = msSinceCreation();
}

Machine::~Machine() {
  stop();
  wait();
}

// The VM around memory_ and its devices: the part a cold boot and a restore share.
void Machine::buildPlatform() {
  vm_ = hypervisor_->createVm();
  uint32_t slot = 0;
  for (const auto& region : memory_->regions()) {
    vm_->mapMemory({slot++, region.guestAddress, region.size, region.host});
  }
  vm_->createPlatform();
  buildDevices();
  registerSnapshotSections();
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
    if (id == 0 && loaded_) {  // a restored machine gets its registers from the snapshot
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
  {
    std::lock_guard lock(pauseMutex_);
    started_ = true;
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
  runner.countAccess(runner.portIo, exit.address);
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
  runner.countAccess(runner.mmio, exit.address);
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
  {
    std::lock_guard pauseLock(pauseMutex_);  // parked vCPU threads and a pause() in progress
  }
  pauseChanged_.notify_all();
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
    for (const auto& [port, count] : runner->portIo) {
      std::string name = pio_.nameAt(port);
      stats.exits["io:" + (name.empty() ? hex(port) : name)] += count;
    }
    for (const auto& [address, count] : runner->mmio) {
      std::string name = mmio_.nameAt(address);
      stats.exits["mmio:" + (name.empty() ? "unclaimed" : name)] += count;
    }
  }
  return stats;
}

// ---- pause and snapshots ----

namespace {

// A section made of two functions, for state that lives in the machine itself.
class FunctionSection final : public snapshot::Snapshottable {
 public:
  FunctionSection(std::string name, std::function<void(snapshot::StateWriter&)> save,
                  std::function<void(snapshot::StateReader&)> restore)
      : name_(std::move(name)), save_(std::move(save)), restore_(std::move(restore)) {}
  std::string snapshotName() const override { return name_; }
  void save(snapshot::StateWriter& out) const override { save_(out); }
  void restore(snapshot::StateReader& in) override { restore_(in); }

 private:
  std::string name_;
  std::function<void(snapshot::StateWriter&)> save_;
  std::function<void(snapshot::StateReader&)> restore_;
};

int64_t realtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr uint32_t kFlagAcpi = 1u << 0, kFlagMpTable = 1u << 1, kFlagRtcUtc = 1u << 2, kFlagX2apic = 1u << 3,
                   kFlagExitOnUnhandledIo = 1u << 4, kFlagPvhEntry = 1u << 5;

}  // namespace

void Machine::registerSnapshotSections() {
  using snapshot::DeviceState;
  sections_.push_back(std::make_unique<DeviceState<Uart16550>>("device:com1", *com1_));
  sections_.push_back(std::make_unique<DeviceState<Uart16550>>("device:com2", *com2_));
  sections_.push_back(std::make_unique<DeviceState<CmosRtc>>("device:rtc", *rtc_));
  sections_.push_back(std::make_unique<DeviceState<I8042>>("device:i8042", *i8042_));
  sections_.push_back(std::make_unique<DeviceState<AcpiPm>>("device:acpi-pm", *acpiPm_));
  sections_.push_back(std::make_unique<DeviceState<ResetControl>>("device:reset-control", *resetControl_));
  sections_.push_back(std::make_unique<DeviceState<PciBus>>("device:pci-bus", *pci_));
  for (unsigned slot = 0; slot < pci::kSlots; ++slot) {
    for (unsigned function = 0; function < pci::kFunctions; ++function) {
      if (PciDevice* device = pci_->device(slot, function)) {
        char name[32];
        std::snprintf(name, sizeof name, "device:pci-00:%02x.%u", slot, function);
        sections_.push_back(std::make_unique<DeviceState<PciDevice>>(name, *device));
      }
    }
  }
  sections_.push_back(std::make_unique<DeviceState<Hpet>>("device:hpet", *hpet_));
  // Host input not yet taken by the UARTs: it must reach the restored guest too.
  sections_.push_back(std::make_unique<FunctionSection>(
      "console:pending-input",
      [this](snapshot::StateWriter& out) {
        std::lock_guard lock(consoleMutex_);
        for (const auto& queue : pendingInput_) {
          std::vector<uint8_t> bytes(queue.begin(), queue.end());
          out.blob(bytes);
        }
      },
      [this](snapshot::StateReader& in) {
        std::lock_guard lock(consoleMutex_);
        for (auto& queue : pendingInput_) {
          auto bytes = in.blob();
          queue.assign(bytes.begin(), bytes.end());
        }
        in.expectEnd();
      }));
}

uint32_t Machine::machineFlags() const {
  return (config_.acpi ? kFlagAcpi : 0) | (config_.mpTable ? kFlagMpTable : 0) | (config_.rtcUtc ? kFlagRtcUtc : 0) |
         (config_.x2apic ? kFlagX2apic : 0) | (config_.exitOnUnhandledIo ? kFlagExitOnUnhandledIo : 0) |
         (config_.pvhEntry ? kFlagPvhEntry : 0);
}

void Machine::parkIfPausing(VcpuRunner&) {
  std::unique_lock lock(pauseMutex_);
  if (!pauseRequested_.load()) return;
  ++parked_;
  pauseChanged_.notify_all();
  pauseChanged_.wait(lock, [this] { return !pauseRequested_.load() || stopping_.load(); });
  --parked_;
}

void Machine::pause() {
  std::unique_lock lock(pauseMutex_);
  if (!started_ || stopping_.load()) throw Error(ErrorCode::Internal, "cannot pause: the VM is not running");
  if (pauseRequested_.load()) throw Error(ErrorCode::Internal, "the VM is already paused");
  pauseRequested_.store(true);
  lock.unlock();
  for (auto& runner : vcpus_) runner->vcpu->requestStop();
  lock.lock();
  pauseChanged_.wait(lock, [this] { return parked_ == vcpus_.size() || stopping_.load(); });
  if (parked_ != vcpus_.size()) {
    pauseRequested_.store(false);
    pauseChanged_.notify_all();
    throw Error(ErrorCode::Internal, "the VM ended while it was being paused");
  }
}

void Machine::resume() {
  {
    std::lock_guard lock(pauseMutex_);
    pauseRequested_.store(false);
  }
  pauseChanged_.notify_all();
}

SnapshotReport Machine::snapshot(const std::string& dir, bool leavePaused) {
  SnapshotReport report;
  auto t0 = std::chrono::steady_clock::now();
  pause();
  auto t1 = std::chrono::steady_clock::now();
  report.pauseMs = std::chrono::duration<double, std::milli>(t1 - t0).count();
  try {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error(ErrorCode::Internal, "cannot create snapshot directory " + dir + ": " + ec.message());

    snapshot::Header header;
    header.hyveVersion = snapshot::hyveVersion();
    header.backend = hypervisor_->name();
    header.memoryBytes = config_.memoryBytes;
    header.cpus = config_.cpus;
    header.kernel = snapshot::identify(config_.kernelPath);
    header.initrd = snapshot::identify(config_.initrdPath);
    header.cmdline = config_.cmdline;
    header.machineFlags = machineFlags();

    std::vector<snapshot::Section> sections;
    for (auto& runner : vcpus_) {
      snapshot::StateWriter out;
      runner->vcpu->saveState(out);
      sections.push_back({"vcpu:" + std::to_string(runner->vcpu->id()), out.take()});
    }
    {
      snapshot::StateWriter out;
      vm_->savePlatformState(out);
      header.savedRealtimeNs = realtimeNs();  // with the guest clock just read
      sections.push_back({"platform", out.take()});
    }
    for (const auto& section : sections_) {
      snapshot::StateWriter out;
      section->save(out);
      sections.push_back({section->snapshotName(), out.take()});
    }
    for (const auto& section : sections) header.sections.push_back(section.name);

    snapshot::MemoryFileInfo memory = snapshot::writeMemoryFile(dir, memory_->contents());
    header.memoryFileBytes = memory.bytes;
    header.memoryMtimeNs = memory.mtimeNs;
    header.memoryCrc32 = memory.crc32;
    report.stateBytes = snapshot::writeStateFile(dir, header, sections);
    report.memoryBytes = memory.bytes;
    report.memoryAllocatedBytes = memory.allocatedBytes;
    report.configDigest = header.configDigest();
  } catch (...) {
    resume();  // a failed snapshot leaves the VM running
    throw;
  }
  report.saveMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  if (!leavePaused) resume();
  return report;
}

void Machine::restoreFromSnapshot() {
  const std::string dir = config_.snapshotPath;
  // Everything is read and checksummed before anything is built: a bad snapshot is
  // refused as a whole, and any failure below unwinds the half-built machine (RAII).
  snapshot::StateFile file = snapshot::readStateFile(dir);
  const snapshot::Header& header = file.header;
  if (header.backend != hypervisor_->name()) {
    throw Error(ErrorCode::BadSnapshot, "snapshot " + dir + " was taken on a '" + header.backend +
                                            "' hypervisor; this host's is '" + hypervisor_->name() + "'");
  }
  config_.memoryBytes = header.memoryBytes;
  config_.cpus = header.cpus;
  config_.kernelPath = header.kernel.path;
  config_.initrdPath = header.initrd.path;
  config_.cmdline = header.cmdline;
  config_.acpi = header.machineFlags & kFlagAcpi;
  config_.mpTable = header.machineFlags & kFlagMpTable;
  config_.rtcUtc = header.machineFlags & kFlagRtcUtc;
  config_.x2apic = header.machineFlags & kFlagX2apic;
  config_.exitOnUnhandledIo = header.machineFlags & kFlagExitOnUnhandledIo;
  config_.pvhEntry = header.machineFlags & kFlagPvhEntry;
  validate(config_, hypervisor_->maxVcpus());
  {
    UniqueFd memoryFile = snapshot::openMemoryFile(dir, header, config_.verifySnapshotMemory);
    memory_ = std::make_unique<GuestMemory>(header.memoryBytes, memoryFile.get());  // the mapping outlives the fd
  }

  buildPlatform();
  createVcpus();

  std::vector<std::string> expected;
  for (uint32_t id = 0; id < config_.cpus; ++id) expected.push_back("vcpu:" + std::to_string(id));
  expected.push_back("platform");
  for (const auto& section : sections_) expected.push_back(section->snapshotName());
  if (expected != header.sections) {
    auto join = [](const std::vector<std::string>& names) {
      std::string out;
      for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
      return out;
    };
    throw Error(ErrorCode::BadSnapshot, "snapshot " + dir + " holds the state of [" + join(header.sections) +
                                            "] but this machine has [" + join(expected) + "]");
  }

  auto elapsed = std::chrono::nanoseconds(std::max<int64_t>(realtimeNs() - header.savedRealtimeNs, 0));
  size_t index = 0;
  auto reader = [&](const snapshot::Section& section) {
    return snapshot::StateReader(section.data, dir + " section '" + section.name + "'");
  };
  for (auto& runner : vcpus_) {
    auto in = reader(file.sections[index++]);
    runner->vcpu->restoreState(in, elapsed);
  }
  {
    auto in = reader(file.sections[index++]);
    vm_->restorePlatformState(in, elapsed);
  }
  // Devices after the interrupt controllers: they re-drive their interrupt lines.
  for (auto& section : sections_) {
    auto in = reader(file.sections[index++]);
    section->restore(in);
  }
  feedConsole(ConsolePort::Com1);  // restored pending input enters the FIFOs as they drain
  feedConsole(ConsolePort::Com2);
  bootStats_.bootPath = "snapshot";
  bootStats_.restoreMs = msSinceCreation();
}

}  // namespace hyve
