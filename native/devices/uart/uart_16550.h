// A 16550A UART as PC guests expect on COM1/COM2 (eight I/O ports).
//
// Transmission is instantaneous: every THR write goes straight to the host callback,
// so THRE/TEMT always read as set. Reception goes through a 16-byte RX FIFO that the
// host fills with pushInput(); input that does not fit stays with the caller, which
// is told through onInputSpace when the guest has made room, so nothing is dropped.
//
// The FIFO is 16 bytes, not 64, because that is what a 16550A has: Linux's
// autoconfig (with CONFIG_SERIAL_8250_16550A_VARIANTS) sizes the FIFO in loopback
// mode and would report a 64-byte one as a "U6_16550A". Throughput does not suffer:
// the guest's receive loop keeps reading while LSR.DR is set, and each read refills.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "core/interrupts.h"
#include "core/io_bus.h"
#include "snapshot/state_io.h"

namespace hyve {

class Uart16550 : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 8;
  static constexpr size_t kFifoSize = 16;

  // Guest-visible state. Register fields carry the 16550 datasheet names; `iir` is
  // the identification currently reported (recomputed after every access).
  struct State {
    uint8_t dll = 0x0c;  // 9600 baud, like a PC BIOS leaves it
    uint8_t dlm = 0;
    uint8_t ier = 0;
    uint8_t iir = 0x01;  // no interrupt pending
    uint8_t fcr = 0;     // FIFO enable, DMA mode and RX trigger bits as last written
    uint8_t lcr = 0;
    uint8_t mcr = 0;
    uint8_t lsr = 0;     // sticky error bits only; DR, THRE and TEMT are derived
    uint8_t msr = 0;     // modem status incl. delta bits
    uint8_t scr = 0;
    bool thrEmptyPending = false;  // THRE interrupt condition (see IIR rules)
    std::array<uint8_t, kFifoSize> rxFifo{};
    uint8_t rxHead = 0;   // index of the oldest byte
    uint8_t rxCount = 0;  // bytes held (at most 1 when FIFOs are disabled)
    void save(snapshot::StateWriter& out) const;
    // Throws Error(BadSnapshot) through `in` on a missing, reordered or out-of-range field.
    static State load(snapshot::StateReader& in);
  };

  using OutputCallback = std::function<void(std::span<const uint8_t>)>;

  // `onOutput` receives every byte the guest transmits (outside loopback), on the
  // vCPU thread that wrote it, without the device lock held.
  // `onInputSpace` is called (on a vCPU thread, without the device lock held) once
  // room appears after pushInput() could not take everything; it may call
  // pushInput() directly.
  Uart16550(IrqLine irq, OutputCallback onOutput, std::function<void()> onInputSpace = {});

  // Queues host input for the guest; returns how many leading bytes were taken.
  // Takes nothing while the guest has the port in loopback mode.
  size_t pushInput(std::span<const uint8_t> bytes);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  State saveState() const;
  void restoreState(const State& state);

 private:
  // What an access left for the caller to do once the lock is released.
  struct Deferred {
    bool hasOutput = false;
    uint8_t output = 0;
    bool notifySpace = false;
  };

  uint8_t readRegister(uint8_t reg);
  void writeRegister(uint8_t reg, uint8_t value, Deferred& deferred);
  void writeFcr(uint8_t value);
  void writeMcr(uint8_t value);
  void receiveByte(uint8_t value);  // into the RX FIFO, flagging overrun when full
  uint8_t popRxByte();
  size_t rxCapacity() const;
  size_t inputSpaceLocked() const;
  uint8_t modemStatusInputs() const;
  uint8_t computeIir() const;
  void updateInterrupt(bool forceDrive = false);
  void finishAccess(Deferred& deferred);  // decides on notifications; lock held
  void runDeferred(const Deferred& deferred);  // lock released

  IrqLine irq_;
  OutputCallback onOutput_;
  std::function<void()> onInputSpace_;
  bool irqAsserted_ = false;   // last level driven, to avoid redundant set() calls
  bool inputWaiting_ = false;  // pushInput() turned bytes away since last notification
  mutable std::mutex mutex_;
  State state_;
};

}  // namespace hyve
