#include "devices/pci/lpc_bridge.h"

namespace hyve {

namespace {

// Intel 82371SB PIIX3 function 0 (8086:7000), the ISA bridge bhyve and QEMU's i440FX
// machine also present. In Linux 6.1 its quirks are harmless here: quirk_isa_dma_hangs is
// 32-bit only and just sets a flag, quirk_passive_release only runs when an 82441 host
// bridge is present (ours is not), and the PIIX PIRQ router in arch/x86/pci/irq.c is only
// probed with a $PIR table, which we do not provide (interrupts are routed by ACPI/MP table).
// No driver binds function 0 (ata_piix wants function 1). Newer ICH LPC IDs would trigger
// quirks that read ACPI/GPIO base registers from config space.
constexpr pci::Identity kIdentity{
    .vendorId = 0x8086,
    .deviceId = 0x7000,
    .revision = 0,
    .classCode = 0x06,  // bridge
    .subclass = 0x01,   // ISA
    .progIf = 0,
    .subsystemVendorId = 0,
    .subsystemId = 0,
};

}  // namespace

LpcBridge::LpcBridge() : PciDevice(kIdentity) {}

}  // namespace hyve
