// The PC's MC146818-style real-time clock and its 128 bytes of CMOS RAM
// (index port 0x70, data port 0x71).
//
// The clock is the host's wall clock plus an offset: the guest never changes the
// host time, its writes to the time registers only move the offset. Update-ended,
// alarm and periodic interrupts (IRQ 8) come from one timer thread that only wakes
// while the guest has one of them enabled.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "core/interrupts.h"
#include "core/io_bus.h"
#include "snapshot/state_io.h"

namespace hyve {

class CmosRtc : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 2;
  static constexpr size_t kCmosSize = 128;

  struct State {
    // CMOS bytes. 0x0a-0x0d are registers A-D; the time bytes (0x00-0x09, century
    // 0x32) are only meaningful while register B's SET bit freezes the clock, and
    // are computed from the host clock otherwise.
    std::array<uint8_t, kCmosSize> cmos{};
    uint8_t index = 0;       // byte selected through port 0x70
    bool nmiMasked = false;  // bit 7 of the last index write; recorded, has no effect
    int64_t clockOffsetSeconds = 0;  // guest clock = host UTC + this
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  // `utc` false makes the clock read local time, as a PC's usually does.
  // The memory sizes (bytes of guest RAM below / above 4 GiB) fill the BIOS memory
  // size bytes some guests consult.
  CmosRtc(IrqLine irq, bool utc, uint64_t memoryBelow4G, uint64_t memoryAbove4G);
  ~CmosRtc() override;
  CmosRtc(const CmosRtc&) = delete;
  CmosRtc& operator=(const CmosRtc&) = delete;

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  State saveState() const;
  void restoreState(const State& state);

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  uint8_t readData();
  void writeData(uint8_t value);
  void writeRegisterB(uint8_t value);
  void setTimeRegister(uint8_t index, uint8_t value);

  // Time register bytes as the guest sees them now, in the current data mode.
  uint8_t currentTimeByte(uint8_t index) const;
  // Snapshot of every time byte at `guestSeconds` (the other bytes are left alone).
  void encodeTime(int64_t guestSeconds, std::array<uint8_t, kCmosSize>& bytes) const;
  // Reads the time bytes of `bytes` back into seconds since the epoch.
  std::optional<int64_t> decodeTime(const std::array<uint8_t, kCmosSize>& bytes) const;
  uint8_t encodeValue(int value) const;
  int decodeValue(uint8_t value) const;
  bool updateInProgress() const;

  void raiseFlags(uint8_t flags);
  void updateInterrupt(bool forceDrive = false);
  void rescheduleLocked();
  std::optional<SteadyTime> nextDeadlineLocked() const;
  void runDueEventsLocked();
  std::optional<std::chrono::nanoseconds> periodicInterval() const;
  void timerLoop();

  IrqLine irq_;
  bool irqAsserted_ = false;
  // Timer bookkeeping (host side: rebuilt from State on restore).
  bool ticking_ = false;                    // UIE or AIE on and the clock running
  int64_t lastTickSecond_ = 0;              // host UTC second whose update was processed
  std::optional<SteadyTime> nextPeriodic_;  // next periodic flag, while PIE is on
  bool stopping_ = false;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  State state_;
  std::thread timer_;  // last: started once everything above is ready
};

}  // namespace hyve
