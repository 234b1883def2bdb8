#include "firmware/mptable.h"

#include "core/layout.h"
#include "firmware/bios_area.h"
#include "firmware/byte_buffer.h"
#include "util/error.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace hyve::firmware {
namespace {

// Entry types (MP spec 1.4, section 4.3), which must appear in this order.
constexpr uint8_t kProcessorEntry = 0;
constexpr uint8_t kBusEntry = 1;
constexpr uint8_t kIoApicEntry = 2;
constexpr uint8_t kIoInterruptEntry = 3;
constexpr uint8_t kLocalInterruptEntry = 4;

constexpr uint8_t kSpecRevision = 4;  // 1.4
constexpr uint8_t kLocalApicVersion = 0x14;
constexpr uint8_t kIoApicVersion = 0x11;  // 82093AA, as KVM's IOAPIC reports
constexpr uint8_t kCpuEnabled = 0x01;
constexpr uint8_t kCpuBootProcessor = 0x02;
// Family 6 with FPU and APIC: only reported, the OS reads CPUID itself.
constexpr uint32_t kCpuSignature = 0x600;
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);
constexpr uint8_t kIoApicEnabled = 0x01;

// Bus ids: the PCI bus must carry its bus number, since PCI interrupt entries name it.
constexpr uint8_t kPciBusId = 0;
constexpr uint8_t kIsaBusId = 1;

constexpr uint8_t kInterruptInt = 0;
constexpr uint8_t kInterruptNmi = 1;
constexpr uint8_t kInterruptExtInt = 3;
// Flags as in the MADT: polarity in bits 0-1, trigger in bits 2-3; 0 = conforms to the bus.
constexpr uint16_t kConforming = 0;
constexpr uint16_t kLevelActiveHigh = 0x1 | (0x3 << 2);
constexpr uint8_t kAllLocalApics = 0xff;

constexpr uint8_t kIsaIrqs = 16;
constexpr uint8_t kPitIrq = 0;
constexpr uint8_t kPitIoApicPin = 2;
constexpr uint8_t kCascadeIrq = 2;  // the slave PIC; its IOAPIC pin belongs to the PIT

constexpr size_t kFloatingPointerSize = 16;

void ioInterrupt(ByteBuffer& table, uint16_t flags, uint8_t bus, uint8_t busIrq, uint8_t ioApicId, uint8_t pin) {
  table.u8(kIoInterruptEntry);
  table.u8(kInterruptInt);
  table.u16(flags);
  table.u8(bus);
  table.u8(busIrq);
  table.u8(ioApicId);
  table.u8(pin);
}

void localInterrupt(ByteBuffer& table, uint8_t type, uint8_t lint) {
  table.u8(kLocalInterruptEntry);
  table.u8(type);
  table.u16(kConforming);
  table.u8(kIsaBusId);
  table.u8(0);
  table.u8(kAllLocalApics);
  table.u8(lint);
}

