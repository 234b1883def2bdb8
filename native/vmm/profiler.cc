#include "vmm/profiler.h"

#include "util/error.h"
#include "util/seccomp.h"
#include "vmm/guest_stack.h"

#include <cinttypes>
#include <cstdio>
#include <memory>

namespace hyve {

void VcpuProfile::sample(const hv::Vcpu& vcpu, const GuestMemory& memory) {
  taken_.fetch_add(1, std::memory_order_relaxed);
  hv::Registers regs;
  hv::SpecialRegisters sregs;
  try {
    regs = vcpu.registers();
    sregs = vcpu.specialRegisters();
  } catch (const std::exception&) {
    ++failed_;
    return;
  }
  if (sregs.cs.dpl == 3) {
    ++user_;
    return;
  }
  GuestVirtualMemory virt(memory, {sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer});
  bool la57 = (sregs.cr4 & (1ull << 12)) != 0;
  std::vector<uint64_t> stack = walkFramePointers(virt, regs.rip, regs.rbp, la57, kMaxFrames);
  if (stacks_.size() >= kMaxDistinctStacks && !stacks_.contains(stack)) stack.resize(1);
  ++stacks_[std::move(stack)];
}

ProfileClock::ProfileClock(uint32_t hz, std::function<void()> tick) {
  auto period = std::chrono::nanoseconds(1'000'000'000 / std::max<uint32_t>(hz, 1));
  thread_ = std::thread([this, period, tick = std::move(tick)] {
    seccomp::confineThread("profiler");
    auto next = std::chrono::steady_clock::now() + period;
    std::unique_lock lock(mutex_);
    while (!wake_.wait_until(lock, next, [this] { return stopping_; })) {
      lock.unlock();
      tick();
      lock.lock();
      next += period;
      auto now = std::chrono::steady_clock::now();
      if (next < now) next = now + period;  // fell behind (a stalled host): skip, never burst
    }
  });
}

void ProfileClock::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void writeFoldedProfile(const std::string& path, const std::vector<const VcpuProfile*>& profiles) {
  std::map<std::vector<uint64_t>, uint64_t> merged;
  uint64_t user = 0;
  for (const VcpuProfile* profile : profiles) {
    for (const auto& [stack, count] : profile->kernelStacks()) merged[stack] += count;
    user += profile->userSamples();
  }
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!file) throwErrno(ErrorCode::Internal, "cannot write the profile " + path);
  for (const auto& [stack, count] : merged) {
    for (size_t i = stack.size(); i-- > 0;) {
      std::fprintf(file.get(), "0x%" PRIx64 "%s", stack[i], i == 0 ? "" : ";");
    }
    std::fprintf(file.get(), " %" PRIu64 "\n", count);
  }
  if (user > 0) std::fprintf(file.get(), "[user] %" PRIu64 "\n", user);
  if (std::fflush(file.get()) != 0 || std::ferror(file.get())) throwErrno(ErrorCode::Internal, "cannot write the profile " + path);
}

}  // namespace hyve
