#include "devices/hpet/hpet.h"

#include "core/layout.h"
#include "devices/pci/pci_bus.h"
#include "util/seccomp.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <type_traits>

namespace hyve {

static_assert(std::is_trivially_copyable_v<Hpet::State>, "snapshots copy State as bytes");

namespace {

using namespace std::chrono_literals;

constexpr uint64_t kFemtosecondsPerSecond = 1'000'000'000'000'000;
constexpr uint64_t kPeriodFs = kFemtosecondsPerSecond / Hpet::kFrequencyHz;
constexpr uint64_t kNsPerTick = 1'000'000'000 / Hpet::kFrequencyHz;
static_assert(kPeriodFs * Hpet::kFrequencyHz == kFemtosecondsPerSecond && kNsPerTick * Hpet::kFrequencyHz == 1'000'000'000,
              "the tick must be a whole number of femto- and nanoseconds");

// Register offsets.
constexpr uint64_t kCapabilities = 0x000;
constexpr uint64_t kConfiguration = 0x010;
constexpr uint64_t kInterruptStatus = 0x020;
constexpr uint64_t kMainCounter = 0x0f0;
constexpr uint64_t kTimerBase = 0x100;
constexpr uint64_t kTimerStride = 0x20;
constexpr uint64_t kTimerConfig = 0x00;
constexpr uint64_t kTimerComparator = 0x08;
constexpr uint64_t kTimerFsbRoute = 0x10;

// Capabilities: revision 1, NUM_TIM_CAP = timers - 1, 64-bit counter, no LEG_RT_CAP.
constexpr uint16_t kVendorId = 0x8086;  // Linux does not look at it
constexpr uint32_t kBlockId = 0x01 | (Hpet::kTimers - 1) << 8 | 1u << 13 | uint32_t{kVendorId} << 16;

constexpr uint64_t kEnable = 1 << 0;

// Timer configuration bits.
constexpr uint64_t kLevelTriggered = 1 << 1;
constexpr uint64_t kInterruptEnable = 1 << 2;
constexpr uint64_t kPeriodic = 1 << 3;
constexpr uint64_t kPeriodicCapable = 1 << 4;
constexpr uint64_t k64BitCapable = 1 << 5;
constexpr uint64_t kValueSet = 1 << 6;
constexpr uint64_t k32BitMode = 1 << 8;
constexpr unsigned kRouteShift = 9;
constexpr uint64_t kRouteMask = 0x1f << kRouteShift;

// IOAPIC inputs above the PCI INTx lines.
constexpr uint32_t kFirstGsi = layout::kPciIntxGsiBase + pci::kIntxGsiCount;
static_assert(kFirstGsi < layout::kIoapicPins && layout::kIoapicPins <= 32);
constexpr uint32_t kRouteCapability = static_cast<uint32_t>((uint64_t{1} << layout::kIoapicPins) - (1u << kFirstGsi));

// Bounds how often a periodic timer can wake the thread (a period of a few ticks would spin it).
constexpr auto kMinimumPeriodicWait = 100us;
// Far deadlines are re-evaluated at least this often instead of computing huge durations.
constexpr uint64_t kMaximumWaitTicks = 3600 * Hpet::kFrequencyHz;

uint64_t merge(uint64_t old, uint64_t value, uint64_t mask) { return (old & ~mask) | (value & mask); }

unsigned route(uint64_t config) { return (config & kRouteMask) >> kRouteShift; }

bool routeAllowed(unsigned gsi) { return gsi < 32 && (kRouteCapability >> gsi & 1); }

uint64_t writableTimerBits(unsigned timer) {
  return kLevelTriggered | kInterruptEnable | kValueSet | k32BitMode | kRouteMask | (timer == 0 ? kPeriodic : 0);
}

}  // namespace

Hpet::Hpet(InterruptController& interrupts) : interrupts_(interrupts) {
  reference_ = Clock::now();
  for (unsigned i = 0; i < kTimers; ++i) {
    state_.timers[i].comparator = ~uint64_t{0};
    arm(i, 0);
  }
  thread_ = std::thread([this] {
    seccomp::confineThread("hpet");
    run();
  });
}

Hpet::~Hpet() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

uint32_t Hpet::blockId() const { return kBlockId; }

void Hpet::read(uint64_t offset, std::span<uint8_t> data) {
  size_t size = data.size();
  if ((size != 4 && size != 8) || offset % size != 0 || offset + size > layout::kHpetSize) {
    std::fill(data.begin(), data.end(), 0);
    return;
  }
  uint64_t value;
  {
    std::lock_guard lock(mutex_);
    Clock::time_point now = Clock::now();
    fireDueTimers(now);
    value = readRegister(offset & ~uint64_t{7}, now) >> (offset & 4) * 8;
  }
  std::memcpy(data.data(), &value, size);  // little-endian host, like the guest
}

void Hpet::write(uint64_t offset, std::span<const uint8_t> data) {
  size_t size = data.size();
  if ((size != 4 && size != 8) || offset % size != 0 || offset + size > layout::kHpetSize) return;
  uint64_t value = 0;
  std::memcpy(&value, data.data(), size);
  unsigned shift = (offset & 4) * 8;
  uint64_t mask = size == 8 ? ~uint64_t{0} : uint64_t{0xffffffff} << shift;
  {
    std::lock_guard lock(mutex_);
    Clock::time_point now = Clock::now();
    fireDueTimers(now);
    writeRegister(offset & ~uint64_t{7}, value << shift, mask, now);
    fireDueTimers(now);  // a comparator written at or below the counter (32-bit wrap) may be due
    driveLines();
  }
  wake_.notify_one();
}

uint64_t Hpet::readRegister(uint64_t reg, Clock::time_point now) {
  switch (reg) {
    case kCapabilities:
      return kBlockId | kPeriodFs << 32;
    case kConfiguration:
      return state_.config;
    case kInterruptStatus:
      return state_.interruptStatus;
    case kMainCounter:
      return counterAt(now);
  }
  if (reg < kTimerBase || reg >= kTimerBase + kTimers * kTimerStride) return 0;
  unsigned timer = static_cast<unsigned>((reg - kTimerBase) / kTimerStride);
  const TimerState& t = state_.timers[timer];
  switch ((reg - kTimerBase) % kTimerStride) {
    case kTimerConfig:
      return t.config | k64BitCapable | (timer == 0 ? kPeriodicCapable : 0) | uint64_t{kRouteCapability} << 32;
    case kTimerComparator:
      return t.comparator;
    case kTimerFsbRoute:
      return t.fsbRoute;
    default:
      return 0;
  }
}

void Hpet::writeRegister(uint64_t reg, uint64_t value, uint64_t mask, Clock::time_point now) {
  switch (reg) {
    case kConfiguration: {
      uint64_t config = merge(state_.config, value, mask & kEnable);  // LEG_RT_CNF stays 0
      if ((config ^ state_.config) & kEnable) {
        // Halting freezes the value; starting counts on from it.
        state_.counter = counterAt(now);
        reference_ = now;
      }
      state_.config = config;
      return;
    }
    case kInterruptStatus:
      state_.interruptStatus &= ~(value & mask & ((1u << kTimers) - 1));
      return;
    case kMainCounter: {
      // The spec asks software to halt the counter first; a running write simply takes effect.
      state_.counter = merge(counterAt(now), value, mask);
      reference_ = now;
      for (unsigned i = 0; i < kTimers; ++i) arm(i, state_.counter);
      return;
    }
  }
  if (reg < kTimerBase || reg >= kTimerBase + kTimers * kTimerStride) return;
  unsigned timer = static_cast<unsigned>((reg - kTimerBase) / kTimerStride);
  writeTimerRegister(timer, (reg - kTimerBase) % kTimerStride, value, mask, now);
}

void Hpet::writeTimerRegister(unsigned timer, uint64_t reg, uint64_t value, uint64_t mask, Clock::time_point now) {
  TimerState& t = state_.timers[timer];
  switch (reg) {
    case kTimerConfig: {
      uint64_t config = merge(t.config, value, mask & writableTimerBits(timer));
      // An unsupported route reads back unchanged (spec 2.3.8); 0 is the reset value.
      if (unsigned gsi = route(config); gsi != 0 && !routeAllowed(gsi)) {
        config = (config & ~kRouteMask) | (t.config & kRouteMask);
      }
      if (!(config & kLevelTriggered)) state_.interruptStatus &= ~(uint64_t{1} << timer);
      t.config = config;
      if (config & k32BitMode) {
        t.comparator &= 0xffffffff;
        t.period &= 0xffffffff;
      }
      break;
    }
    case kTimerComparator: {
      uint64_t width = t.config & k32BitMode ? 0xffffffff : ~uint64_t{0};
      // Periodic timers: a write sets the period; with VAL_SET_CNF it also sets the
      // comparator directly (how software starts the first period).
      if (!periodic(timer) || (t.config & kValueSet)) t.comparator = merge(t.comparator, value, mask) & width;
      if (periodic(timer)) t.period = merge(t.period, value, mask) & width;
      t.config &= ~kValueSet;
      break;
    }
    case kTimerFsbRoute:
      t.fsbRoute = merge(t.fsbRoute, value, mask);
      return;
    default:
      return;
  }
  arm(timer, counterAt(now));
}

uint64_t Hpet::counterAt(Clock::time_point now) const {
  if (!(state_.config & kEnable)) return state_.counter;
  int64_t elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - reference_).count();
  return state_.counter + static_cast<uint64_t>(std::max<int64_t>(elapsed, 0)) / kNsPerTick;
}

