// CmosRtc::State in a snapshot, field by field (see snapshot/state_io.h).
#include "devices/rtc/cmos_rtc.h"

namespace hyve {

namespace {
// CMOS holds years 0-9999 (with the century byte), so any offset a guest can set is far
// inside this; the bound keeps host time + offset from overflowing.
constexpr int64_t kMaxClockOffsetSeconds = 1'000'000'000'000;  // ~31,700 years
}  // namespace

void CmosRtc::State::save(snapshot::StateWriter& out) const {
  out.bytes("cmos", cmos);
  out.u8("index", index);
  out.boolean("nmiMasked", nmiMasked);
  out.i64("clockOffsetSeconds", clockOffsetSeconds);
}

CmosRtc::State CmosRtc::State::load(snapshot::StateReader& in) {
  State s;
  in.bytes("cmos", s.cmos);
  s.index = in.u8("index", static_cast<uint8_t>(s.cmos.size() - 1));
  s.nmiMasked = in.boolean("nmiMasked");
  s.clockOffsetSeconds = in.i64("clockOffsetSeconds", kMaxClockOffsetSeconds);
  return s;
}

}  // namespace hyve