std::vector<uint8_t> buildConfigurationTable(const MpTableConfig& config) {
  const uint8_t ioApicId = static_cast<uint8_t>(config.cpuCount);
  ByteBuffer table;
  table.text("PCMP", 4);
  table.u16(0);  // base table length, patched
  table.u8(kSpecRevision);
  table.u8(0);  // checksum, patched
  table.text("HYVE", 8);
  table.text("HYVEVM", 12);
  table.u32(0);  // OEM table pointer
  table.u16(0);  // OEM table size
  table.u16(0);  // entry count, patched
  table.u32(static_cast<uint32_t>(layout::kLapicBase));
  table.u16(0);  // extended table length
  table.u8(0);   // extended table checksum
  table.u8(0);
  uint16_t entries = 0;

  for (uint32_t cpu = 0; cpu < config.cpuCount; ++cpu, ++entries) {
    table.u8(kProcessorEntry);
    table.u8(static_cast<uint8_t>(cpu));  // local APIC id
    table.u8(kLocalApicVersion);
    table.u8(kCpuEnabled | (cpu == 0 ? kCpuBootProcessor : 0));
    table.u32(kCpuSignature);
    table.u32(kCpuFeatures);
    table.zeros(8);
  }
  for (auto [id, type] : {std::pair{kPciBusId, "PCI"}, std::pair{kIsaBusId, "ISA"}}) {
    table.u8(kBusEntry);
    table.u8(id);
    table.text(type, 6);
    ++entries;
  }
  table.u8(kIoApicEntry);
  table.u8(ioApicId);
  table.u8(kIoApicVersion);
  table.u8(kIoApicEnabled);
  table.u32(static_cast<uint32_t>(layout::kIoapicBase));
  ++entries;

  for (uint8_t irq = 0; irq < kIsaIrqs; ++irq) {
    if (irq == kCascadeIrq) continue;
    uint8_t pin = irq == kPitIrq ? kPitIoApicPin : irq;
    // The SCI is level-triggered, matching the MADT's override.
    uint16_t flags = irq == layout::kAcpiSciIrq ? kLevelActiveHigh : kConforming;
    ioInterrupt(table, flags, kIsaBusId, irq, ioApicId, pin);
    ++entries;
  }
  // PCI bus IRQ = slot << 2 | pin; conforming means PCI's level, active-low.
  for (uint32_t slot = 0; slot < kPciSlots; ++slot) {
    for (uint32_t pin = 0; pin < kPciIntxPins; ++pin, ++entries) {
      uint32_t gsi = config.pciRouting(slot, pin);
      if (gsi >= layout::kIoapicPins) {
        throw Error(ErrorCode::Internal, "PCI INTx routing gives GSI " + std::to_string(gsi) + " past the IOAPIC");
      }
      ioInterrupt(table, kConforming, kPciBusId, static_cast<uint8_t>(slot << 2 | pin), ioApicId,
                  static_cast<uint8_t>(gsi));
    }
  }
  localInterrupt(table, kInterruptExtInt, 0);
  localInterrupt(table, kInterruptNmi, 1);
  entries += 2;

  if (table.size() > UINT16_MAX) throw Error(ErrorCode::Internal, "MP table too large");
  table.patchU16(4, static_cast<uint16_t>(table.size()));
  table.patchU16(34, entries);
  table.patchU8(7, checksumByte(table.bytes()));
  return table.take();
}

std::vector<uint8_t> buildFloatingPointer(uint64_t configurationTable) {
  ByteBuffer pointer;
  pointer.text("_MP_", 4);
  pointer.u32(static_cast<uint32_t>(configurationTable));
  pointer.u8(kFloatingPointerSize / 16);
  pointer.u8(kSpecRevision);
  pointer.u8(0);  // checksum, patched
  pointer.u8(0);  // feature 1: a configuration table is present (no default configuration)
  pointer.u8(0);  // feature 2: no IMCR, the PIC runs in virtual wire mode
  pointer.zeros(3);
  pointer.patchU8(10, checksumByte(pointer.bytes()));
  return pointer.take();
}

}  // namespace

void writeMpTable(const GuestMemory& memory, const MpTableConfig& config) {
  if (config.cpuCount == 0 || config.cpuCount >= 0xff) {
    throw Error(ErrorCode::BadConfig, "MP table: the CPU count must be 1-254, got " + std::to_string(config.cpuCount));
  }
  if (!config.pciRouting) throw Error(ErrorCode::Internal, "MP table: no PCI interrupt routing");
  const uint64_t configurationAddress = kMpFloatingPointer + kFloatingPointerSize;
  std::vector<uint8_t> configuration = buildConfigurationTable(config);
  if (configuration.size() > kMpTableAreaEnd - configurationAddress) {
    throw Error(ErrorCode::Internal, "MP table does not fit in the BIOS area");
  }
  std::vector<uint8_t> area(kMpTableAreaEnd - kMpTableAreaStart, 0);  // also clears an earlier boot's table
  std::vector<uint8_t> pointer = buildFloatingPointer(configurationAddress);
  std::copy(pointer.begin(), pointer.end(), area.begin() + (kMpFloatingPointer - kMpTableAreaStart));
  std::copy(configuration.begin(), configuration.end(), area.begin() + (configurationAddress - kMpTableAreaStart));
  if (!memory.write(kMpTableAreaStart, area.data(), area.size())) {
    throw Error(ErrorCode::Internal, "MP table: BIOS area is not guest RAM");
  }
}

}  // namespace hyve::firmware
