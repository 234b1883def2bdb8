#include "devices/i8042/i8042.h"

namespace hyve {

namespace {

constexpr uint64_t kDataOffset = 0;
constexpr uint64_t kCommandOffset = 4;

// Status register.
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusLastWasCommand = 0x08;
constexpr uint8_t kStatusUnlocked = 0x10;  // keyboard not inhibited by the key lock
constexpr uint8_t kStatusAuxData = 0x20;
constexpr uint8_t kStatusTimeout = 0x40;

// Command byte (CTR).
constexpr uint8_t kCtrKeyboardInterrupt = 0x01;
constexpr uint8_t kCtrAuxInterrupt = 0x02;
constexpr uint8_t kCtrSystemFlag = 0x04;
constexpr uint8_t kCtrKeyboardDisabled = 0x10;
constexpr uint8_t kCtrAuxDisabled = 0x20;
constexpr uint8_t kCtrTranslate = 0x40;
// As firmware leaves it: POST passed, translation on, mouse port off.
constexpr uint8_t kCtrInitial = kCtrKeyboardInterrupt | kCtrSystemFlag | kCtrAuxDisabled | kCtrTranslate;

// Output port.
constexpr uint8_t kOutputPortResetHigh = 0x01;  // low = CPU held in reset
constexpr uint8_t kOutputPortA20 = 0x02;

// Controller commands.
constexpr uint8_t kCmdReadRamFirst = 0x20;  // 0x20 reads the CTR
constexpr uint8_t kCmdReadRamLast = 0x3f;
constexpr uint8_t kCmdWriteRamFirst = 0x60;  // 0x60 writes the CTR
constexpr uint8_t kCmdWriteRamLast = 0x7f;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKeyboard = 0xab;
constexpr uint8_t kCmdDisableKeyboard = 0xad;
constexpr uint8_t kCmdEnableKeyboard = 0xae;
constexpr uint8_t kCmdReadInputPort = 0xc0;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKeyboardBuffer = 0xd2;
constexpr uint8_t kCmdWriteAuxBuffer = 0xd3;
constexpr uint8_t kCmdWriteAux = 0xd4;
constexpr uint8_t kCmdDisableA20 = 0xdd;
constexpr uint8_t kCmdEnableA20 = 0xdf;
constexpr uint8_t kCmdReadTestInputs = 0xe0;
constexpr uint8_t kCmdPulseFirst = 0xf0;  // pulse output-port bits 0-3 that are 0 in the command

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceTestPassed = 0x00;
constexpr uint8_t kInputPortValue = 0xa0;  // keyboard not inhibited, no jumpers
constexpr uint8_t kNoDeviceReply = 0xfe;

}  // namespace

I8042::I8042(MachineControl& machine, IrqLine keyboardIrq, IrqLine auxIrq)
    : machine_(machine), keyboardIrq_(keyboardIrq), auxIrq_(auxIrq) {
  state_.ram[0] = kCtrInitial;
  state_.outputPort = kOutputPortResetHigh | kOutputPortA20;
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    // Only the first byte of a wide access lands on a port: 0x60/0x64 are byte ports.
    if (i == 0 && offset == kDataOffset) {
      data[i] = readData();
    } else if (i == 0 && offset == kCommandOffset) {
      data[i] = readStatus();
    } else {
      data[i] = 0xff;
    }
  }
  updateInterrupts();
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    if (!data.empty() && offset == kDataOffset) reset = writeData(data[0]);
    if (!data.empty() && offset == kCommandOffset) reset = writeCommand(data[0]);
    updateInterrupts();
  }
  // Outside the lock: ending the machine may wait on vCPU threads that want it.
  if (reset) machine_.requestExit(ExitOutcome::Reboot);
}

I8042::State I8042::saveState() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void I8042::restoreState(const State& state) {
  std::lock_guard lock(mutex_);
  state_ = state;
  state_.queueHead %= kQueueSize;
  if (state_.queueCount > kQueueSize) state_.queueCount = kQueueSize;
  updateInterrupts(/*forceDrive=*/true);
}

void I8042::Port::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset == 0) {
    owner_.read(offset_, data);
  } else {
    for (auto& byte : data) byte = 0xff;
  }
}

void I8042::Port::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 0) owner_.write(offset_, data);
}

uint8_t I8042::readStatus() const {
  const State& s = state_;
  uint8_t status = kStatusUnlocked;
  if (s.ram[0] & kCtrSystemFlag) status |= kStatusSystemFlag;
  if (s.lastWriteWasCommand) status |= kStatusLastWasCommand;
  if (s.queueCount > 0) status |= kStatusOutputFull | s.queueStatus[s.queueHead];
  // Input is consumed at once, so the input-buffer-full bit never shows.
  return status;
}

