// Builders for the SMBIOS structures hyve provides, each returning the finished structure
// (formatted area and string set). Field layouts are those of SMBIOS 3.0 (DSP0134 3.0.0,
// section 7); smbios.cc numbers the handles and links them into one table.
#pragma once

#include "firmware/smbios/uuid.h"

#include <cstdint>
#include <vector>

namespace hyve::firmware::smbios {

enum Type : uint8_t {
  kBiosInformation = 0,
  kSystemInformation = 1,
  kSystemEnclosure = 3,
  kProcessorInformation = 4,
  kPhysicalMemoryArray = 16,
  kMemoryDevice = 17,
  kMemoryArrayMappedAddress = 19,
  kSystemBootInformation = 32,
  kEndOfTable = 127,
};

// What identifies the platform to the guest (dmidecode, /sys/class/dmi/id).
inline constexpr const char* kVendor = "hyve";
inline constexpr const char* kProductName = "hyve virtual machine";

std::vector<uint8_t> biosInformation(uint16_t handle);
// `uuid` is stored in SMBIOS byte order: its first three fields little-endian (7.2.1).
std::vector<uint8_t> systemInformation(uint16_t handle, const Uuid& uuid);
std::vector<uint8_t> systemEnclosure(uint16_t handle);
// One socket per vCPU, one core and thread each, as the MADT and MP table list them.
std::vector<uint8_t> processorInformation(uint16_t handle, uint32_t index);
std::vector<uint8_t> physicalMemoryArray(uint16_t handle, uint64_t capacityBytes, uint16_t devices);
std::vector<uint8_t> memoryDevice(uint16_t handle, uint16_t arrayHandle, uint32_t index, uint64_t bytes);
// [address, address + bytes) of guest RAM, mapped by the array `arrayHandle`.
std::vector<uint8_t> memoryArrayMappedAddress(uint16_t handle, uint16_t arrayHandle, uint64_t address, uint64_t bytes,
                                              uint8_t partitionWidth);
std::vector<uint8_t> systemBootInformation(uint16_t handle);
std::vector<uint8_t> endOfTable(uint16_t handle);

}  // namespace hyve::firmware::smbios
