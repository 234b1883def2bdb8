// libFuzzer target: the snapshot reader. The input is a state.bin: readStateFile() checks
// its container (magic, versions, header, section lengths, caps), then each platform
// device's section is restored into a freshly built device, field by field with the
// validation a restore does. Whatever the input, the result is a restored device or
// hyve::Error(BadSnapshot); UBSan catches invalid enum/bool fields and overflows. Built
// with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so checksums do not stop mutations.
// Built and run by scripts/fuzz.sh; the seed is a real state.bin (test/fuzz/corpus/snapshot/).
#include "core/io_bus.h"
#include "core/layout.h"
#include "core/machine_control.h"
#include "devices/acpi_pm/acpi_pm.h"
#include "devices/acpi_pm/reset_control.h"
#include "devices/hpet/hpet.h"
#include "devices/i8042/i8042.h"
#include "devices/pci/host_bridge.h"
#include "devices/pci/lpc_bridge.h"
#include "devices/pci/pci_bus.h"
#include "devices/rtc/cmos_rtc.h"
#include "devices/uart/uart_16550.h"
#include "snapshot/snapshot_file.h"
#include "snapshot/snapshottable.h"
#include "util/error.h"
#include "../native/fake_interrupts.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace hyve;

namespace {

class NoMachine final : public MachineControl {
 public:
  void requestExit(ExitOutcome) override {}
};

const std::string& snapshotDir() {
  static std::string dir = [] {
    char templ[] = "/tmp/hyve-fuzz-snapshot-XXXXXX";
    if (!::mkdtemp(templ)) __builtin_trap();
    return std::string(templ);
  }();
  return dir;
}

template <typename Device>
void restore(Device& device, const snapshot::Section& section) {
  snapshot::DeviceState<Device> state(section.name, device);
  snapshot::StateReader in(section.data, section.name);
  state.restore(in);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("HYVE_SECCOMP", "off", 1);  // the HPET and RTC threads: this target is about parsing
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = snapshotDir() + "/state.bin";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, data, size) != static_cast<ssize_t>(size)) __builtin_trap();
  ::close(fd);
  try {
    snapshot::StateFile file = snapshot::readStateFile(snapshotDir());
    test::FakeInterrupts interrupts;
    NoMachine machine;
    IoBus pio, mmio;
    Uart16550 uart(IrqLine(&interrupts, layout::kCom1Irq), [](std::span<const uint8_t>) {});
    CmosRtc rtc(IrqLine(&interrupts, layout::kRtcIrq), true, 64ull << 20, 0);
    Hpet hpet(interrupts);
    I8042 i8042(machine);
    AcpiPm acpiPm(machine);
    ResetControl reset(machine);
    PciBus pci(pio, mmio, interrupts);
    PciDevice& hostBridge = pci.addDevice(0, 0, std::make_unique<HostBridge>());
    PciDevice& lpc = pci.addDevice(31, 0, std::make_unique<LpcBridge>());
    for (const snapshot::Section& section : file.sections) {
      const std::string& name = section.name;
      try {
        if (name == "device:com1" || name == "device:com2") restore(uart, section);
        else if (name == "device:rtc") restore(rtc, section);
        else if (name == "device:hpet") restore(hpet, section);
        else if (name == "device:i8042") restore(i8042, section);
        else if (name == "device:acpi-pm") restore(acpiPm, section);
        else if (name == "device:reset-control") restore(reset, section);
        else if (name == "device:pci-bus") restore(pci, section);
        else if (name == "device:pci-00:00.0:hostbridge") restore(hostBridge, section);
        else if (name == "device:pci-00:1f.0:lpc") restore(lpc, section);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::BadSnapshot) __builtin_trap();
      }
    }
  } catch (const Error& e) {
    if (e.code() != ErrorCode::BadSnapshot) __builtin_trap();
  }
  return 0;
}
