// Pieces shared by the ACPI description tables: the 36-byte header every table but the
// RSDP and FACS starts with, the identity hyve stamps on them, and the Generic Address
// Structure (ACPI 6.4, sections 5.2.3.2 and 5.2.6).
#pragma once

#include "firmware/byte_buffer.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace hyve::firmware::acpi {

constexpr std::string_view kOemId = "HYVE  ";         // 6 bytes
constexpr std::string_view kOemTableId = "HYVEVM  ";  // 8 bytes
constexpr std::string_view kCreatorId = "HYVE";       // 4 bytes
constexpr uint32_t kOemRevision = 1;
constexpr uint32_t kCreatorRevision = 1;

constexpr size_t kSdtHeaderSize = 36;
constexpr size_t kSdtChecksumOffset = 9;

// Starts a table; its length and checksum are filled in by finishTable().
ByteBuffer beginTable(std::string_view signature, uint8_t revision);
std::vector<uint8_t> finishTable(ByteBuffer&& table);

enum class AddressSpace : uint8_t { SystemMemory = 0, SystemIo = 1 };
enum class AccessSize : uint8_t { Undefined = 0, Byte = 1, Word = 2, DWord = 3, QWord = 4 };

struct GenericAddress {
  AddressSpace space = AddressSpace::SystemMemory;
  uint8_t bitWidth = 0;
  uint8_t bitOffset = 0;
  AccessSize accessSize = AccessSize::Undefined;
  uint64_t address = 0;
};

// A register block of `bytes` bytes at I/O port `port`, accessed `access` at a time.
GenericAddress ioRegister(uint16_t port, uint8_t bytes, AccessSize access);
void appendGas(ByteBuffer& out, const GenericAddress& gas);

}  // namespace hyve::firmware::acpi
