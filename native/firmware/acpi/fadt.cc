#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

#include "core/layout.h"
#include "util/error.h"

namespace hyve::firmware::acpi {
namespace {

// FADT flags (ACPI 6.4, table 5.10).
constexpr uint32_t kFlagWbinvd = 1u << 0;
constexpr uint32_t kFlagProcC1 = 1u << 2;
constexpr uint32_t kFlagPowerButtonNotFixed = 1u << 4;  // with no control-method device: no button
constexpr uint32_t kFlagSleepButtonNotFixed = 1u << 5;
constexpr uint32_t kFlagRtcWakeNotFixed = 1u << 6;      // FIX_RTC: no RTC_STS wake in PM1
constexpr uint32_t kFlagTimerValExt = 1u << 8;          // 32-bit PM timer
constexpr uint32_t kFlagResetRegSupported = 1u << 10;

// IA-PC boot architecture flags (table 5.11). Leaving out the 8042 flag makes Linux skip
// probing for a keyboard controller; leaving out "CMOS RTC not present" keeps the RTC.
constexpr uint16_t kBootArchVgaNotPresent = 1u << 2;

constexpr bool kPmTimerIs32Bit = false;  // devices/acpi_pm implements the 24-bit timer
constexpr uint8_t kResetValue = 0x06;    // CPU reset + system reset in the 0xcf9 register
constexpr uint16_t kNoC2 = 101;          // latencies above 100 / 1000 us mean "no C2 / no C3"
constexpr uint16_t kNoC3 = 1001;
constexpr uint8_t kMinorVersion = 4;     // FADT 6.4

constexpr uint8_t kPm1EvtLength = 4;
constexpr uint8_t kPm1CntLength = 2;
constexpr uint8_t kPmTmrLength = 4;
static_assert(kPm1EvtLength + kPm1CntLength + kPmTmrLength <= layout::kAcpiPmLength);

}  // namespace

std::vector<uint8_t> buildFadt(uint64_t dsdtAddress, uint64_t facsAddress) {
  if (dsdtAddress > UINT32_MAX || facsAddress > UINT32_MAX) {
    throw Error(ErrorCode::Internal, "FADT: DSDT and FACS must sit below 4 GiB");
  }
  ByteBuffer fadt = beginTable("FACP", 6);
  // The 32-bit FACS pointer only: ACPI 5.x forbids also setting X_FIRMWARE_CTRL.
  fadt.u32(static_cast<uint32_t>(facsAddress));
  fadt.u32(static_cast<uint32_t>(dsdtAddress));
  fadt.u8(0);  // reserved (ACPI 1.0 INT_MODEL)
  fadt.u8(0);  // preferred PM profile: unspecified
  fadt.u16(layout::kAcpiSciIrq);
  fadt.u32(0);  // SMI_CMD: none, the hardware is always in ACPI mode (SCI_EN reads 1)
  fadt.u8(0);   // ACPI_ENABLE
  fadt.u8(0);   // ACPI_DISABLE
  fadt.u8(0);   // S4BIOS_REQ
  fadt.u8(0);   // PSTATE_CNT
  fadt.u32(layout::kAcpiPm1aEvt);
  fadt.u32(0);  // PM1b_EVT_BLK
  fadt.u32(layout::kAcpiPm1aCnt);
  fadt.u32(0);  // PM1b_CNT_BLK
  fadt.u32(0);  // PM2_CNT_BLK
  fadt.u32(layout::kAcpiPmTimer);
  fadt.u32(0);  // GPE0_BLK
  fadt.u32(0);  // GPE1_BLK
  fadt.u8(kPm1EvtLength);
  fadt.u8(kPm1CntLength);
  fadt.u8(0);  // PM2_CNT_LEN
  fadt.u8(kPmTmrLength);
  fadt.u8(0);  // GPE0_BLK_LEN
  fadt.u8(0);  // GPE1_BLK_LEN
  fadt.u8(0);  // GPE1_BASE
  fadt.u8(0);  // CST_CNT
  fadt.u16(kNoC2);
  fadt.u16(kNoC3);
  fadt.u16(0);  // FLUSH_SIZE
  fadt.u16(0);  // FLUSH_STRIDE
  fadt.u8(0);   // DUTY_OFFSET
  fadt.u8(0);   // DUTY_WIDTH
  fadt.u8(0);   // DAY_ALRM: no day-of-month alarm
  fadt.u8(0);   // MON_ALRM
  fadt.u8(0x32);  // CENTURY: the CMOS RTC keeps the century in byte 0x32
  fadt.u16(kBootArchVgaNotPresent);
  fadt.u8(0);  // reserved
  fadt.u32(kFlagWbinvd | kFlagProcC1 | kFlagPowerButtonNotFixed | kFlagSleepButtonNotFixed |
           kFlagRtcWakeNotFixed | kFlagResetRegSupported | (kPmTimerIs32Bit ? kFlagTimerValExt : 0));
  appendGas(fadt, ioRegister(layout::kResetControlPort, 1, AccessSize::Byte));
  fadt.u8(kResetValue);
  fadt.u16(0);  // ARM_BOOT_ARCH
  fadt.u8(kMinorVersion);
  fadt.u64(0);  // X_FIRMWARE_CTRL
  fadt.u64(dsdtAddress);
  // The extended blocks repeat the 32-bit ones; OSes warn when widths and lengths disagree.
  appendGas(fadt, ioRegister(layout::kAcpiPm1aEvt, kPm1EvtLength, AccessSize::Word));
  appendGas(fadt, {});  // X_PM1b_EVT_BLK
  appendGas(fadt, ioRegister(layout::kAcpiPm1aCnt, kPm1CntLength, AccessSize::Word));
  appendGas(fadt, {});  // X_PM1b_CNT_BLK
  appendGas(fadt, {});  // X_PM2_CNT_BLK
  appendGas(fadt, ioRegister(layout::kAcpiPmTimer, kPmTmrLength, AccessSize::DWord));
  appendGas(fadt, {});  // X_GPE0_BLK
  appendGas(fadt, {});  // X_GPE1_BLK
  appendGas(fadt, {});  // SLEEP_CONTROL_REG: hardware-reduced only
  appendGas(fadt, {});  // SLEEP_STATUS_REG
  fadt.text("HYVE", 8, '\0');  // hypervisor vendor identity
  return finishTable(std::move(fadt));
}

}  // namespace hyve::firmware::acpi
