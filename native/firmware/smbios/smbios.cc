#include "firmware/smbios/smbios.h"

#include "firmware/bios_area.h"
#include "firmware/smbios/entry_points.h"
#include "firmware/smbios/structures.h"
#include "util/error.h"

#include <algorithm>
#include <string>

namespace hyve::firmware {

SmbiosTables buildSmbiosTables(const GuestMemory& memory, const SmbiosConfig& config) {
  // The MADT and MP table allow up to 254 CPUs; so does this (handles and counts are 16-bit).
  if (config.cpuCount == 0 || config.cpuCount >= 0xff) {
    throw Error(ErrorCode::BadConfig, "SMBIOS: the CPU count must be 1-254, got " + std::to_string(config.cpuCount));
  }
  std::vector<std::vector<uint8_t>> structures;
  auto next = [&] { return static_cast<uint16_t>(structures.size()); };  // handles number the structures

  structures.push_back(smbios::biosInformation(next()));
  structures.push_back(smbios::systemInformation(next(), config.uuid));
  structures.push_back(smbios::systemEnclosure(next()));
  for (uint32_t cpu = 0; cpu < config.cpuCount; ++cpu) structures.push_back(smbios::processorInformation(next(), cpu));
  // One array with one device holding all of RAM; each RAM region (below the PCI hole,
  // above 4 GiB) is a mapped range of it.
  const uint16_t array = next();
  structures.push_back(smbios::physicalMemoryArray(array, memory.totalBytes(), 1));
  structures.push_back(smbios::memoryDevice(next(), array, 0, memory.totalBytes()));
  for (const MemoryRegion& region : memory.regions()) {
    structures.push_back(smbios::memoryArrayMappedAddress(next(), array, region.guestAddress, region.size, 1));
  }
  structures.push_back(smbios::systemBootInformation(next()));
  structures.push_back(smbios::endOfTable(next()));

  SmbiosTables tables;
  size_t largest = 0;
  for (const auto& structure : structures) {
    tables.table.insert(tables.table.end(), structure.begin(), structure.end());
    largest = std::max(largest, structure.size());
  }
  if (tables.table.size() > kSmbiosAreaEnd - kSmbiosTable) {
    throw Error(ErrorCode::Internal, "SMBIOS tables do not fit in the BIOS area");
  }
  tables.structureCount = static_cast<uint16_t>(structures.size());
  const auto tableBytes = static_cast<uint16_t>(tables.table.size());
  tables.entryPoint64 = smbios::entryPoint64(kSmbiosTable, tableBytes);
  tables.entryPoint32 = smbios::entryPoint32(static_cast<uint32_t>(kSmbiosTable), tableBytes, tables.structureCount,
                                             static_cast<uint16_t>(largest));
  return tables;
}

void writeSmbiosTables(const GuestMemory& memory, const SmbiosConfig& config) {
  SmbiosTables tables = buildSmbiosTables(memory, config);
  std::vector<uint8_t> area(kSmbiosAreaEnd - kSmbiosAreaStart, 0);  // also clears an earlier boot's tables
  auto place = [&](uint64_t address, const std::vector<uint8_t>& bytes) {
    std::copy(bytes.begin(), bytes.end(), area.begin() + static_cast<ptrdiff_t>(address - kSmbiosAreaStart));
  };
  place(kSmbiosEntryPoint64, tables.entryPoint64);
  place(kSmbiosEntryPoint32, tables.entryPoint32);
  place(kSmbiosTable, tables.table);
  if (!memory.write(kSmbiosAreaStart, area.data(), area.size())) {
    throw Error(ErrorCode::Internal, "SMBIOS tables: BIOS area is not guest RAM");
  }
}

}  // namespace hyve::firmware
