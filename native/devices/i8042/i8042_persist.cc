// I8042::State in a snapshot, field by field (see snapshot/state_io.h).
#include "devices/i8042/i8042.h"

namespace hyve {

void I8042::State::save(snapshot::StateWriter& out) const {
  out.bytes("ram", ram);
  out.u8("outputPort", outputPort);
  out.u8("pendingCommand", pendingCommand);
  out.boolean("lastWriteWasCommand", lastWriteWasCommand);
  out.bytes("queueData", queueData);
  out.bytes("queueStatus", queueStatus);
  out.u8("queueHead", queueHead);
  out.u8("queueCount", queueCount);
  out.u8("lastData", lastData);
}

I8042::State I8042::State::load(snapshot::StateReader& in) {
  State s;
  in.bytes("ram", s.ram);
  s.outputPort = in.u8("outputPort");
  s.pendingCommand = in.u8("pendingCommand");
  s.lastWriteWasCommand = in.boolean("lastWriteWasCommand");
  in.bytes("queueData", s.queueData);
  in.bytes("queueStatus", s.queueStatus);
  s.queueHead = in.u8("queueHead", kQueueSize - 1);
  s.queueCount = in.u8("queueCount", kQueueSize);
  s.lastData = in.u8("lastData");
  return s;
}

}  // namespace hyve
