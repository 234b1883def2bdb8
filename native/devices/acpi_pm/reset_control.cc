#include "devices/acpi_pm/reset_control.h"

namespace hyve {

namespace {

constexpr uint8_t kSystemReset = 0x02;  // SYS_RST: hard rather than soft reset
constexpr uint8_t kResetCpu = 0x04;     // RST_CPU: a 0→1 transition starts the reset
constexpr uint8_t kFullReset = 0x08;    // FULL_RST: power-cycle as part of a hard reset
constexpr uint8_t kStoredBits = kSystemReset | kFullReset;

}  // namespace

void ResetControl::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) data[i] = (offset == 0 && i == 0) ? state_.value : 0xff;
}

void ResetControl::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  uint8_t value = data[0];
  {
    std::lock_guard lock(mutex_);
    // RST_CPU is not kept: the reset it starts ends the VM, so every write with it
    // set is a 0→1 transition. Linux first writes SYS_RST alone, then adds RST_CPU.
    state_.value = value & kStoredBits;
  }
  if (value & kResetCpu) machine_.requestExit(ExitOutcome::Reboot);
}

ResetControl::State ResetControl::saveState() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void ResetControl::restoreState(const State& state) {
  std::lock_guard lock(mutex_);
  state_.value = state.value & kStoredBits;
}

}  // namespace hyve
