#include "devices/uart/uart_16550.h"

#include <algorithm>
#include <utility>

namespace hyve {

namespace {

// Register offsets (DLAB selects DLL/DLM at offsets 0 and 1).
constexpr uint8_t kRbrThr = 0;
constexpr uint8_t kIer = 1;
constexpr uint8_t kIirFcr = 2;
constexpr uint8_t kLcr = 3;
constexpr uint8_t kMcr = 4;
constexpr uint8_t kLsr = 5;
constexpr uint8_t kMsr = 6;
constexpr uint8_t kScr = 7;

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;
// A 16550A has only these four; Linux tells an XScale UART by a writable bit 6.
constexpr uint8_t kIerMask = 0x0f;

constexpr uint8_t kIirNoInterrupt = 0x01;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirRxTimeout = 0x0c;
constexpr uint8_t kIirSourceMask = 0x0f;
// Both set when FIFOs are on: Linux's "16550A" verdict. Bit 5 (64-byte FIFO, 16750
// only) must stay clear or Linux takes the port for a TI16750.
constexpr uint8_t kIirFifosEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrDmaMode = 0x08;
constexpr uint8_t kFcrTriggerMask = 0xc0;
constexpr uint8_t kFcrStored = kFcrEnable | kFcrDmaMode | kFcrTriggerMask;
constexpr std::array<uint8_t, 4> kRxTriggerLevels = {1, 4, 8, 14};

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;  // bit 5 is the 16750's auto flow control

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrErrors = 0x1e;  // overrun, parity, framing, break: cleared by reading
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTxEmpty = 0x40;

constexpr uint8_t kMsrDeltaCts = 0x01;
constexpr uint8_t kMsrDeltaDsr = 0x02;
constexpr uint8_t kMsrTrailingRi = 0x04;
constexpr uint8_t kMsrDeltaDcd = 0x08;
constexpr uint8_t kMsrDeltas = 0x0f;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
constexpr uint8_t kMsrLines = 0xf0;

}  // namespace

Uart16550::Uart16550(IrqLine irq, OutputCallback onOutput, std::function<void()> onInputSpace)
    : irq_(irq), onOutput_(std::move(onOutput)), onInputSpace_(std::move(onInputSpace)) {
  state_.msr = modemStatusInputs();
}

size_t Uart16550::pushInput(std::span<const uint8_t> bytes) {
  size_t taken;
  {
    std::lock_guard lock(mutex_);
    taken = std::min(bytes.size(), inputSpaceLocked());
    for (size_t i = 0; i < taken; ++i) receiveByte(bytes[i]);
    if (taken < bytes.size()) inputWaiting_ = true;
    updateInterrupt();
  }
  return taken;
}

void Uart16550::read(uint64_t offset, std::span<uint8_t> data) {
  Deferred deferred;
  {
    std::lock_guard lock(mutex_);
    // A wide access touches consecutive registers, as two ISA byte cycles would.
    for (size_t i = 0; i < data.size(); ++i) {
      bool inRange = offset < kPortCount && i < kPortCount - offset;
      data[i] = inRange ? readRegister(static_cast<uint8_t>(offset + i)) : 0xff;
    }
    finishAccess(deferred);
  }
  runDeferred(deferred);
}

void Uart16550::write(uint64_t offset, std::span<const uint8_t> data) {
  Deferred deferred;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
      if (offset < kPortCount && i < kPortCount - offset) {
        writeRegister(static_cast<uint8_t>(offset + i), data[i], deferred);
      }
    }
    finishAccess(deferred);
  }
  runDeferred(deferred);
}

Uart16550::State Uart16550::saveState() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void Uart16550::restoreState(const State& state) {
  Deferred deferred;
  {
    std::lock_guard lock(mutex_);
    state_ = state;
    // Sanitise what would otherwise index out of bounds or confuse the IIR logic.
    state_.ier &= kIerMask;
    state_.mcr &= kMcrMask;
    state_.fcr &= kFcrStored;
    state_.rxHead %= kFifoSize;
    state_.rxCount = static_cast<uint8_t>(std::min<size_t>(state_.rxCount, rxCapacity()));
    updateInterrupt(/*forceDrive=*/true);
    finishAccess(deferred);
  }
  runDeferred(deferred);
}

