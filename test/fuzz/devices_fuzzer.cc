// libFuzzer target: the platform devices' register interfaces, driven through the I/O
// buses as a guest drives them: the 16550 UART, the CMOS RTC, PCI configuration
// mechanism #1 (host bridge, LPC bridge) and the HPET, with a fake interrupt controller.
// Each 8-byte record of the input is one access: [target, size, offset (2), value (4)].
// After the accesses each device's state is saved, loaded back and restored: a state a
// guest can reach must be one a snapshot accepts. Built and run by scripts/fuzz.sh.
#include "core/io_bus.h"
#include "core/layout.h"
#include "devices/hpet/hpet.h"
#include "devices/pci/host_bridge.h"
#include "devices/pci/lpc_bridge.h"
#include "devices/pci/pci_bus.h"
#include "devices/rtc/cmos_rtc.h"
#include "devices/uart/uart_16550.h"
#include "snapshot/snapshottable.h"
#include "../native/fake_interrupts.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace hyve;

namespace {


// Saves the device, loads the bytes back and restores them.
template <typename Device>
void roundTrip(Device& device, const char* name) {
  snapshot::DeviceState<Device> section(name, device);
  snapshot::StateWriter out;
  section.save(out);
  std::vector<uint8_t> bytes = out.take();
  snapshot::StateReader in(bytes, name);
  section.restore(in);  // throws (and the fuzzer reports it) if a reachable state is refused
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("HYVE_SECCOMP", "off", 1);  // the HPET and RTC threads: this target is about registers
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  test::FakeInterrupts interrupts;
  IoBus pio, mmio;
  std::string output;
  Uart16550 uart(IrqLine(&interrupts, layout::kCom1Irq), [&](std::span<const uint8_t> bytes) {
    if (output.size() < 4096) output.append(bytes.begin(), bytes.end());
  });
  CmosRtc rtc(IrqLine(&interrupts, layout::kRtcIrq), true, 64ull << 20, 0);
  Hpet hpet(interrupts);
  PciBus pci(pio, mmio, interrupts);
  pci.addDevice(0, 0, std::make_unique<HostBridge>());
  pci.addDevice(31, 0, std::make_unique<LpcBridge>());
  pio.add(layout::kCom1Port, Uart16550::kPortCount, &uart, "com1");
  pio.add(layout::kRtcPort, CmosRtc::kPortCount, &rtc, "rtc");
  mmio.add(layout::kHpetBase, layout::kHpetSize, &hpet, "hpet");

  for (size_t at = 0; at + 8 <= size; at += 8) {
    const uint8_t* record = data + at;
    unsigned width = 1u << (record[1] & 3);  // 1, 2, 4 or 8 bytes
    uint16_t offset;
    std::memcpy(&offset, record + 2, 2);
    uint8_t value[8] = {};
    std::memcpy(value, record + 4, 4);
    std::memcpy(value + 4, record + 4, 4);
    bool write = record[1] & 4;
    uint64_t address;
    IoBus* bus = &pio;
    switch (record[0] % 5) {
      case 0: address = layout::kCom1Port + offset % Uart16550::kPortCount; break;
      case 1: address = layout::kRtcPort + offset % CmosRtc::kPortCount; break;
      case 2: address = layout::kPciConfigAddressPort + offset % 4; break;
      case 3: address = layout::kPciConfigDataPort + offset % 4; break;
      default: address = layout::kHpetBase + offset % layout::kHpetSize; bus = &mmio; break;
    }
    if (record[1] & 8) uart.pushInput({value, width});  // host input between accesses
    if (write) bus->write(address, {value, width});
    else bus->read(address, {value, width});
  }

  roundTrip(uart, "device:com1");
  roundTrip(rtc, "device:rtc");
  roundTrip(hpet, "device:hpet");
  roundTrip(pci, "device:pci");
  return 0;
}
