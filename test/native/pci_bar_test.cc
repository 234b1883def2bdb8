#include "core/io_bus.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_device.h"
#include "fake_interrupts.h"

#include <doctest/doctest.h>


namespace hyve {
namespace {

// A function with one BAR of each kind, as a device would declare them.
class BarDevice final : public PciDevice {
 public:
  BarDevice() : PciDevice(pci::Identity{.vendorId = 0x1234,
                                               .deviceId = 0x5678,
                                               .revision = 0,
                                               .classCode = 0xff,
                                               .subclass = 0,
                                               .progIf = 0,
                                               .subsystemVendorId = 0,
                                               .subsystemId = 0}) {
    addIoBar(0, 32);
    addMemoryBar(1, 0x1000, /*is64Bit=*/false, /*prefetchable=*/false);
    addMemoryBar(2, 0x100000, /*is64Bit=*/true, /*prefetchable=*/true);  // BARs 2 and 3
  }
};

struct Rig {
  IoBus pio, mmio;
  test::FakeInterrupts interrupts;
  PciBus bus{pio, mmio, interrupts};

  Rig() { bus.addDevice(3, 0, std::make_unique<BarDevice>()); }

  // Configuration mechanism #1, as a guest does it.
  void select(uint32_t offset) {
    uint32_t address = 0x80000000u | (3u << 11) | offset;
    pio.write(0xcf8, {reinterpret_cast<const uint8_t*>(&address), 4});
  }
  uint32_t read(uint32_t offset) {
    select(offset);
    uint32_t value = 0;
    pio.read(0xcfc, {reinterpret_cast<uint8_t*>(&value), 4});
    return value;
  }
  void write(uint32_t offset, uint32_t value) {
    select(offset);
    pio.write(0xcfc, {reinterpret_cast<const uint8_t*>(&value), 4});
  }
  // BAR sizing: write all ones, read back the size mask, restore.
  uint32_t sizeMask(uint32_t offset) {
    uint32_t saved = read(offset);
    write(offset, 0xffffffff);
    uint32_t mask = read(offset);
    write(offset, saved);
    return mask;
  }
};

TEST_CASE("PCI: the function answers with its identity through 0xcf8/0xcfc") {
  Rig rig;
  CHECK(rig.read(0x00) == 0x56781234u);
}

TEST_CASE("PCI BAR sizing: each BAR reports its size and kind") {
  Rig rig;
  CHECK(rig.sizeMask(0x10) == 0xffffffe1u);  // 32 bytes of I/O space (bit 0: I/O)
  CHECK(rig.sizeMask(0x14) == 0xfffff000u);  // 4 KiB, 32-bit memory
  CHECK(rig.sizeMask(0x18) == 0xfff0000cu);  // 1 MiB, 64-bit (bits 2:1 = 10), prefetchable (bit 3)
  CHECK(rig.sizeMask(0x1c) == 0xffffffffu);  // the upper half of the 64-bit BAR
}

TEST_CASE("PCI BAR sizing leaves the BARs where they were") {
  Rig rig;
  uint32_t io = rig.read(0x10), memory = rig.read(0x14);
  rig.sizeMask(0x10);
  rig.sizeMask(0x14);
  CHECK(rig.read(0x10) == io);
  CHECK(rig.read(0x14) == memory);
  CHECK((io & ~0x3u) != 0);  // assigned an I/O address, as firmware would
}

}  // namespace
}  // namespace hyve
