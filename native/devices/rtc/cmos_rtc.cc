#include "devices/rtc/cmos_rtc.h"

#include <algorithm>
#include <ctime>

#include "core/layout.h"
#include "util/seccomp.h"

namespace hyve {

namespace {

using std::chrono::nanoseconds;
using std::chrono::steady_clock;

// CMOS byte indices.
constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kSecondsAlarm = 0x01;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kMinutesAlarm = 0x03;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kHoursAlarm = 0x05;
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kRegisterA = 0x0a;
constexpr uint8_t kRegisterB = 0x0b;
constexpr uint8_t kRegisterC = 0x0c;
constexpr uint8_t kRegisterD = 0x0d;
constexpr uint8_t kCentury = 0x32;  // the FADT's CENTURY field should name this
// BIOS memory size bytes (little-endian).
constexpr uint8_t kBaseMemoryKiB = 0x15;
constexpr uint8_t kExtendedMemoryKiB = 0x17;
constexpr uint8_t kExtendedMemoryKiBCopy = 0x30;
constexpr uint8_t kMemoryAbove16MiB = 0x34;  // 64 KiB blocks
constexpr uint8_t kMemoryAbove4GiB = 0x5b;   // 64 KiB blocks, 3 bytes

constexpr uint8_t kAUpdateInProgress = 0x80;
constexpr uint8_t kARateMask = 0x0f;
constexpr uint8_t kAInitial = 0x26;  // 32.768 kHz time base, 1024 Hz periodic rate
constexpr uint8_t kBSet = 0x80;
constexpr uint8_t kBPeriodicEnable = 0x40;
constexpr uint8_t kBAlarmEnable = 0x20;
constexpr uint8_t kBUpdateEnable = 0x10;
constexpr uint8_t kBBinary = 0x04;
constexpr uint8_t kB24Hour = 0x02;
constexpr uint8_t kBInitial = kB24Hour;  // BCD, 24-hour, as PC firmware leaves it
constexpr uint8_t kCIrq = 0x80;
constexpr uint8_t kCPeriodic = 0x40;
constexpr uint8_t kCAlarm = 0x20;
constexpr uint8_t kCUpdate = 0x10;
constexpr uint8_t kDValidRam = 0x80;
constexpr uint8_t kHourPm = 0x80;
constexpr uint8_t kAlarmDontCare = 0xc0;

constexpr int64_t kNanosPerSecond = 1'000'000'000;
// UIP rises this long before each update, so a guest that waits for it to fall
// waits at most that long.
constexpr int64_t kUpdateInProgressNanos = 244'000;
// Wake slightly after a second boundary so the new second is surely visible.
constexpr nanoseconds kTickSlack{50'000};

constexpr std::array<uint8_t, 8> kTimeIndices = {kSeconds, kMinutes,    kHours, kDayOfWeek,
                                                 kDayOfMonth, kMonth, kYear, kCentury};

bool isTimeIndex(uint8_t index) {
  return std::find(kTimeIndices.begin(), kTimeIndices.end(), index) != kTimeIndices.end();
}

int64_t hostNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

int64_t hostSeconds() { return hostNanos() / kNanosPerSecond; }

void putLittleEndian(std::array<uint8_t, CmosRtc::kCmosSize>& cmos, uint8_t index, uint64_t value,
                     int bytes) {
  for (int i = 0; i < bytes; ++i) cmos[index + i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace

CmosRtc::CmosRtc(IrqLine irq, bool utc, uint64_t memoryBelow4G, uint64_t memoryAbove4G)
    : irq_(irq) {
  using namespace layout;
  auto& cmos = state_.cmos;
  cmos[kRegisterA] = kAInitial;
  cmos[kRegisterB] = kBInitial;
  cmos[kRegisterD] = kDValidRam;
  putLittleEndian(cmos, kBaseMemoryKiB, kLowRamEnd / KiB, 2);
  uint64_t extendedKiB = memoryBelow4G > MiB ? std::min<uint64_t>((memoryBelow4G - MiB) / KiB, 0xffff) : 0;
  putLittleEndian(cmos, kExtendedMemoryKiB, extendedKiB, 2);
  putLittleEndian(cmos, kExtendedMemoryKiBCopy, extendedKiB, 2);
  constexpr uint64_t kBlock = 64 * KiB;
  uint64_t above16M = memoryBelow4G > 16 * MiB ? std::min<uint64_t>((memoryBelow4G - 16 * MiB) / kBlock, 0xffff) : 0;
  putLittleEndian(cmos, kMemoryAbove16MiB, above16M, 2);
  putLittleEndian(cmos, kMemoryAbove4GiB, std::min<uint64_t>(memoryAbove4G / kBlock, 0xffffff), 3);

  // glibc reads the time zone file on the first gmtime_r/timegm too; do it now, during
  // setup, not on a vCPU thread whose seccomp filter forbids opening files.
  tzset();
  if (!utc) {
    time_t now = time(nullptr);
    std::tm local{};
    if (localtime_r(&now, &local)) state_.clockOffsetSeconds = local.tm_gmtoff;
  }
  timer_ = std::thread([this] {
    seccomp::confineThread("rtc");
    timerLoop();
  });
}

CmosRtc::~CmosRtc() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  timer_.join();
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    bool inRange = offset < kPortCount && i < kPortCount - offset;
    uint64_t port = offset + i;
    if (!inRange) {
      data[i] = 0xff;
    } else if (port == 0) {
      data[i] = static_cast<uint8_t>(state_.index | (state_.nmiMasked ? 0x80 : 0));
    } else {
      data[i] = readData();
    }
  }
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    if (offset >= kPortCount || i >= kPortCount - offset) continue;
    if (offset + i == 0) {
      state_.index = data[i] & 0x7f;
      state_.nmiMasked = data[i] & 0x80;
    } else {
      writeData(data[i]);
    }
  }
}

CmosRtc::State CmosRtc::saveState() const {
  std::lock_guard lock(mutex_);
  return state_;
}

void CmosRtc::restoreState(const State& state) {
  std::lock_guard lock(mutex_);
  state_ = state;
  state_.index &= 0x7f;
  state_.cmos[kRegisterD] = kDValidRam;
  ticking_ = false;
  nextPeriodic_.reset();
  rescheduleLocked();
  updateInterrupt(/*forceDrive=*/true);
}

uint8_t CmosRtc::readData() {
  auto& cmos = state_.cmos;
  uint8_t index = state_.index;
  if (isTimeIndex(index)) return (cmos[kRegisterB] & kBSet) ? cmos[index] : currentTimeByte(index);
  switch (index) {
    case kRegisterA:
      return static_cast<uint8_t>((cmos[kRegisterA] & ~kAUpdateInProgress) |
                                  (updateInProgress() ? kAUpdateInProgress : 0));
    case kRegisterC: {
      // Reading C acknowledges every pending flag and releases the IRQ.
      uint8_t flags = cmos[kRegisterC];
      cmos[kRegisterC] = 0;
      updateInterrupt();
      return flags;
    }
    case kRegisterD:
      return kDValidRam;
    default:
      return cmos[index];
  }
}

void CmosRtc::writeData(uint8_t value) {
  auto& cmos = state_.cmos;
  uint8_t index = state_.index;
  if (isTimeIndex(index)) {
    if (cmos[kRegisterB] & kBSet) {
      cmos[index] = value;  // taken into account when SET is released
    } else {
      setTimeRegister(index, value);
    }
    return;
  }
  switch (index) {
    case kRegisterA: {
      uint8_t oldRate = cmos[kRegisterA] & kARateMask;
      cmos[kRegisterA] = value & static_cast<uint8_t>(~kAUpdateInProgress);
      if ((value & kARateMask) != oldRate) {
        nextPeriodic_.reset();  // restart the periodic timer at the new rate
        rescheduleLocked();
      }
      break;
    }
    case kRegisterB:
      writeRegisterB(value);
      break;
    case kRegisterC:
    case kRegisterD:
      break;  // read-only
    default:
      cmos[index] = value;
      break;
  }
}

void CmosRtc::writeRegisterB(uint8_t value) {
  auto& cmos = state_.cmos;
  uint8_t old = cmos[kRegisterB];
  if (value & kBSet) value &= static_cast<uint8_t>(~kBUpdateEnable);  // SET clears UIE
  cmos[kRegisterB] = value;
  if ((value & kBSet) && !(old & kBSet)) {
    // Freeze: the guest now reads and writes the time bytes themselves.
    encodeTime(hostSeconds() + state_.clockOffsetSeconds, cmos);
  } else if (!(value & kBSet) && (old & kBSet)) {
    if (auto seconds = decodeTime(cmos)) state_.clockOffsetSeconds = *seconds - hostSeconds();
  }
  rescheduleLocked();
  updateInterrupt();
}

void CmosRtc::setTimeRegister(uint8_t index, uint8_t value) {
  // Changing one field of a running clock: take the current time, replace the
  // field, and move the offset so the clock shows the result.
  std::array<uint8_t, kCmosSize> image = state_.cmos;
  encodeTime(hostSeconds() + state_.clockOffsetSeconds, image);
  image[index] = value;
  if (auto seconds = decodeTime(image)) state_.clockOffsetSeconds = *seconds - hostSeconds();
}

uint8_t CmosRtc::currentTimeByte(uint8_t index) const {
  std::array<uint8_t, kCmosSize> image{};
  image[kRegisterB] = state_.cmos[kRegisterB];
  encodeTime(hostSeconds() + state_.clockOffsetSeconds, image);
  return image[index];
}

void CmosRtc::encodeTime(int64_t guestSeconds, std::array<uint8_t, kCmosSize>& bytes) const {
  std::tm tm{};
  time_t t = static_cast<time_t>(guestSeconds);
  if (!gmtime_r(&t, &tm)) tm = std::tm{};
  int hour = tm.tm_hour;
  uint8_t hourByte;
  if (state_.cmos[kRegisterB] & kB24Hour) {
    hourByte = encodeValue(hour);
  } else {
    int hour12 = hour % 12 == 0 ? 12 : hour % 12;
    hourByte = static_cast<uint8_t>(encodeValue(hour12) | (hour >= 12 ? kHourPm : 0));
  }
  int year = tm.tm_year + 1900;
  bytes[kSeconds] = encodeValue(tm.tm_sec);
  bytes[kMinutes] = encodeValue(tm.tm_min);
  bytes[kHours] = hourByte;
  bytes[kDayOfWeek] = encodeValue(tm.tm_wday + 1);  // 1 = Sunday
  bytes[kDayOfMonth] = encodeValue(tm.tm_mday);
  bytes[kMonth] = encodeValue(tm.tm_mon + 1);
  bytes[kYear] = encodeValue(year % 100);
  bytes[kCentury] = encodeValue(year / 100);
}

std::optional<int64_t> CmosRtc::decodeTime(const std::array<uint8_t, kCmosSize>& bytes) const {
  // Out-of-range fields (hostile or not) are left to timegm to normalise.
  int hour;
  if (state_.cmos[kRegisterB] & kB24Hour) {
    hour = decodeValue(bytes[kHours]);
  } else {
    hour = decodeValue(bytes[kHours] & static_cast<uint8_t>(~kHourPm)) % 12;
    if (bytes[kHours] & kHourPm) hour += 12;
  }
  std::tm tm{};
  tm.tm_sec = decodeValue(bytes[kSeconds]);
  tm.tm_min = decodeValue(bytes[kMinutes]);
  tm.tm_hour = hour;
  tm.tm_mday = decodeValue(bytes[kDayOfMonth]);
  tm.tm_mon = decodeValue(bytes[kMonth]) - 1;
  tm.tm_year = decodeValue(bytes[kCentury]) * 100 + decodeValue(bytes[kYear]) - 1900;
  time_t seconds = timegm(&tm);
  if (seconds == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(seconds);
}

uint8_t CmosRtc::encodeValue(int value) const {
  if (state_.cmos[kRegisterB] & kBBinary) return static_cast<uint8_t>(std::clamp(value, 0, 255));
  value = std::clamp(value, 0, 99);
  return static_cast<uint8_t>(((value / 10) << 4) | (value % 10));
}

int CmosRtc::decodeValue(uint8_t value) const {
  if (state_.cmos[kRegisterB] & kBBinary) return value;
  return (value >> 4) * 10 + (value & 0x0f);
}

bool CmosRtc::updateInProgress() const {
  if (state_.cmos[kRegisterB] & kBSet) return false;  // SET stops updates
  return hostNanos() % kNanosPerSecond >= kNanosPerSecond - kUpdateInProgressNanos;
}

void CmosRtc::raiseFlags(uint8_t flags) {
  state_.cmos[kRegisterC] |= flags;
  updateInterrupt();
}

void CmosRtc::updateInterrupt(bool forceDrive) {
  uint8_t b = state_.cmos[kRegisterB];
  uint8_t& c = state_.cmos[kRegisterC];
  bool irq = ((c & kCPeriodic) && (b & kBPeriodicEnable)) || ((c & kCAlarm) && (b & kBAlarmEnable)) ||
             ((c & kCUpdate) && (b & kBUpdateEnable));
  c = static_cast<uint8_t>((c & ~kCIrq) | (irq ? kCIrq : 0));
  if (irq != irqAsserted_ || forceDrive) {
    irqAsserted_ = irq;
    irq_.set(irq);
  }
}

std::optional<nanoseconds> CmosRtc::periodicInterval() const {
  int rate = state_.cmos[kRegisterA] & kARateMask;
  if (rate == 0) return std::nullopt;
  if (rate < 3) rate += 7;  // rates 1 and 2 repeat 8 and 9 on a 32.768 kHz time base
  return nanoseconds((int64_t{1} << (rate - 1)) * kNanosPerSecond / 32768);
}

void CmosRtc::rescheduleLocked() {
  uint8_t b = state_.cmos[kRegisterB];
  bool ticking = (b & (kBUpdateEnable | kBAlarmEnable)) && !(b & kBSet);
  // Start counting from the current second so enabling UIE/AIE delivers nothing stale.
  if (ticking && !ticking_) lastTickSecond_ = hostSeconds();
  ticking_ = ticking;
  auto interval = periodicInterval();
  if ((b & kBPeriodicEnable) && interval) {
    if (!nextPeriodic_) nextPeriodic_ = steady_clock::now() + *interval;
  } else {
    nextPeriodic_.reset();
  }
  wake_.notify_all();
}

std::optional<CmosRtc::SteadyTime> CmosRtc::nextDeadlineLocked() const {
  std::optional<SteadyTime> deadline = nextPeriodic_;
  if (ticking_) {
    int64_t toNextSecond = kNanosPerSecond - hostNanos() % kNanosPerSecond;
    SteadyTime tick = steady_clock::now() + nanoseconds(toNextSecond) + kTickSlack;
    if (!deadline || tick < *deadline) deadline = tick;
  }
  return deadline;
}

void CmosRtc::runDueEventsLocked() {
  auto& cmos = state_.cmos;
  uint8_t flags = 0;
  int64_t second = hostSeconds();
  if (ticking_ && second > lastTickSecond_) {
    lastTickSecond_ = second;
    flags |= kCUpdate;
    std::array<uint8_t, kCmosSize> now{};
    encodeTime(second + state_.clockOffsetSeconds, now);
    bool alarm = true;
    for (auto [alarmIndex, timeIndex] : {std::pair{kSecondsAlarm, kSeconds}, std::pair{kMinutesAlarm, kMinutes},
                                         std::pair{kHoursAlarm, kHours}}) {
      uint8_t wanted = cmos[alarmIndex];
      if ((wanted & kAlarmDontCare) != kAlarmDontCare && wanted != now[timeIndex]) alarm = false;
    }
    if (alarm) flags |= kCAlarm;
  }
  auto interval = periodicInterval();
  auto now = steady_clock::now();
  if (nextPeriodic_ && interval && now >= *nextPeriodic_) {
    flags |= kCPeriodic;
    auto missed = (now - *nextPeriodic_) / *interval;  // host stalls coalesce into one flag
    *nextPeriodic_ += *interval * (missed + 1);
  }
  if (flags) raiseFlags(flags);
}

void CmosRtc::timerLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    runDueEventsLocked();
    if (auto deadline = nextDeadlineLocked()) {
      wake_.wait_until(lock, *deadline);
    } else {
      wake_.wait(lock);
    }
  }
}

}  // namespace hyve
