// One virtual machine: guest memory, the platform devices, the loaded kernel and one
// thread per vCPU (the bhyve/xhyve model). The hypervisor is reached only through
// hv/hypervisor.h.
#pragma once

#include "core/guest_memory.h"
#include "core/io_bus.h"
#include "core/machine_control.h"
#include "hv/hypervisor.h"
#include "hv/quirks.h"
#include "vmm/board.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace hyve {

struct LoadedLinux;
class ProfileClock;
namespace snapshot {
class Snapshottable;
}

struct MachineConfig {
  uint64_t memoryBytes = 512ull << 20;
  uint32_t cpus = 1;
  std::string kernelPath;
  std::string initrdPath;  // empty: none
  std::string cmdline;
  bool acpi = true;        // xhyve -A
  bool mpTable = true;     // xhyve -Y turns it off
  bool rtcUtc = true;      // xhyve -u
  bool x2apic = true;
  bool exitOnUnhandledIo = false;  // xhyve -e
  bool pvhEntry = false;   // enter a vmlinux through its PVH note instead of the 64-bit entry
  std::string uuid;        // SMBIOS system UUID (xhyve -U); empty: a random one per boot
  // PCI functions (xhyve -s); empty: the default board (vmm/board.h).
  std::vector<PciDeviceSpec> pciDevices;
  // Restore from this snapshot directory instead of booting: memory, cpus, kernel
  // identity, cmdline and the flags above then come from the snapshot, and its guest
  // memory is mapped copy-on-write from the snapshot's memory file.
  std::string snapshotPath;
  bool verifySnapshotMemory = false;  // checksum the whole memory file even if unchanged
  // The guest profiler (vmm/profiler.h): when set, each vCPU is sampled `profileHz` times
  // a second and the folded stacks are written here once the vCPU threads have ended.
  std::string profilePath;
  uint32_t profileHz = 99;
  // Called from vCPU threads with console bytes; keep it cheap.
  std::function<void(ConsolePort, std::span<const uint8_t>)> onConsoleOutput;
  // Human-readable VMM notices (e.g. kernel arguments added for PVM).
  std::function<void(const std::string&)> onLog;
};

struct MachineExit {
  ExitOutcome outcome;
  std::string message;    // why, for errors; empty for a clean poweroff
  std::string errorCode;  // a stable code when the cause is known (HYVE_BAD_SNAPSHOT), else empty
};

struct MachineStats {
  std::string hypervisor;
  bool pvm = false;
  // Milliseconds from Machine construction to each event; negative if not reached.
  double setupMs = -1, firstRunMs = -1, firstConsoleByteMs = -1;
  std::string kernelFormat, kernelCompression, bootPath;
  double decompressMs = 0;
  std::vector<std::string> addedKernelArguments;
  std::map<std::string, uint64_t> exits;  // "io:com1", "mmio:hpet", "fixup:int3", ...
  double restoreMs = -1;  // restored VMs: reading the snapshot and loading its state
  uint64_t profileSamples = 0;  // samples the guest profiler has taken so far (all vCPUs)
};

struct SnapshotReport {
  double pauseMs = 0;   // until every vCPU was parked
  double saveMs = 0;    // collecting state and writing both files
  uint64_t stateBytes = 0;
  uint64_t memoryBytes = 0;           // guest RAM, the size of memory.bin
  uint64_t memoryAllocatedBytes = 0;  // what memory.bin occupies on disk (zero pages are holes)
  std::string configDigest;
};

class Machine final : public MachineControl {
 public:
  // Builds the whole VM; throws hyve::Error with a fix-it message on bad configuration.
  explicit Machine(MachineConfig config);
  ~Machine() override;
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Starts the vCPU threads. `onExit` runs once, on whichever thread ended the VM.
  void start(std::function<void(const MachineExit&)> onExit);
  void requestExit(ExitOutcome outcome) override;
  // Ends the VM from the host side (outcome Error, "stopped by host").
  void stop();
  // Blocks until the VM has ended and every vCPU thread has been joined.
  MachineExit wait();

  // Queues host input for a console; it enters the UART FIFO as the guest drains it.
  void writeConsole(ConsolePort port, std::span<const uint8_t> data);

  // Parks every vCPU thread at a point where its state is complete (no exit half
  // handled), without ending the VM. Throws Error(Internal) if the VM is not running.
  void pause();
  void resume();
  // Pauses, writes the whole machine to `dir` (see snapshot/snapshot_file.h), then
  // resumes (unless `leavePaused`; a failed snapshot always resumes). Console bytes the guest wrote before the pause have
  // all been passed to onConsoleOutput when this returns.
  SnapshotReport snapshot(const std::string& dir, bool leavePaused = false);

  MachineStats stats() const;

 private:
  struct VcpuRunner;  // vmm/vcpu_runner.h
  static void validateConfig(const MachineConfig& config, uint32_t maxVcpus);
  void restoreFromSnapshot();
  std::vector<snapshot::Snapshottable*> snapshotSections() const;  // in file order
  std::unique_ptr<snapshot::Snapshottable> makePendingInputSection();
  uint32_t machineFlags() const;
  void parkIfPausing(VcpuRunner& runner);
  void buildPlatform();
  void loadGuest();
  void createVcpus();
  void runVcpu(VcpuRunner& runner);
  void watchForHalt();
  void checkHalt(VcpuRunner& runner);
  bool handlePortIo(VcpuRunner& runner, const hv::VcpuExit& exit);
  bool handleMmio(VcpuRunner& runner, const hv::VcpuExit& exit);
  void finish(ExitOutcome outcome, std::string message);
  void feedConsole(ConsolePort port);
  void writeProfile();
  double msSinceCreation() const;
  std::string describeVcpu(hv::Vcpu& vcpu) const;
  std::string describeTripleFault(hv::Vcpu& vcpu) const;

  MachineConfig config_;
  std::chrono::steady_clock::time_point created_;
  std::unique_ptr<hv::Hypervisor> hypervisor_;
  std::unique_ptr<hv::Vm> vm_;
  std::unique_ptr<GuestMemory> memory_;
  IoBus pio_;
  IoBus mmio_;

  std::unique_ptr<Board> board_;

  std::unique_ptr<LoadedLinux> loaded_;
  std::unique_ptr<hv::Quirks> quirks_;  // host workarounds; do-nothing on hardware KVM
  std::vector<std::unique_ptr<VcpuRunner>> vcpus_;
  std::unique_ptr<ProfileClock> profileClock_;  // kicks the vCPUs while profiling
  MachineStats bootStats_;  // filled while building; counters come from the runners

  // Host input not yet taken by the UARTs: machine state that must reach a restored guest too.
  std::unique_ptr<snapshot::Snapshottable> pendingInputSection_;

  std::mutex pauseMutex_;
  std::condition_variable pauseChanged_;
  std::atomic<bool> pauseRequested_{false};
  uint32_t parked_ = 0;
  bool started_ = false;

  std::mutex consoleMutex_;
  // The snapshot being written or restored (BoardContext::snapshotDir); empty otherwise.
  std::string snapshotDir_;
  std::deque<uint8_t> pendingInput_[2];

  std::mutex exitMutex_;
  std::condition_variable exited_;
  std::optional<MachineExit> exit_;
  std::function<void(const MachineExit&)> onExit_;
  std::atomic<bool> stopping_{false};
  std::thread haltWatch_;  // asks each vCPU now and then whether it halted for good
  std::atomic<int64_t> firstRunNs_{-1};
  std::atomic<int64_t> firstConsoleNs_{-1};
  bool joined_ = false;
};

}  // namespace hyve
