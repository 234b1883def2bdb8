#include "firmware/acpi/acpi.h"

#include "firmware/acpi/tables.h"
#include "firmware/bios_area.h"
#include "util/error.h"

#include <string>
#include <vector>

namespace hyve::firmware {
namespace {

constexpr uint64_t kTableAlignment = 16;

// Hands out addresses in the ACPI area and copies tables there.
class TableWriter {
 public:
  explicit TableWriter(const GuestMemory& memory) : memory_(memory) {}

  uint64_t reserve(uint64_t size, uint64_t alignment = kTableAlignment) {
    uint64_t address = (next_ + alignment - 1) / alignment * alignment;
    if (address > kAcpiAreaEnd || size > kAcpiAreaEnd - address) {
      throw Error(ErrorCode::Internal, "ACPI tables do not fit in the BIOS area");
    }
    next_ = address + size;
    return address;
  }

  void write(uint64_t address, const std::vector<uint8_t>& table) {
    if (!memory_.write(address, table.data(), table.size())) {
      throw Error(ErrorCode::Internal, "ACPI tables: BIOS area is not guest RAM");
    }
  }

  uint64_t place(const std::vector<uint8_t>& table, uint64_t alignment = kTableAlignment) {
    uint64_t address = reserve(table.size(), alignment);
    write(address, table);
    return address;
  }

 private:
  const GuestMemory& memory_;
  uint64_t next_ = kAcpiAreaStart;
};

}  // namespace

uint64_t writeAcpiTables(const GuestMemory& memory, const AcpiConfig& config) {
  if (!config.pciRouting) throw Error(ErrorCode::Internal, "ACPI tables: no PCI interrupt routing");
  // Clear what an earlier boot of this memory may have left, so no stale table survives.
  std::vector<uint8_t> zeros(kAcpiAreaEnd - kAcpiAreaStart, 0);
  if (!memory.write(kAcpiAreaStart, zeros.data(), zeros.size())) {
    throw Error(ErrorCode::Internal, "ACPI tables: BIOS area is not guest RAM");
  }

  TableWriter writer(memory);
  // The RSDP goes first but points at the XSDT, which is built last: keep its slot.
  uint64_t rsdp = writer.reserve(acpi::kRsdpSize);

  uint64_t dsdt = writer.place(acpi::buildDsdt(config.pciRouting, config.s5SleepType));
  uint64_t facs = writer.place(acpi::buildFacs(), acpi::kFacsAlignment);
  uint64_t fadt = writer.place(acpi::buildFadt(dsdt, facs));
  uint64_t madt = writer.place(acpi::buildMadt(config.cpuCount));
  uint64_t hpet = writer.place(acpi::buildHpet(config.hpetBlockId));
  uint64_t xsdt = writer.place(acpi::buildXsdt({fadt, madt, hpet}));
  writer.write(rsdp, acpi::buildRsdp(xsdt));
  return rsdp;
}

}  // namespace hyve::firmware