uint8_t Uart16550::readRegister(uint8_t reg) {
  State& s = state_;
  bool dlab = s.lcr & kLcrDlab;
  switch (reg) {
    case kRbrThr:
      return dlab ? s.dll : popRxByte();
    case kIer:
      return dlab ? s.dlm : s.ier;
    case kIirFcr: {
      uint8_t iir = computeIir();
      // Reading the IIR acknowledges a THRE interrupt, but only if it is the one shown.
      if ((iir & kIirSourceMask) == kIirThrEmpty) s.thrEmptyPending = false;
      return iir;
    }
    case kLcr:
      return s.lcr;
    case kMcr:
      return s.mcr;
    case kLsr: {
      uint8_t lsr = s.lsr | kLsrThrEmpty | kLsrTxEmpty | (s.rxCount ? kLsrDataReady : 0);
      s.lsr &= static_cast<uint8_t>(~kLsrErrors);
      return lsr;
    }
    case kMsr: {
      uint8_t msr = s.msr;
      s.msr &= kMsrLines;
      return msr;
    }
    case kScr:
      return s.scr;
    default:
      return 0xff;
  }
}

void Uart16550::writeRegister(uint8_t reg, uint8_t value, Deferred& deferred) {
  State& s = state_;
  bool dlab = s.lcr & kLcrDlab;
  switch (reg) {
    case kRbrThr:
      if (dlab) {
        s.dll = value;
        break;
      }
      // The byte leaves at once, so the THR is empty again by the time the write ends.
      s.thrEmptyPending = true;
      if (s.mcr & kMcrLoop) {
        receiveByte(value);
      } else {
        deferred.hasOutput = true;
        deferred.output = value;
      }
      break;
    case kIer:
      if (dlab) {
        s.dlm = value;
        break;
      }
      // Enabling ETBEI while the THR is empty (it always is) raises THRE anew; Linux's
      // startup tests that a disable/enable cycle re-asserts it.
      if ((value & kIerThrEmpty) && !(s.ier & kIerThrEmpty)) s.thrEmptyPending = true;
      s.ier = value & kIerMask;
      break;
    case kIirFcr:
      writeFcr(value);
      break;
    case kLcr:
      s.lcr = value;
      break;
    case kMcr:
      writeMcr(value);
      break;
    case kScr:
      s.scr = value;
      break;
    default:  // LSR and MSR are read-only
      break;
  }
}

void Uart16550::writeFcr(uint8_t value) {
  State& s = state_;
  bool wasEnabled = s.fcr & kFcrEnable;
  if (!(value & kFcrEnable)) {
    // The other FCR bits only take effect together with the enable bit.
    if (wasEnabled) s.rxCount = 0;
    s.fcr = 0;
    return;
  }
  // Switching the FIFOs on discards what the holding register had.
  if (!wasEnabled || (value & kFcrClearRx)) s.rxCount = 0;
  s.fcr = value & kFcrStored;
}

void Uart16550::writeMcr(uint8_t value) {
  State& s = state_;
  s.mcr = value & kMcrMask;
  uint8_t before = s.msr & kMsrLines;
  uint8_t after = modemStatusInputs();
  uint8_t changed = before ^ after;
  uint8_t deltas = 0;
  if (changed & kMsrCts) deltas |= kMsrDeltaCts;
  if (changed & kMsrDsr) deltas |= kMsrDeltaDsr;
  if (changed & kMsrDcd) deltas |= kMsrDeltaDcd;
  if ((before & kMsrRi) && !(after & kMsrRi)) deltas |= kMsrTrailingRi;
  s.msr = after | (s.msr & kMsrDeltas) | deltas;
}

