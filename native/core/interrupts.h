// How devices raise interrupts, independent of the hypervisor backend.
#pragma once

#include <cstdint>

namespace hyve {

class InterruptController {
 public:
  virtual ~InterruptController() = default;
  // Drives a global system interrupt input (ISA IRQ n is GSI n, except IRQ0 → GSI 2).
  virtual void setIrqLevel(uint32_t gsi, bool high) = 0;
  // Delivers a message-signalled interrupt.
  virtual void signalMsi(uint64_t address, uint32_t data) = 0;
};

// One interrupt input of a device. Level-triggered devices call set(); edge-style
// devices (ISA) call pulse().
class IrqLine {
 public:
  IrqLine() = default;
  IrqLine(InterruptController* controller, uint32_t gsi) : controller_(controller), gsi_(gsi) {}
  void set(bool high) const {
    if (controller_) controller_->setIrqLevel(gsi_, high);
  }
  void pulse() const {
    set(true);
    set(false);
  }
  uint32_t gsi() const { return gsi_; }

 private:
  InterruptController* controller_ = nullptr;
  uint32_t gsi_ = 0;
};

}  // namespace hyve
