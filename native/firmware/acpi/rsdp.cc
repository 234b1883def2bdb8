#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace hyve::firmware::acpi {

std::vector<uint8_t> buildRsdp(uint64_t xsdtAddress) {
  // ACPI 6.4, section 5.2.5.3. Revision 2 means "use the XSDT"; the RSDT is left out.
  constexpr size_t kV1Length = 20;  // the ACPI 1.0 part covered by the first checksum
  ByteBuffer rsdp;
  rsdp.text("RSD PTR ", 8);
  rsdp.u8(0);  // checksum of the first 20 bytes, patched
  rsdp.text(kOemId, 6);
  rsdp.u8(2);  // revision
  rsdp.u32(0);  // RSDT address
  rsdp.u32(kRsdpSize);
  rsdp.u64(xsdtAddress);
  rsdp.u8(0);  // extended checksum of all 36 bytes, patched
  rsdp.zeros(3);
  rsdp.patchU8(8, checksumByte(std::span(rsdp.bytes()).first(kV1Length)));
  rsdp.patchU8(32, checksumByte(rsdp.bytes()));
  return rsdp.take();
}

}  // namespace hyve::firmware::acpi
