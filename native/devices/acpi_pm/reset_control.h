// The reset control register at port 0xCF9 (layout::kResetControlPort), as on
// Intel ICH/PCH chipsets; the FADT's RESET_REG points here with RESET_VALUE 0x06.
//
// Any reset the guest asks for (soft: RST_CPU alone; hard: with SYS_RST; power
// cycle: with FULL_RST) ends the VM with ExitOutcome::Reboot. There is no firmware
// to re-run, so a CPU-only soft reset cannot be honoured any other way.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>

#include "core/io_bus.h"
#include "core/machine_control.h"
#include "snapshot/state_io.h"

namespace hyve {

class ResetControl : public BusDevice {
 public:
  static constexpr uint64_t kLength = 1;

  struct State {
    uint8_t value = 0;  // SYS_RST and FULL_RST as last written
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  explicit ResetControl(MachineControl& machine) : machine_(machine) {}

  // Register at layout::kResetControlPort with length 1. The port sits inside the
  // PCI configuration address register; that device claims only 0xCF8, so dword
  // accesses at 0xCF8 stay PCI's and byte accesses at 0xCF9 come here, as on chipsets.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  State saveState() const;
  void restoreState(const State& state);

 private:
  MachineControl& machine_;
  mutable std::mutex mutex_;
  State state_;
};

}  // namespace hyve
