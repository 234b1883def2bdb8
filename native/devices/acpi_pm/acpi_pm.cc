#include "devices/acpi_pm/acpi_pm.h"

#include <array>
#include <ctime>

namespace hyve {

namespace {

// Offsets of the registers within the block (see layout::kAcpiPm1aEvt and friends).
constexpr uint64_t kStatusOffset = layout::kAcpiPm1aEvt - layout::kAcpiPmBase;
constexpr uint64_t kEnableOffset = kStatusOffset + 2;
constexpr uint64_t kControlOffset = layout::kAcpiPm1aCnt - layout::kAcpiPmBase;
constexpr uint64_t kTimerOffset = layout::kAcpiPmTimer - layout::kAcpiPmBase;

constexpr uint16_t kStatusPowerButton = 1 << 8;
constexpr uint16_t kStatusWritable = 0x8731;  // TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK
constexpr uint16_t kEnableWritable = 0x0521;  // TMR_EN, GBL_EN, PWRBTN_EN, RTC_EN; SLPBTN absent
constexpr uint16_t kControlSciEnable = 1 << 0;
constexpr uint16_t kControlGlobalRelease = 1 << 2;  // write-only, reads 0
constexpr uint16_t kControlSleepEnable = 1 << 13;   // write-only, reads 0
constexpr int kControlSleepTypeShift = 10;
constexpr uint16_t kControlSleepTypeMask = 7;
constexpr uint32_t kTimerMask = 0xffffff;

uint32_t hostTimerTicks() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  // Split so the product never overflows 64 bits.
  uint64_t ticks = static_cast<uint64_t>(ts.tv_sec) * AcpiPm::kTimerHz +
                   static_cast<uint64_t>(ts.tv_nsec) * AcpiPm::kTimerHz / 1'000'000'000;
  return static_cast<uint32_t>(ticks);
}

}  // namespace

AcpiPm::AcpiPm(MachineControl& machine, IrqLine sci) : machine_(machine), sci_(sci) {
  timerOffset_ = 0u - hostTimerTicks();  // the guest's timer starts at 0
}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  std::array<uint8_t, kLength> image{};
  auto put = [&](uint64_t at, uint32_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) image[at + i] = static_cast<uint8_t>(value >> (8 * i));
  };
  put(kStatusOffset, state_.pm1Status, 2);
  put(kEnableOffset, state_.pm1Enable, 2);
  put(kControlOffset, state_.pm1Control | kControlSciEnable, 2);
  put(kTimerOffset, timerNow(), 4);
  for (size_t i = 0; i < data.size(); ++i) {
    bool inRange = offset < kLength && i < kLength - offset;
    data[i] = inRange ? image[offset + i] : 0xff;
  }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  bool powerOff = false;
  {
    std::lock_guard lock(mutex_);
    std::array<uint8_t, kLength> bytes{};
    std::array<bool, kLength> written{};
    for (size_t i = 0; i < data.size(); ++i) {
      if (offset >= kLength || i >= kLength - offset) break;
      bytes[offset + i] = data[i];
      written[offset + i] = true;
    }
    // A register may be written a byte at a time; untouched bytes keep their value.
    auto merge = [&](uint64_t at, uint16_t current) {
      uint16_t low = written[at] ? bytes[at] : (current & 0xff);
      uint16_t high = written[at + 1] ? bytes[at + 1] : (current >> 8);
      return static_cast<uint16_t>(low | (high << 8));
    };
    auto touched = [&](uint64_t at) { return written[at] || written[at + 1]; };

    if (touched(kStatusOffset)) {
      uint16_t ones = static_cast<uint16_t>((written[kStatusOffset] ? bytes[kStatusOffset] : 0) |
                                            (written[kStatusOffset + 1] ? bytes[kStatusOffset + 1] << 8 : 0));
      state_.pm1Status &= static_cast<uint16_t>(~ones);
    }
    if (touched(kEnableOffset)) state_.pm1Enable = merge(kEnableOffset, state_.pm1Enable) & kEnableWritable;
    if (touched(kControlOffset)) {
      uint16_t value = merge(kControlOffset, state_.pm1Control);
      if (value & kControlSleepEnable) {
        unsigned sleepType = (value >> kControlSleepTypeShift) & kControlSleepTypeMask;
        powerOff = sleepType == layout::kAcpiS5SleepType;
      }
      state_.pm1Control =
          static_cast<uint16_t>((value & ~(kControlSleepEnable | kControlGlobalRelease)) | kControlSciEnable);
    }
    // The timer is read-only.
    updateSci();
  }
  // Outside the lock: ending the machine may wait on vCPU threads that want it.
  if (powerOff) machine_.requestExit(ExitOutcome::Poweroff);
}

void AcpiPm::pressPowerButton() {
  std::lock_guard lock(mutex_);
  state_.pm1Status |= kStatusPowerButton;
  updateSci();
}

AcpiPm::State AcpiPm::saveState() const {
  std::lock_guard lock(mutex_);
  State state = state_;
  state.timerTicks = timerNow();
  return state;
}

void AcpiPm::restoreState(const State& state) {
  std::lock_guard lock(mutex_);
  state_ = state;
  state_.pm1Status &= kStatusWritable;
  state_.pm1Enable &= kEnableWritable;
  state_.pm1Control |= kControlSciEnable;
  state_.timerTicks &= kTimerMask;
  timerOffset_ = state_.timerTicks - hostTimerTicks();
  updateSci(/*forceDrive=*/true);
}

uint32_t AcpiPm::timerNow() const { return (hostTimerTicks() + timerOffset_) & kTimerMask; }

void AcpiPm::updateSci(bool forceDrive) {
  bool level = (state_.pm1Status & state_.pm1Enable) != 0;
  if (level != sciAsserted_ || forceDrive) {
    sciAsserted_ = level;
    sci_.set(level);
  }
}

}  // namespace hyve
