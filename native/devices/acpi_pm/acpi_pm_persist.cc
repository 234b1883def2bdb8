// AcpiPm::State and ResetControl::State in a snapshot, field by field (see snapshot/state_io.h).
#include "devices/acpi_pm/acpi_pm.h"
#include "devices/acpi_pm/reset_control.h"

namespace hyve {

void AcpiPm::State::save(snapshot::StateWriter& out) const {
  out.u16("pm1Status", pm1Status);
  out.u16("pm1Enable", pm1Enable);
  out.u16("pm1Control", pm1Control);
  out.u32("timerTicks", timerTicks);
}

AcpiPm::State AcpiPm::State::load(snapshot::StateReader& in) {
  State s;
  s.pm1Status = in.u16("pm1Status");
  s.pm1Enable = in.u16("pm1Enable");
  s.pm1Control = in.u16("pm1Control");
  s.timerTicks = in.u32("timerTicks", 0xffffff);  // a 24-bit counter
  return s;
}

void ResetControl::State::save(snapshot::StateWriter& out) const { out.u8("value", value); }

ResetControl::State ResetControl::State::load(snapshot::StateReader& in) {
  State s;
  s.value = in.u8("value");
  return s;
}

}  // namespace hyve
