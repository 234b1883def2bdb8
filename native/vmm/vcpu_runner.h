// One vCPU's thread state. Private to vmm/: machine.cc builds runners, vcpu_runner.cc runs
// them, machine_snapshot.cc parks them.
#pragma once

#include "core/io_bus.h"
#include "hv/quirks.h"
#include "vmm/machine.h"
#include "vmm/profiler.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace hyve {

// Owned by its thread; counters are read by stats() under `mutex`.
struct Machine::VcpuRunner {
  std::unique_ptr<hv::Vcpu> vcpu;
  std::unique_ptr<hv::VcpuQuirks> quirks;
  std::thread thread;
  mutable std::mutex mutex;
  std::map<std::string, uint64_t> exits;  // rare exits, by reason
  // The frequent ones, by the device that took them (null: unclaimed). Keyed by device,
  // never by address: a guest walking the address space must not grow host memory, and
  // this way the map holds at most one key per device plus one.
  struct Accesses {
    uint64_t count = 0;
    std::string name;  // looked up once, when the device is first seen
  };
  std::unordered_map<const BusDevice*, Accesses> portIo, mmio;
  std::unique_ptr<VcpuProfile> profile;  // null unless the machine is profiled

  // Halt detection (Machine::watchForHalt): set by the watch thread, which then interrupts
  // the vCPU; the vCPU's own thread checks and records how many checks in a row found it
  // halted with interrupts disabled at the same RIP.
  std::atomic<bool> haltCheckDue{false};
  std::atomic<uint32_t> haltedChecks{0};
  uint64_t haltedRip = 0;

  void count(const std::string& key) {
    std::lock_guard lock(mutex);
    ++exits[key];
  }
  void countAccess(std::unordered_map<const BusDevice*, Accesses>& counts, const IoBus& bus, const BusDevice* device) {
    std::lock_guard lock(mutex);
    auto [it, inserted] = counts.try_emplace(device);
    if (inserted) it->second.name = device ? bus.nameOf(device) : "unclaimed";
    ++it->second.count;
  }
};

}  // namespace hyve
