// Uart16550::State in a snapshot, field by field (see snapshot/state_io.h).
#include "devices/uart/uart_16550.h"

namespace hyve {

void Uart16550::State::save(snapshot::StateWriter& out) const {
  out.u8("dll", dll);
  out.u8("dlm", dlm);
  out.u8("ier", ier);
  out.u8("iir", iir);
  out.u8("fcr", fcr);
  out.u8("lcr", lcr);
  out.u8("mcr", mcr);
  out.u8("lsr", lsr);
  out.u8("msr", msr);
  out.u8("scr", scr);
  out.boolean("thrEmptyPending", thrEmptyPending);
  out.bytes("rxFifo", rxFifo);
  out.u8("rxHead", rxHead);
  out.u8("rxCount", rxCount);
}

Uart16550::State Uart16550::State::load(snapshot::StateReader& in) {
  State s;
  s.dll = in.u8("dll");
  s.dlm = in.u8("dlm");
  s.ier = in.u8("ier");
  s.iir = in.u8("iir");
  s.fcr = in.u8("fcr");
  s.lcr = in.u8("lcr");
  s.mcr = in.u8("mcr");
  s.lsr = in.u8("lsr");
  s.msr = in.u8("msr");
  s.scr = in.u8("scr");
  s.thrEmptyPending = in.boolean("thrEmptyPending");
  in.bytes("rxFifo", s.rxFifo);
  s.rxHead = in.u8("rxHead", kFifoSize - 1);
  s.rxCount = in.u8("rxCount", kFifoSize);
  return s;
}

}  // namespace hyve
