#include "firmware/smbios/entry_points.h"

#include "firmware/byte_buffer.h"

#include <span>

namespace hyve::firmware::smbios {

std::vector<uint8_t> entryPoint64(uint64_t tableAddress, uint32_t tableMaxBytes) {
  constexpr size_t kChecksumOffset = 5;
  constexpr size_t kLengthOffset = 6;
  ByteBuffer ep;
  ep.text("_SM3_", 5);
  ep.u8(0);  // checksum, patched
  ep.u8(0);  // length, patched
  ep.u8(kMajorVersion);
  ep.u8(kMinorVersion);
  ep.u8(0);  // docrev
  ep.u8(1);  // entry point revision: 3.0
  ep.u8(0);  // reserved
  ep.u32(tableMaxBytes);
  ep.u64(tableAddress);
  ep.patchU8(kLengthOffset, static_cast<uint8_t>(ep.size()));
  ep.patchU8(kChecksumOffset, checksumByte(ep.bytes()));
  return ep.take();
}

std::vector<uint8_t> entryPoint32(uint32_t tableAddress, uint16_t tableBytes, uint16_t structureCount,
                                  uint16_t largestStructure) {
  constexpr size_t kChecksumOffset = 4;
  constexpr size_t kLengthOffset = 5;
  constexpr size_t kIntermediateStart = 0x10;  // "_DMI_": the part a legacy DMI reader checks
  constexpr size_t kIntermediateChecksumOffset = 0x15;
  ByteBuffer ep;
  ep.text("_SM_", 4);
  ep.u8(0);  // checksum, patched
  ep.u8(0);  // length, patched
  ep.u8(kMajorVersion);
  ep.u8(kMinorVersion);
  ep.u16(largestStructure);
  ep.u8(0);     // entry point revision: 2.1
  ep.zeros(5);  // formatted area
  ep.text("_DMI_", 5);
  ep.u8(0);  // intermediate checksum, patched
  ep.u16(tableBytes);
  ep.u32(tableAddress);
  ep.u16(structureCount);
  ep.u8(kMajorVersion << 4 | kMinorVersion);  // BCD revision
  ep.patchU8(kLengthOffset, static_cast<uint8_t>(ep.size()));
  ep.patchU8(kIntermediateChecksumOffset, checksumByte(std::span(ep.bytes()).subspan(kIntermediateStart)));
  ep.patchU8(kChecksumOffset, checksumByte(ep.bytes()));
  return ep.take();
}

}  // namespace hyve::firmware::smbios
