// The guest profiler: every vCPU thread is kicked out of its run at a fixed rate and, on
// its own thread, records where the guest was (the kernel stack by frame pointers, or
// "user mode"). At the end the samples are written as folded stacks of hex addresses
// ("0xroot;...;0xleaf count"), which src/profile/ turns into names.
#pragma once

#include "core/guest_memory.h"
#include "hv/hypervisor.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hyve {

// One vCPU's samples. `requested` is set by the profiler's thread; everything else belongs
// to the vCPU's thread until the threads are joined.
class VcpuProfile {
 public:
  // Distinct stacks kept per vCPU; past this, new stacks are recorded by their leaf only,
  // so a guest that makes every stack different cannot grow host memory without bound.
  static constexpr size_t kMaxDistinctStacks = 100'000;
  static constexpr size_t kMaxFrames = 64;

  // Asks for a sample at the vCPU thread's next return from the guest.
  void request() { requested_.store(true, std::memory_order_release); }
  // On the vCPU's thread, after every return from the guest: takes the sample if one was asked for.
  void sampleIfRequested(const hv::Vcpu& vcpu, const GuestMemory& memory) {
    if (requested_.load(std::memory_order_relaxed) && requested_.exchange(false, std::memory_order_acquire)) {
      sample(vcpu, memory);
    }
  }
  void sample(const hv::Vcpu& vcpu, const GuestMemory& memory);

  // Leaf first: the sampled RIP, then return addresses.
  const std::map<std::vector<uint64_t>, uint64_t>& kernelStacks() const { return stacks_; }
  uint64_t userSamples() const { return user_; }
  uint64_t failedSamples() const { return failed_; }
  // Samples taken so far; any thread may read it (boot phases are marked by sample count).
  uint64_t samplesTaken() const { return taken_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> requested_{false};
  std::atomic<uint64_t> taken_{0};
  std::map<std::vector<uint64_t>, uint64_t> stacks_;
  uint64_t user_ = 0;
  uint64_t failed_ = 0;  // registers could not be read
};

// Drives the sampling: a thread that calls `tick` `hz` times a second until stop().
class ProfileClock {
 public:
  ProfileClock(uint32_t hz, std::function<void()> tick);
  ~ProfileClock() { stop(); }
  ProfileClock(const ProfileClock&) = delete;
  ProfileClock& operator=(const ProfileClock&) = delete;
  void stop();

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Folded stacks of every vCPU, root first, one "frames count" line each; user-mode
// samples as "[user] count". Throws Error(Internal) if the file cannot be written.
void writeFoldedProfile(const std::string& path, const std::vector<const VcpuProfile*>& profiles);

}  // namespace hyve
