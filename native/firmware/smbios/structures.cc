#include "firmware/smbios/structures.h"

#include "firmware/smbios/structure.h"
#include "util/error.h"
#include "core/layout.h"

#include <string>
#include <string_view>

#ifndef HYVE_VERSION
#error "HYVE_VERSION must be defined by the build (binding.gyp reads it from package.json)"
#endif

namespace hyve::firmware::smbios {
namespace {

using layout::KiB;
using layout::MiB;

// Fixed, so that the same configuration gives the same table on every run.
constexpr const char* kBiosReleaseDate = "01/01/2026";
constexpr const char* kChassisName = "hyve";
constexpr std::string_view kNotProvided = "";  // string number 0

constexpr uint16_t kNoHandle = 0xffff;           // "no such structure" (type 4 cache handles)
constexpr uint16_t kNoErrorInformation = 0xfffe;  // "not provided" (types 16 and 17)

// Enumerations used below, named as in the spec.
constexpr uint8_t kOther = 0x01;
constexpr uint8_t kUnknown = 0x02;
constexpr uint8_t kSafe = 0x03;

}  // namespace

std::vector<uint8_t> biosInformation(uint16_t handle) {
  Structure s(kBiosInformation, handle);
  ByteBuffer& f = s.fields();
  s.string(kVendor);
  s.string("hyve " HYVE_VERSION);
  f.u16(0xe800);  // starting address segment: nominal, there is no BIOS image to run
  s.string(kBiosReleaseDate);
  f.u8(0);  // ROM size: 64 KiB * (n + 1)
  // Characteristics: bit 3 "BIOS characteristics are not supported" (none apply to a VMM).
  f.u64(1ull << 3);
  f.u8(0);                       // extension byte 1
  f.u8((1u << 2) | (1u << 4));   // extension byte 2: targeted content distribution, virtual machine
  f.u8(1);     // system BIOS major release
  f.u8(0);     // minor release
  f.u8(0xff);  // embedded controller firmware: none
  f.u8(0xff);
  return std::move(s).finish();
}

std::vector<uint8_t> systemInformation(uint16_t handle, const Uuid& uuid) {
  Structure s(kSystemInformation, handle);
  ByteBuffer& f = s.fields();
  s.string(kVendor);
  s.string(kProductName);
  s.string(HYVE_VERSION);
  s.string(formatUuid(uuid));  // serial number: the identity -U gives
  // time_low, time_mid and time_hi_and_version little-endian, the rest as written.
  f.u32(static_cast<uint32_t>(uuid[0]) << 24 | uuid[1] << 16 | uuid[2] << 8 | uuid[3]);
  f.u16(static_cast<uint16_t>(uuid[4] << 8 | uuid[5]));
  f.u16(static_cast<uint16_t>(uuid[6] << 8 | uuid[7]));
  f.append(std::span(uuid).subspan(8));
  f.u8(0x06);  // wake-up type: power switch
  s.string(kNotProvided);  // SKU number
  s.string("Virtual Machine");  // family
  return std::move(s).finish();
}

std::vector<uint8_t> systemEnclosure(uint16_t handle) {
  Structure s(kSystemEnclosure, handle);
  ByteBuffer& f = s.fields();
  s.string(kChassisName);  // manufacturer
  f.u8(kOther);          // type (no lock)
  s.string(kNotProvided);  // version
  s.string(kNotProvided);  // serial number
  s.string(kNotProvided);  // asset tag
  f.u8(kSafe);           // boot-up state
  f.u8(kSafe);           // power supply state
  f.u8(kSafe);           // thermal state
  f.u8(kUnknown);        // security status
  f.u32(0);              // OEM-defined
  f.u8(0);               // height: unspecified
  f.u8(0);               // power cords: unspecified
  f.u8(0);               // contained elements: none
  f.u8(0);               // contained element record length
  s.string(kNotProvided);  // SKU number
  return std::move(s).finish();
}

std::vector<uint8_t> processorInformation(uint16_t handle, uint32_t index) {
  Structure s(kProcessorInformation, handle);
  ByteBuffer& f = s.fields();
  s.string("CPU " + std::to_string(index));    // socket designation
  f.u8(0x03);            // processor type: central processor
  f.u8(kOther);          // family (the guest reads CPUID for the real one)
  s.string(kVendor);       // manufacturer
  f.u64(0);              // processor ID: not reported, CPUID is authoritative
  s.string("hyve vCPU");   // version
  f.u8(0);               // voltage: not reported
  f.u16(0);              // external clock: unknown
  f.u16(0);              // max speed: unknown
  f.u16(0);              // current speed: unknown
  f.u8(0x41);            // status: socket populated, CPU enabled
  f.u8(kOther);          // upgrade
  f.u16(kNoHandle);      // L1, L2, L3 cache: not described
  f.u16(kNoHandle);
  f.u16(kNoHandle);
  s.string(kNotProvided);  // serial number
  s.string(kNotProvided);  // asset tag
  s.string(kNotProvided);  // part number
  f.u8(1);               // core count
  f.u8(1);               // cores enabled
  f.u8(1);               // thread count
  f.u16(1u << 2);        // characteristics: 64-bit capable
  f.u16(kOther);         // family 2
  f.u16(1);              // core count 2
  f.u16(1);              // cores enabled 2
  f.u16(1);              // thread count 2
  return std::move(s).finish();
}

std::vector<uint8_t> physicalMemoryArray(uint16_t handle, uint64_t capacityBytes, uint16_t devices) {
  constexpr uint32_t kUseExtendedCapacity = 0x80000000;  // in KiB: 2 TiB and more
  Structure s(kPhysicalMemoryArray, handle);
  ByteBuffer& f = s.fields();
  f.u8(0x03);  // location: system board
  f.u8(0x03);  // use: system memory
  f.u8(0x03);  // error correction: none
  uint64_t kib = capacityBytes / KiB;
  f.u32(kib < kUseExtendedCapacity ? static_cast<uint32_t>(kib) : kUseExtendedCapacity);
  f.u16(kNoErrorInformation);
  f.u16(devices);
  f.u64(kib < kUseExtendedCapacity ? 0 : capacityBytes);  // extended maximum capacity, in bytes
  return std::move(s).finish();
}

std::vector<uint8_t> memoryDevice(uint16_t handle, uint16_t arrayHandle, uint32_t index, uint64_t bytes) {
  constexpr uint16_t kUseExtendedSize = 0x7fff;  // in MiB: 32 GiB - 1 MiB and more
  if (bytes % MiB != 0) throw Error(ErrorCode::Internal, "SMBIOS: memory device size is not whole MiB");
  uint64_t mib = bytes / MiB;
  Structure s(kMemoryDevice, handle);
  ByteBuffer& f = s.fields();
  f.u16(arrayHandle);
  f.u16(kNoErrorInformation);
  f.u16(64);  // total width in bits
  f.u16(64);  // data width
  f.u16(mib < kUseExtendedSize ? static_cast<uint16_t>(mib) : kUseExtendedSize);  // bit 15 clear: MiB
  f.u8(0x09);  // form factor: DIMM
  f.u8(0);     // device set: none
  s.string("DIMM " + std::to_string(index));    // device locator
  s.string(kNotProvided);  // bank locator
  f.u8(0x07);            // memory type: RAM
  f.u16(1u << 1);        // type detail: other
  f.u16(0);              // speed: unknown
  s.string(kVendor);       // manufacturer
  s.string(kNotProvided);  // serial number
  s.string(kNotProvided);  // asset tag
  s.string(kNotProvided);  // part number
  f.u8(0);               // attributes: rank unknown
  f.u32(mib < kUseExtendedSize ? 0 : static_cast<uint32_t>(mib));  // extended size, MiB
  f.u16(0);  // configured speed: unknown
  f.u16(0);  // minimum, maximum and configured voltage: unknown
  f.u16(0);
  f.u16(0);
  return std::move(s).finish();
}

std::vector<uint8_t> memoryArrayMappedAddress(uint16_t handle, uint16_t arrayHandle, uint64_t address, uint64_t bytes,
                                              uint8_t partitionWidth) {
  constexpr uint64_t kUseExtendedAddress = 0xffffffff;  // in KiB: ranges reaching 4 TiB
  Structure s(kMemoryArrayMappedAddress, handle);
  ByteBuffer& f = s.fields();
  uint64_t last = address + bytes - 1;  // the range's end is inclusive
  bool extended = last / KiB >= kUseExtendedAddress;
  f.u32(static_cast<uint32_t>(extended ? kUseExtendedAddress : address / KiB));
  f.u32(static_cast<uint32_t>(extended ? kUseExtendedAddress : last / KiB));
  f.u16(arrayHandle);
  f.u8(partitionWidth);
  f.u64(extended ? address : 0);
  f.u64(extended ? last : 0);
  return std::move(s).finish();
}

std::vector<uint8_t> systemBootInformation(uint16_t handle) {
  Structure s(kSystemBootInformation, handle);
  ByteBuffer& f = s.fields();
  f.zeros(6);  // reserved
  f.u8(0);     // boot status: no errors detected
  return std::move(s).finish();
}

std::vector<uint8_t> endOfTable(uint16_t handle) { return Structure(kEndOfTable, handle).finish(); }

}  // namespace hyve::firmware::smbios
