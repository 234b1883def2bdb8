#include "vmm/machine.h"

#include "boot/linux_loader.h"
#include "core/layout.h"
#include "devices/hpet/hpet.h"
#include "devices/pci/pci_bus.h"
#include "devices/uart/uart_16550.h"
#include "firmware/acpi/acpi.h"
#include "firmware/mptable.h"
#include "firmware/smbios/smbios.h"
#include "pvm/pvm_quirks.h"
#include "snapshot/snapshottable.h"
#include "util/error.h"
#include "util/hex.h"
#include "util/seccomp.h"
#include "vmm/cpuid.h"
#include "vmm/profiler.h"
#include "vmm/vcpu_runner.h"

#include <sys/sysinfo.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace hyve {

void Machine::validateConfig(const MachineConfig& config, uint32_t maxVcpus) {
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

Machine::Machine(MachineConfig config) : config_(std::move(config)), created_(std::chrono::steady_clock::now()) {
  hypervisor_ = hv::Hypervisor::open();
  validateConfig(config_, hypervisor_->maxVcpus());
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
  // The one place that asks which kind of host this is.
  quirks_ = hypervisor_->emulatesGuestKernel() ? pvm::makePvmQuirks(*memory_) : std::make_unique<hv::Quirks>();
  vm_ = hypervisor_->createVm();
  uint32_t slot = 0;
  for (const auto& region : memory_->regions()) {
    vm_->mapMemory({slot++, region.guestAddress, region.size, region.host});
  }
  vm_->createPlatform();
  auto consoleOutput = [this](ConsolePort port, std::span<const uint8_t> bytes) {
    int64_t expected = -1;
    firstConsoleNs_.compare_exchange_strong(
        expected,
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - created_).count());
    if (config_.onConsoleOutput) config_.onConsoleOutput(port, bytes);
  };
  BoardContext context{*vm_, *memory_, *this, pio_, mmio_, config_.rtcUtc, consoleOutput,
                       [this](ConsolePort port) { feedConsole(port); }, config_.onLog, [this] { return snapshotDir_; }};
  board_ = std::make_unique<Board>(context, config_.pciDevices);
  pendingInputSection_ = makePendingInputSection();
}

void Machine::loadGuest() {
  uint64_t rsdp = 0;
  if (config_.acpi) {
    firmware::AcpiConfig acpi;
    acpi.cpuCount = config_.cpus;
    acpi.hpetBlockId = board_->hpet().blockId();
    acpi.pciRouting = [this](uint32_t slot, uint32_t pin) { return board_->pci().intxGsi(slot, pin); };
    rsdp = firmware::writeAcpiTables(*memory_, acpi);
  }
  if (config_.mpTable) {
    firmware::MpTableConfig mp;
    mp.cpuCount = config_.cpus;
    mp.pciRouting = [this](uint32_t slot, uint32_t pin) { return board_->pci().intxGsi(slot, pin); };
    firmware::writeMpTable(*memory_, mp);
  }
  firmware::writeSmbiosTables(*memory_, {config_.cpus, config_.uuid.empty() ? firmware::randomUuid()
                                                                             : firmware::parseUuid(config_.uuid)});

  BootConfig boot;
  boot.kernelPath = config_.kernelPath;
  boot.initrdPath = config_.initrdPath;
  boot.cmdline = config_.cmdline;
  boot.acpiRsdpAddress = rsdp;
  boot.protocol = config_.pvhEntry ? BootProtocol::Pvh : BootProtocol::Auto;
  bootStats_.addedKernelArguments = quirks_->kernelArguments(config_.cmdline);
  if (!bootStats_.addedKernelArguments.empty()) {
    boot.cmdline = quirks_->withKernelArguments(boot.cmdline, bootStats_.addedKernelArguments);
    if (config_.onLog) {
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
  quirks_->adjustCpuid(supported);

  for (uint32_t id = 0; id < config_.cpus; ++id) {
    auto runner = std::make_unique<VcpuRunner>();
    runner->vcpu = vm_->createVcpu(id);
    runner->vcpu->setCpuid(cpuidForVcpu(supported, id, cpuidOptions));
    runner->vcpu->applyFirmwareDefaults();
    runner->quirks = quirks_->forVcpu();
    if (!config_.profilePath.empty()) runner->profile = std::make_unique<VcpuProfile>();
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
  haltWatch_ = std::thread([this] {
    seccomp::confineThread("halt-watch");
    watchForHalt();
  });
  if (!config_.profilePath.empty()) {
    // A tick before a vCPU thread has bound itself only sets the request: kick() does
    // nothing until then.
    profileClock_ = std::make_unique<ProfileClock>(config_.profileHz, [this] {
      for (auto& runner : vcpus_) {
        runner->profile->request();
        runner->vcpu->kick();
      }
    });
  }
}

double Machine::msSinceCreation() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - created_).count();
}

void Machine::requestExit(ExitOutcome outcome) { finish(outcome, ""); }

void Machine::stop() { finish(ExitOutcome::Error, "stopped by host"); }

void Machine::finish(ExitOutcome outcome, std::string message) {
  std::function<void(const MachineExit&)> callback;
  std::string code;
  // A snapshot's memory file that changed under the VM, then a forbidden system call, come
  // first: whatever else went wrong (a vCPU's EFAULT, say) may be their consequence.
  if (std::string why = memory_ ? memory_->fileChanged() : std::string(); !why.empty()) {
    message = why + (message.empty() ? "" : "; then: " + message);
    outcome = ExitOutcome::Error;
    code = errorCodeName(ErrorCode::BadSnapshot);
  }
  if (std::string why = seccomp::violation(); !why.empty()) {
    message = why + (message.empty() ? "" : "; then: " + message);
    outcome = ExitOutcome::Error;
  }
  MachineExit result{outcome, std::move(message), std::move(code)};
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
    if (profileClock_) profileClock_->stop();  // before the joins: kick() needs live threads
    for (auto& runner : vcpus_) {
      if (runner->thread.joinable() && runner->thread.get_id() != std::this_thread::get_id()) runner->thread.join();
    }
    if (haltWatch_.joinable() && haltWatch_.get_id() != std::this_thread::get_id()) haltWatch_.join();
    writeProfile();
  }
  return result;
}

void Machine::writeProfile() {
  if (config_.profilePath.empty()) return;
  std::vector<const VcpuProfile*> profiles;
  for (const auto& runner : vcpus_) {
    if (runner->profile) profiles.push_back(runner->profile.get());
  }
  try {
    writeFoldedProfile(config_.profilePath, profiles);
  } catch (const std::exception& e) {
    if (config_.onLog) config_.onLog(std::string("profile: ") + e.what());
  }
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
  std::lock_guard lock(consoleMutex_);
  auto& queue = pendingInput_[static_cast<uint32_t>(port)];
  while (!queue.empty()) {
    uint8_t chunk[64];
    size_t n = std::min(queue.size(), sizeof chunk);
    std::copy_n(queue.begin(), n, chunk);
    size_t taken = board_->pushConsoleInput(port, {chunk, n});
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(taken));
    if (taken < n) break;  // full: the UART or virtio-console calls back when the guest drains it
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
    for (const auto& [device, accesses] : runner->portIo) stats.exits["io:" + accesses.name] += accesses.count;
    for (const auto& [device, accesses] : runner->mmio) stats.exits["mmio:" + accesses.name] += accesses.count;
    if (runner->profile) stats.profileSamples += runner->profile->samplesTaken();
  }
  return stats;
}

}  // namespace hyve
