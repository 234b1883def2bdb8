#include "firmware/acpi/aml.h"
#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

#include "core/layout.h"
#include "util/error.h"

#include <string>

namespace hyve::firmware::acpi {
namespace {

using aml::Bytes;
using aml::Polarity;
using aml::ResourceTemplate;
using aml::Sharing;
using aml::Trigger;

// PCI host bridge 0 (config mechanism #1). It has no _ADR: the spec wants _HID or _ADR
// on a device, not both, and iasl warns about the pair.
Bytes pciHostBridge(const PciIntxRouting& routing) {
  // The bridge consumes the config address and data ports (0xcf8-0xcff) and passes the rest
  // of the I/O space on.
  constexpr uint16_t kConfigPorts = 8;
  static_assert(layout::kPciConfigDataPort + 4 == layout::kPciConfigAddressPort + kConfigPorts);
  ResourceTemplate resources;
  resources.wordBusNumber(0x00, 0xff)
      .io(layout::kPciConfigAddressPort, layout::kPciConfigAddressPort, 1, kConfigPorts)
      .wordIo(0x0000, layout::kPciConfigAddressPort - 1)
      .wordIo(layout::kPciConfigAddressPort + kConfigPorts, 0xffff)
      .dwordMemory(static_cast<uint32_t>(layout::kPciMmioStart), static_cast<uint32_t>(layout::kPciMmioEnd - 1),
                   aml::Cacheability::NonCacheable, true);

  // _PRT entries: {address 0xSSSSFFFF (any function of slot S), pin, source 0 = "the index
  // is a GSI", GSI}. Linux assumes level, active-low for GSIs routed this way.
  std::vector<Bytes> routes;
  for (uint32_t slot = 0; slot < kPciSlots; ++slot) {
    for (uint32_t pin = 0; pin < kPciIntxPins; ++pin) {
      uint32_t gsi = routing(slot, pin);
      if (gsi >= layout::kIoapicPins) {
        throw Error(ErrorCode::Internal, "PCI INTx routing gives GSI " + std::to_string(gsi) + " past the IOAPIC");
      }
      routes.push_back(aml::package({aml::integer((uint64_t{slot} << 16) | 0xffff), aml::integer(pin),
                                     aml::integer(0), aml::integer(gsi)}));
    }
  }

  return aml::device("PCI0", {
                                 aml::name("_HID", aml::eisaId("PNP0A03")),
                                 aml::name("_BBN", aml::integer(0)),
                                 aml::name("_UID", aml::integer(0)),
                                 aml::name("_CRS", resources.build()),
                                 aml::name("_PRT", aml::package(routes)),
                             });
}

Bytes serialPort(std::string_view deviceName, uint32_t uid, uint16_t port, uint8_t irq) {
  constexpr uint8_t kUartPorts = 8;
  return aml::device(deviceName,
                     {
                         aml::name("_HID", aml::eisaId("PNP0501")),  // 16550A-compatible
                         aml::name("_UID", aml::integer(uid)),
                         aml::name("_CRS", ResourceTemplate()
                                               .io(port, port, 1, kUartPorts)
                                               .irq(irq, Trigger::Edge, Polarity::ActiveHigh, Sharing::Exclusive)
                                               .build()),
                     });
}

Bytes rtc() {
  constexpr uint8_t kRtcPorts = 2;  // index and data
  return aml::device("RTC", {
                                aml::name("_HID", aml::eisaId("PNP0B00")),
                                aml::name("_CRS", ResourceTemplate()
                                                      .io(layout::kRtcPort, layout::kRtcPort, 1, kRtcPorts)
                                                      .irq(layout::kRtcIrq, Trigger::Edge, Polarity::ActiveHigh,
                                                           Sharing::Exclusive)
                                                      .build()),
                            });
}

Bytes hpet() {
  return aml::device("HPET", {
                                 aml::name("_HID", aml::eisaId("PNP0103")),
                                 aml::name("_CRS", ResourceTemplate()
                                                       .memory32Fixed(static_cast<uint32_t>(layout::kHpetBase),
                                                                      static_cast<uint32_t>(layout::kHpetSize), true)
                                                       .build()),
                             });
}

}  // namespace

std::vector<uint8_t> buildDsdt(const PciIntxRouting& routing, uint8_t s5SleepType) {
  // Revision 2: AML integers are 64 bits wide.
  ByteBuffer dsdt = beginTable("DSDT", 2);
  dsdt.append(aml::scope("\\_SB", {
                                     pciHostBridge(routing),
                                     serialPort("COM1", 1, layout::kCom1Port, layout::kCom1Irq),
                                     serialPort("COM2", 2, layout::kCom2Port, layout::kCom2Irq),
                                     rtc(),
                                     hpet(),
                                 }));
  // SLP_TYPa, SLP_TYPb, reserved, reserved: the value the OS writes to PM1_CNT to power off.
  dsdt.append(aml::name("\\_S5", aml::package({aml::integer(s5SleepType), aml::integer(s5SleepType),
                                               aml::integer(0), aml::integer(0)})));
  return finishTable(std::move(dsdt));
}

}  // namespace hyve::firmware::acpi
