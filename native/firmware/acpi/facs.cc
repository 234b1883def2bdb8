#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace hyve::firmware::acpi {

// ACPI 6.4, section 5.2.10. A non-hardware-reduced FADT must point at one. It has no
// checksum because the OS writes to it (global lock, waking vector); all start as zero.
std::vector<uint8_t> buildFacs() {
  constexpr uint32_t kLength = 64;
  ByteBuffer facs;
  facs.text("FACS", 4);
  facs.u32(kLength);
  facs.u32(0);  // hardware signature: the OS compares it across S4 resume, which we lack
  facs.u32(0);  // firmware waking vector
  facs.u32(0);  // global lock
  facs.u32(0);  // flags: no S4BIOS, no 64-bit wake
  facs.u64(0);  // X firmware waking vector
  facs.u8(2);   // version
  facs.zeros(3);
  facs.u32(0);  // OSPM flags
  facs.zeros(24);
  return facs.take();
}

}  // namespace hyve::firmware::acpi