uint8_t I8042::readData() {
  State& s = state_;
  if (s.queueCount == 0) return s.lastData;
  s.lastData = s.queueData[s.queueHead];
  s.queueHead = static_cast<uint8_t>((s.queueHead + 1) % kQueueSize);
  --s.queueCount;
  return s.lastData;
}

void I8042::enqueue(uint8_t value, uint8_t status) {
  State& s = state_;
  if (s.queueCount >= kQueueSize) return;  // a guest that never reads loses the newest
  size_t slot = (s.queueHead + s.queueCount) % kQueueSize;
  s.queueData[slot] = value;
  s.queueStatus[slot] = status & (kStatusAuxData | kStatusTimeout);
  ++s.queueCount;
}

bool I8042::writeCommand(uint8_t command) {
  State& s = state_;
  s.lastWriteWasCommand = true;
  s.pendingCommand = 0;  // a new command abandons one still waiting for its parameter
  uint8_t& ctr = s.ram[0];
  if (command >= kCmdReadRamFirst && command <= kCmdReadRamLast) {
    enqueue(s.ram[command - kCmdReadRamFirst], 0);
    return false;
  }
  if (command >= kCmdWriteRamFirst && command <= kCmdWriteRamLast) {
    s.pendingCommand = command;
    return false;
  }
  if (command >= kCmdPulseFirst) {
    // Bits 0-3 clear in the command are pulsed low; bit 0 is the CPU reset line.
    return !(command & kOutputPortResetHigh);
  }
  switch (command) {
    case kCmdDisableAux:
      ctr |= kCtrAuxDisabled;
      break;
    case kCmdEnableAux:
      ctr &= static_cast<uint8_t>(~kCtrAuxDisabled);
      break;
    case kCmdTestAux:
    case kCmdTestKeyboard:
      enqueue(kInterfaceTestPassed, 0);
      break;
    case kCmdSelfTest:
      enqueue(kSelfTestPassed, 0);
      break;
    case kCmdDisableKeyboard:
      ctr |= kCtrKeyboardDisabled;
      break;
    case kCmdEnableKeyboard:
      ctr &= static_cast<uint8_t>(~kCtrKeyboardDisabled);
      break;
    case kCmdReadInputPort:
      enqueue(kInputPortValue, 0);
      break;
    case kCmdReadOutputPort:
      enqueue(s.outputPort, 0);
      break;
    case kCmdWriteOutputPort:
    case kCmdWriteKeyboardBuffer:
    case kCmdWriteAuxBuffer:
    case kCmdWriteAux:
      s.pendingCommand = command;
      break;
    case kCmdDisableA20:
      s.outputPort &= static_cast<uint8_t>(~kOutputPortA20);
      break;
    case kCmdEnableA20:
      s.outputPort |= kOutputPortA20;
      break;
    case kCmdReadTestInputs:
      enqueue(0, 0);
      break;
    default:
      break;  // unknown or vendor-specific: ignored
  }
  return false;
}

bool I8042::writeData(uint8_t value) {
  State& s = state_;
  s.lastWriteWasCommand = false;
  uint8_t command = s.pendingCommand;
  s.pendingCommand = 0;
  if (command >= kCmdWriteRamFirst && command <= kCmdWriteRamLast) {
    s.ram[command - kCmdWriteRamFirst] = value;
    return false;
  }
  switch (command) {
    case kCmdWriteOutputPort:
      s.outputPort = value;
      return !(value & kOutputPortResetHigh);
    case kCmdWriteKeyboardBuffer:
      enqueue(value, 0);
      break;
    case kCmdWriteAuxBuffer:
      enqueue(value, kStatusAuxData);
      break;
    case kCmdWriteAux:
      enqueue(kNoDeviceReply, kStatusAuxData | kStatusTimeout);  // no mouse
      break;
    default:
      enqueue(kNoDeviceReply, kStatusTimeout);  // a byte for the keyboard, which is absent
      break;
  }
  return false;
}

void I8042::updateInterrupts(bool forceDrive) {
  const State& s = state_;
  bool full = s.queueCount > 0;
  bool aux = full && (s.queueStatus[s.queueHead] & kStatusAuxData);
  bool keyboardLevel = full && !aux && (s.ram[0] & kCtrKeyboardInterrupt);
  bool auxLevel = aux && (s.ram[0] & kCtrAuxInterrupt);
  if (keyboardLevel != keyboardIrqAsserted_ || forceDrive) {
    keyboardIrqAsserted_ = keyboardLevel;
    keyboardIrq_.set(keyboardLevel);
  }
  if (auxLevel != auxIrqAsserted_ || forceDrive) {
    auxIrqAsserted_ = auxLevel;
    auxIrq_.set(auxLevel);
  }
}

}  // namespace hyve
