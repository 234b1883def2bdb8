// What a device may ask of the machine as a whole: the guest's ways of ending the VM.
#pragma once

namespace hyve {

// Outcomes as xhyve/hyperkit report them in their exit status.
enum class ExitOutcome : int {
  Poweroff = 0,     // ACPI S5, or halt
  Error = 1,        // the VMM could not continue
  Reboot = 2,
  TripleFault = 3,
};

class MachineControl {
 public:
  virtual ~MachineControl() = default;
  // Stops every vCPU and ends the VM with `outcome`. Safe from any thread; the first request wins.
  virtual void requestExit(ExitOutcome outcome) = 0;
};

}  // namespace hyve
