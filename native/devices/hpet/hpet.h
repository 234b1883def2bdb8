// High Precision Event Timer (IA-PC HPET specification 1.0a): a 64-bit main counter and
// three comparator timers, at layout::kHpetBase.
//
// The counter runs at 100 MHz: the period register then holds exactly 10^7 fs and each tick
// is exactly 10 ns of CLOCK_MONOTONIC, so the counter is derived from the host clock without
// rounding drift. 10 MHz, the spec's slowest allowed rate, would sit exactly on Linux's
// HPET_MAX_PERIOD limit; 100 MHz gives 10 ns resolution and still wraps its 32-bit view only
// every 43 s (Linux wants more than 0.5 s).
//
// LegacyReplacement routing is not offered (LEG_RT_CAP clear) and no timer can deliver FSB
// (MSI) interrupts, so Linux registers the HPET only as a clocksource and keeps the PIT and
// LAPIC timer as clock event devices. The timers remain usable (e.g. /dev/hpet) through the
// IOAPIC inputs 20-23, which PCI INTx leaves free.
#pragma once

#include "core/interrupts.h"
#include "core/io_bus.h"
#include "snapshot/state_io.h"

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>

namespace hyve {

class Hpet final : public BusDevice {
 public:
  static constexpr unsigned kTimers = 3;
  static constexpr uint64_t kFrequencyHz = 100'000'000;

  struct TimerState {
    uint64_t config = 0;       // guest-writable bits only; capabilities are added on read
    uint64_t comparator = 0;
    uint64_t period = 0;       // periodic mode: added to the comparator at each match
    uint64_t fsbRoute = 0;     // kept but unused: FSB delivery is not supported
    uint64_t nextMatch = 0;    // main-counter value of the next match, if armed
    bool armed = false;
  };

  struct State {
    uint64_t config = 0;           // general configuration (ENABLE_CNF)
    uint64_t interruptStatus = 0;  // Tn_INT_STS, level-triggered timers only
    uint64_t counter = 0;          // main counter; while enabled, its value at the reference time
    std::array<TimerState, kTimers> timers{};
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  // Starts the timer thread; interrupts go to `interrupts`, which must outlive the HPET.
  explicit Hpet(InterruptController& interrupts);
  // Stops and joins the timer thread.
  ~Hpet() override;
  Hpet(const Hpet&) = delete;
  Hpet& operator=(const Hpet&) = delete;

  // 4- and 8-byte accesses at naturally aligned offsets; anything else reads 0 / is ignored.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Bits 0-31 of the capabilities register: the ACPI HPET table's event timer block ID.
  uint32_t blockId() const;

  // The saved counter is its value at the moment of saving; a restored HPET resumes from it.
  State saveState() const;
  void restoreState(const State& state);

 private:
  using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC

  uint64_t readRegister(uint64_t reg, Clock::time_point now);
  void writeRegister(uint64_t reg, uint64_t value, uint64_t mask, Clock::time_point now);
  void writeTimerRegister(unsigned timer, uint64_t reg, uint64_t value, uint64_t mask, Clock::time_point now);
  uint64_t counterAt(Clock::time_point now) const;
  void arm(unsigned timer, uint64_t counter);
  void fireDueTimers(Clock::time_point now);
  void fire(unsigned timer, uint64_t counter);
  void driveLines(bool force = false);
  bool periodic(unsigned timer) const;
  void run();

  InterruptController& interrupts_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  State state_;
  Clock::time_point reference_;  // when the running counter had the value state_.counter
  uint32_t drivenGsis_ = 0;      // GSIs this HPET currently holds high
  bool stopping_ = false;
  std::thread thread_;  // last: starts once everything above is initialised
};

}  // namespace hyve
