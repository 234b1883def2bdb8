// ACPI fixed-hardware power management registers at layout::kAcpiPmBase, as the
// FADT describes them: PM1a event block (PM1_STS, PM1_EN), PM1a control block and
// the PM timer.
//
// The hardware is always in ACPI mode (SCI_EN reads 1), so the FADT needs no
// SMI_CMD and the guest never hands control over from "firmware". Sleeping with
// SLP_TYP = layout::kAcpiS5SleepType powers the machine off; other sleep states are
// ignored since the DSDT offers only \_S5.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>

#include "core/interrupts.h"
#include "core/io_bus.h"
#include "core/layout.h"
#include "core/machine_control.h"
#include "snapshot/state_io.h"

namespace hyve {

class AcpiPm : public BusDevice {
 public:
  static constexpr uint64_t kLength = layout::kAcpiPmLength;
  static constexpr uint32_t kTimerHz = 3'579'545;

  struct State {
    uint16_t pm1Status = 0;   // PM1_STS, write 1 to clear
    uint16_t pm1Enable = 0;   // PM1_EN
    uint16_t pm1Control = 1;  // PM1_CNT without the write-only bits; SCI_EN always set
    // PM timer value (24 bits) when the state was saved. The live counter runs from
    // the host's CLOCK_MONOTONIC; restoring continues from this value.
    uint32_t timerTicks = 0;
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  // `sci` (IRQ 9, level, active high in the MADT's override) is only raised by
  // pressPowerButton(); leave it unconnected if that is not used.
  explicit AcpiPm(MachineControl& machine, IrqLine sci = {});

  // Offsets relative to layout::kAcpiPmBase.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Sets PWRBTN_STS, as the fixed-feature power button would; a guest with PWRBTN_EN
  // set gets an SCI and (Linux, with acpid or systemd-logind) shuts down cleanly.
  void pressPowerButton();

  State saveState() const;
  void restoreState(const State& state);

 private:
  uint32_t timerNow() const;
  void updateSci(bool forceDrive = false);

  MachineControl& machine_;
  IrqLine sci_;
  bool sciAsserted_ = false;
  uint32_t timerOffset_ = 0;  // counter = host ticks + offset, modulo 2^24
  mutable std::mutex mutex_;
  State state_;
};

}  // namespace hyve
