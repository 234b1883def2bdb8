// Pausing the vCPUs, and saving and restoring the whole machine (the file format is
// snapshot/snapshot_file.h; each device saves its own section).
#include "vmm/machine.h"

#include "snapshot/snapshot_file.h"
#include "snapshot/snapshottable.h"
#include "util/error.h"
#include "vmm/vcpu_runner.h"

#include <cstdio>
#include <filesystem>

namespace hyve {

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

std::unique_ptr<snapshot::Snapshottable> Machine::makePendingInputSection() {
  // Host input not yet taken by the UARTs: it must reach the restored guest too.
  return std::make_unique<FunctionSection>(
      "console:pending-input",
      [this](snapshot::StateWriter& out) {
        std::lock_guard lock(consoleMutex_);
        for (const auto& queue : pendingInput_) {
          if (queue.size() > snapshot::kMaxPendingInputBytes) {
            throw Error(ErrorCode::Internal, std::to_string(queue.size()) + " bytes of console input are waiting for the guest; a snapshot holds at most " +
                                                 std::to_string(snapshot::kMaxPendingInputBytes));
          }
          std::vector<uint8_t> bytes(queue.begin(), queue.end());
          out.blob("input", bytes);
        }
      },
      [this](snapshot::StateReader& in) {
        std::lock_guard lock(consoleMutex_);
        for (auto& queue : pendingInput_) {
          auto bytes = in.blob("input");
          queue.assign(bytes.begin(), bytes.end());
        }
        in.expectEnd();
      });
}

std::vector<snapshot::Snapshottable*> Machine::snapshotSections() const {
  std::vector<snapshot::Snapshottable*> sections;
  for (const auto& section : board_->sections()) sections.push_back(section.get());
  sections.push_back(pendingInputSection_.get());
  return sections;
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
  lock.unlock();
  board_->pauseDevices();  // requests in flight complete first
}

void Machine::resume() {
  board_->resumeDevices();
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
    for (const auto* section : snapshotSections()) {
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
  try {
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
    {
      // The snapshot names the functions; their arguments (a vsock socket path: each
      // restored copy has its own) come from the caller's config for the same slot.
      std::vector<PciDeviceSpec> given = std::move(config_.pciDevices);
      config_.pciDevices = Board::pciDevicesFromSections(header.sections);
      for (auto& spec : config_.pciDevices) {
        for (const auto& mine : given) {
          if (mine.slot == spec.slot && mine.function == spec.function && mine.emulation == spec.emulation) spec.args = mine.args;
        }
      }
    }
    validateConfig(config_, hypervisor_->maxVcpus());
    {
      UniqueFd memoryFile = snapshot::openMemoryFile(dir, header, config_.verifySnapshotMemory);
      memory_ = std::make_unique<GuestMemory>(header.memoryBytes, memoryFile.get());  // the mapping outlives the fd
    }

    buildPlatform();
    createVcpus();

    std::vector<std::string> expected;
    for (uint32_t id = 0; id < config_.cpus; ++id) expected.push_back("vcpu:" + std::to_string(id));
    expected.push_back("platform");
    for (const auto* section : snapshotSections()) expected.push_back(section->snapshotName());
    if (expected != header.sections) {
      auto join = [](const std::vector<std::string>& names) {
        std::string out;
        for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
        return out;
      };
      throw Error(ErrorCode::BadSnapshot, "snapshot " + dir + " holds the state of [" + join(header.sections) +
                                              "] but this machine has [" + join(expected) + "]");
    }

    int64_t sinceSave = 0;
    if (__builtin_sub_overflow(realtimeNs(), header.savedRealtimeNs, &sinceSave)) {
      throw Error(ErrorCode::BadSnapshot, "snapshot " + dir + " has an impossible save time (" +
                                              std::to_string(header.savedRealtimeNs) + " ns)");
    }
    auto elapsed = std::chrono::nanoseconds(std::max<int64_t>(sinceSave, 0));
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
    for (auto* section : snapshotSections()) {
      auto in = reader(file.sections[index++]);
      section->restore(in);
    }
    feedConsole(ConsolePort::Com1);  // restored pending input enters the FIFOs as they drain
    feedConsole(ConsolePort::Com2);
  } catch (const Error& e) {
    // Values that would be configuration errors if a user typed them (vCPU count, memory
    // size, a BAR layout) are damage when they come from a snapshot: the caller must see
    // HYVE_BAD_SNAPSHOT, e.g. so that a snapshot cache rebuilds the entry.
    if (e.code() != ErrorCode::BadConfig) throw;
    throw Error(ErrorCode::BadSnapshot, "snapshot " + dir + " does not describe a valid machine: " + e.what());
  }
  bootStats_.bootPath = "snapshot";
  bootStats_.restoreMs = msSinceCreation();
}

}  // namespace hyve
