#include "firmware/acpi/sdt.h"

#include "util/error.h"

namespace hyve::firmware::acpi {

ByteBuffer beginTable(std::string_view signature, uint8_t revision) {
  ByteBuffer table;
  table.text(signature, 4);
  table.u32(0);  // length, patched
  table.u8(revision);
  table.u8(0);  // checksum, patched
  table.text(kOemId, 6);
  table.text(kOemTableId, 8);
  table.u32(kOemRevision);
  table.text(kCreatorId, 4);
  table.u32(kCreatorRevision);
  return table;
}

std::vector<uint8_t> finishTable(ByteBuffer&& table) {
  if (table.size() < kSdtHeaderSize || table.size() > UINT32_MAX) {
    throw Error(ErrorCode::Internal, "ACPI table with a bad length");
  }
  table.patchU32(4, static_cast<uint32_t>(table.size()));
  table.patchU8(kSdtChecksumOffset, 0);
  table.patchU8(kSdtChecksumOffset, checksumByte(table.bytes()));
  return table.take();
}

GenericAddress ioRegister(uint16_t port, uint8_t bytes, AccessSize access) {
  return {AddressSpace::SystemIo, static_cast<uint8_t>(bytes * 8), 0, access, port};
}

void appendGas(ByteBuffer& out, const GenericAddress& gas) {
  out.u8(static_cast<uint8_t>(gas.space));
  out.u8(gas.bitWidth);
  out.u8(gas.bitOffset);
  out.u8(static_cast<uint8_t>(gas.accessSize));
  out.u64(gas.address);
}

}  // namespace hyve::firmware::acpi
