// The PC keyboard controller (8042) at ports 0x60 (data) and 0x64 (status/command),
// with no keyboard or mouse behind it. It exists so that guests find a sane
// controller and so that its reset line (command 0xFE, or an output-port write with
// bit 0 clear) reboots the machine.
//
// Bytes sent to the (absent) devices are answered with 0xFE and the timeout status
// bit, so drivers give up on them quickly. IRQ 1 and 12 are optional: without them
// Linux's AUX-port probe waits 250 ms for IRQ 12 before deciding there is no mouse
// port (i8042.noaux on the command line skips that).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>

#include "core/interrupts.h"
#include "core/io_bus.h"
#include "core/machine_control.h"
#include "snapshot/state_io.h"

namespace hyve {

class I8042 : public BusDevice {
 public:
  // As one BusDevice the controller spans 0x60-0x64 (layout::kI8042DataPort, this
  // length); offsets 1-3 are not its own. Register dataPort()/commandPort() with
  // length 1 each instead when something else serves port 0x61.
  static constexpr uint64_t kPortSpan = 5;
  static constexpr size_t kQueueSize = 16;  // Linux's i8042_flush gives up beyond 16
  static constexpr size_t kRamSize = 32;

  struct State {
    std::array<uint8_t, kRamSize> ram{};  // controller RAM; byte 0 is the command byte (CTR)
    uint8_t outputPort = 0;
    uint8_t pendingCommand = 0;  // command waiting for its parameter byte; 0 if none
    bool lastWriteWasCommand = false;
    // Bytes waiting in the output buffer, with the status bits (AUX data, timeout)
    // that accompany each.
    std::array<uint8_t, kQueueSize> queueData{};
    std::array<uint8_t, kQueueSize> queueStatus{};
    uint8_t queueHead = 0;
    uint8_t queueCount = 0;
    uint8_t lastData = 0;  // what port 0x60 reads when the buffer is empty
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  explicit I8042(MachineControl& machine, IrqLine keyboardIrq = {}, IrqLine auxIrq = {});
  I8042(const I8042&) = delete;
  I8042& operator=(const I8042&) = delete;

  // Offsets relative to layout::kI8042DataPort.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  BusDevice& dataPort() { return dataPort_; }
  BusDevice& commandPort() { return commandPort_; }

  State saveState() const;
  void restoreState(const State& state);

 private:
  // One of the two ports as a device of its own.
  class Port : public BusDevice {
   public:
    Port(I8042& owner, uint64_t offset) : owner_(owner), offset_(offset) {}
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

   private:
    I8042& owner_;
    uint64_t offset_;
  };

  uint8_t readStatus() const;
  uint8_t readData();
  // Return true if the write asks for a reset.
  bool writeCommand(uint8_t command);
  bool writeData(uint8_t value);
  void enqueue(uint8_t value, uint8_t status);
  void updateInterrupts(bool forceDrive = false);

  MachineControl& machine_;
  IrqLine keyboardIrq_;
  IrqLine auxIrq_;
  bool keyboardIrqAsserted_ = false;
  bool auxIrqAsserted_ = false;
  Port dataPort_{*this, 0};
  Port commandPort_{*this, 4};
  mutable std::mutex mutex_;
  State state_;
};

}  // namespace hyve