bool Hpet::periodic(unsigned timer) const { return timer == 0 && (state_.timers[timer].config & kPeriodic); }

// Finds the first counter value >= `counter` at which the comparator matches.
void Hpet::arm(unsigned timer, uint64_t counter) {
  TimerState& t = state_.timers[timer];
  if (t.config & k32BitMode) {
    // Only the low 32 bits are compared, so a match comes around every 2^32 ticks.
    uint32_t delta = static_cast<uint32_t>(t.comparator) - static_cast<uint32_t>(counter);
    t.armed = counter + delta >= counter;
    t.nextMatch = counter + delta;
  } else {
    t.armed = t.comparator >= counter;  // a 64-bit counter does not wrap in practice
    t.nextMatch = t.comparator;
  }
}

void Hpet::fireDueTimers(Clock::time_point now) {
  if (!(state_.config & kEnable)) return;
  uint64_t counter = counterAt(now);
  for (unsigned i = 0; i < kTimers; ++i) {
    if (state_.timers[i].armed && state_.timers[i].nextMatch <= counter) fire(i, counter);
  }
  driveLines();
}

void Hpet::fire(unsigned timer, uint64_t counter) {
  TimerState& t = state_.timers[timer];
  if (t.config & kLevelTriggered) {
    state_.interruptStatus |= uint64_t{1} << timer;  // driveLines() asserts the line
  } else if (unsigned gsi = route(t.config); (t.config & kInterruptEnable) && routeAllowed(gsi) &&
                                             !(drivenGsis_ >> gsi & 1)) {
    interrupts_.setIrqLevel(gsi, true);
    interrupts_.setIrqLevel(gsi, false);
  }
  if (periodic(timer) && t.period != 0) {
    // Missed periods (a late host thread) are coalesced into this one interrupt.
    uint64_t periods = (counter - t.nextMatch) / t.period + 1;
    uint64_t advance;
    if (__builtin_mul_overflow(periods, t.period, &advance) ||
        __builtin_add_overflow(t.nextMatch, advance, &t.nextMatch)) {
      t.armed = false;
      return;
    }
    uint64_t width = t.config & k32BitMode ? 0xffffffff : ~uint64_t{0};
    t.comparator = (t.comparator + advance) & width;
  } else {
    arm(timer, counter + 1);  // one-shot: the next match is after a wrap, if ever
  }
}