void Uart16550::receiveByte(uint8_t value) {
  State& s = state_;
  if (s.rxCount >= rxCapacity()) {
    s.lsr |= kLsrOverrun;
    // Without FIFOs the new character overwrites the unread one; with FIFOs it is lost.
    if (!(s.fcr & kFcrEnable) && s.rxCount > 0) s.rxFifo[s.rxHead] = value;
    return;
  }
  s.rxFifo[(s.rxHead + s.rxCount) % kFifoSize] = value;
  ++s.rxCount;
}

uint8_t Uart16550::popRxByte() {
  State& s = state_;
  if (s.rxCount == 0) return 0;
  uint8_t value = s.rxFifo[s.rxHead];
  s.rxHead = static_cast<uint8_t>((s.rxHead + 1) % kFifoSize);
  --s.rxCount;
  return value;
}

size_t Uart16550::rxCapacity() const { return (state_.fcr & kFcrEnable) ? kFifoSize : 1; }

size_t Uart16550::inputSpaceLocked() const {
  // In loopback the receiver listens to the transmitter, not to the outside world.
  if (state_.mcr & kMcrLoop) return 0;
  return rxCapacity() - std::min<size_t>(state_.rxCount, rxCapacity());
}

uint8_t Uart16550::modemStatusInputs() const {
  uint8_t mcr = state_.mcr;
  if (mcr & kMcrLoop) {
    // Loopback wires DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD (Linux checks 0x1a → 0x90).
    return static_cast<uint8_t>(((mcr & kMcrDtr) ? kMsrDsr : 0) | ((mcr & kMcrRts) ? kMsrCts : 0) |
                                ((mcr & kMcrOut1) ? kMsrRi : 0) | ((mcr & kMcrOut2) ? kMsrDcd : 0));
  }
  // A host endpoint is always "connected" and ready, so guests using carrier detect
  // or hardware flow control neither block on open nor stall output.
  return kMsrDcd | kMsrDsr | kMsrCts;
}

uint8_t Uart16550::computeIir() const {
  const State& s = state_;
  bool fifos = s.fcr & kFcrEnable;
  uint8_t fifoBits = fifos ? kIirFifosEnabled : 0;
  if ((s.ier & kIerLineStatus) && (s.lsr & kLsrErrors)) return fifoBits | kIirLineStatus;
  if ((s.ier & kIerRxData) && s.rxCount > 0) {
    // Below the trigger level a real 16550A reports a character timeout after four
    // character times; with no line timing to model it is reported straight away.
    bool belowTrigger = fifos && s.rxCount < kRxTriggerLevels[s.fcr >> 6];
    return fifoBits | (belowTrigger ? kIirRxTimeout : kIirRxData);
  }
  if ((s.ier & kIerThrEmpty) && s.thrEmptyPending) return fifoBits | kIirThrEmpty;
  if ((s.ier & kIerModemStatus) && (s.msr & kMsrDeltas)) return fifoBits | kIirModemStatus;
  return fifoBits | kIirNoInterrupt;
}

void Uart16550::updateInterrupt(bool forceDrive) {
  state_.iir = computeIir();
  // On a PC the interrupt reaches the bus only through the OUT2 pin, which loopback
  // forces inactive.
  bool gateOpen = (state_.mcr & kMcrOut2) && !(state_.mcr & kMcrLoop);
  bool level = gateOpen && !(state_.iir & kIirNoInterrupt);
  if (level != irqAsserted_ || forceDrive) {
    irqAsserted_ = level;
    irq_.set(level);
  }
}

void Uart16550::finishAccess(Deferred& deferred) {
  updateInterrupt();
  if (inputWaiting_ && inputSpaceLocked() > 0) {
    inputWaiting_ = false;
    deferred.notifySpace = true;
  }
}

void Uart16550::runDeferred(const Deferred& deferred) {
  if (deferred.hasOutput && onOutput_) onOutput_(std::span<const uint8_t>(&deferred.output, 1));
  if (deferred.notifySpace && onInputSpace_) onInputSpace_();
}

}  // namespace hyve
