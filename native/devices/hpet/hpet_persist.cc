// Hpet::State in a snapshot, field by field (see snapshot/state_io.h).
#include "devices/hpet/hpet.h"

namespace hyve {

void Hpet::State::save(snapshot::StateWriter& out) const {
  out.u64("config", config);
  out.u64("interruptStatus", interruptStatus);
  out.u64("counter", counter);
  for (const TimerState& timer : timers) {
    out.u64("timerConfig", timer.config);
    out.u64("comparator", timer.comparator);
    out.u64("period", timer.period);
    out.u64("fsbRoute", timer.fsbRoute);
    out.u64("nextMatch", timer.nextMatch);
    out.boolean("armed", timer.armed);
  }
}

Hpet::State Hpet::State::load(snapshot::StateReader& in) {
  State s;
  s.config = in.u64("config");
  s.interruptStatus = in.u64("interruptStatus");
  s.counter = in.u64("counter");
  for (TimerState& timer : s.timers) {
    timer.config = in.u64("timerConfig");
    timer.comparator = in.u64("comparator");
    timer.period = in.u64("period");
    timer.fsbRoute = in.u64("fsbRoute");
    timer.nextMatch = in.u64("nextMatch");
    timer.armed = in.boolean("armed");
  }
  return s;
}

}  // namespace hyve