void Hpet::driveLines(bool force) {
  uint32_t wanted = 0;
  if (state_.config & kEnable) {
    for (unsigned i = 0; i < kTimers; ++i) {
      uint64_t config = state_.timers[i].config;
      unsigned gsi = route(config);
      if ((config & kLevelTriggered) && (config & kInterruptEnable) && (state_.interruptStatus >> i & 1) &&
          routeAllowed(gsi)) {
        wanted |= 1u << gsi;
      }
    }
  }
  uint32_t changed = force ? kRouteCapability : wanted ^ drivenGsis_;
  drivenGsis_ = wanted;
  for (uint32_t bits = changed; bits != 0; bits &= bits - 1) {
    unsigned gsi = static_cast<unsigned>(std::countr_zero(bits));
    interrupts_.setIrqLevel(gsi, wanted >> gsi & 1);
  }
}

Hpet::State Hpet::saveState() const {
  std::lock_guard lock(mutex_);
  State saved = state_;
  saved.counter = counterAt(Clock::now());
  return saved;
}

void Hpet::restoreState(const State& state) {
  {
    std::lock_guard lock(mutex_);
    state_ = state;
    // A snapshot is as untrusted as the guest that wrote it: keep only meaningful bits.
    state_.config &= kEnable;
    state_.interruptStatus &= (1u << kTimers) - 1;
    for (unsigned i = 0; i < kTimers; ++i) {
      TimerState& t = state_.timers[i];
      t.config &= writableTimerBits(i);
      if (unsigned gsi = route(t.config); gsi != 0 && !routeAllowed(gsi)) t.config &= ~kRouteMask;
    }
    reference_ = Clock::now();
    driveLines(/*force=*/true);
  }
  wake_.notify_one();
}

void Hpet::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    Clock::time_point now = Clock::now();
    std::optional<Clock::time_point> deadline;
    try {
      fireDueTimers(now);
    } catch (...) {
      // The interrupt controller failed; the vCPUs will see the same failure and stop the VM.
    }
    if (state_.config & kEnable) {
      uint64_t counter = counterAt(now);
      for (unsigned i = 0; i < kTimers; ++i) {
        const TimerState& t = state_.timers[i];
        if (!t.armed) continue;
        uint64_t ticks = std::min(t.nextMatch > counter ? t.nextMatch - counter : 0, kMaximumWaitTicks);
        Clock::duration wait = std::chrono::nanoseconds(ticks * kNsPerTick);
        if (periodic(i)) wait = std::max<Clock::duration>(wait, kMinimumPeriodicWait);
        deadline = std::min(deadline.value_or(Clock::time_point::max()), now + wait);
      }
    }
    if (deadline) {
      wake_.wait_until(lock, *deadline);
    } else {
      wake_.wait(lock);
    }
  }
}

}  // namespace hyve
