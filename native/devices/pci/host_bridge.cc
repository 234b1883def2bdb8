#include "devices/pci/host_bridge.h"

namespace hyve {

namespace {

// Red Hat's 1b36:0008 ("QEMU PCIe Host bridge") is an ID allocated for virtual host bridges.
// Linux 6.1 keys nothing on it: no entry in drivers/pci/quirks.c, arch/x86/pci/ or
// arch/x86/kernel/early-quirks.c (which does poke Intel/AMD host bridges by device ID),
// and no driver binds it. A real chipset's ID (e.g. Intel 82441FX) would invite quirks
// that touch registers we do not emulate.
constexpr pci::Identity kIdentity{
    .vendorId = 0x1b36,
    .deviceId = 0x0008,
    .revision = 0,
    .classCode = 0x06,  // bridge
    .subclass = 0x00,   // host
    .progIf = 0,
    .subsystemVendorId = 0x1b36,
    .subsystemId = 0x0008,
};

}  // namespace

HostBridge::HostBridge() : PciDevice(kIdentity) {}

}  // namespace hyve
