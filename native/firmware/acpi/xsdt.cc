#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace hyve::firmware::acpi {

std::vector<uint8_t> buildXsdt(const std::vector<uint64_t>& tableAddresses) {
  ByteBuffer xsdt = beginTable("XSDT", 1);
  for (uint64_t address : tableAddresses) xsdt.u64(address);
  return finishTable(std::move(xsdt));
}

}  // namespace hyve::firmware::acpi
