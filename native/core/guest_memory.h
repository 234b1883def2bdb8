// Guest RAM: host mappings for guest-physical ranges, with bounds-checked access.
// Every address or length that comes from the guest goes through slice()/read()/write(),
// which refuse ranges that are not entirely inside one RAM region.
#pragma once

#include "util/mapping.h"
#include "util/unique_fd.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace hyve {

struct MemoryRegion {
  uint64_t guestAddress;
  uint64_t size;
  uint8_t* host;
};

class GuestMemory {
 public:
  // Reserves `bytes` of RAM: below the PCI hole, and above 4 GiB for the rest.
  // Throws Error(Memory) if the host cannot reserve it.
  explicit GuestMemory(uint64_t bytes);
  // Guest RAM mapped copy-on-write (MAP_PRIVATE) from `fd`, which holds exactly `bytes`
  // laid out as contents() describes: pages come from the file until the guest writes
  // them, so mapping costs nothing per byte and many VMs can share one file. `name` names
  // the file in fileChanged().
  //
  // If the file shrinks while the VM runs, pages past its new end are gone: an access
  // would raise SIGBUS and kill the process. Instead, a SIGBUS handler puts a zero page
  // there and records it; fileChanged() then explains, and the machine ends the VM.
  GuestMemory(uint64_t bytes, int fd, std::string name = "the snapshot's memory file");
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // For RAM mapped from a file: why it cannot be trusted any more (the file is shorter
  // than the guest's memory, or an access faulted past its end), as a sentence; else empty.
  std::string fileChanged() const;

  // All of guest RAM as one host range: RAM below the PCI hole, then RAM above 4 GiB.
  // This is the layout of a snapshot's memory file.
  std::span<const uint8_t> contents() const { return {mapping_.data(), mapping_.size()}; }

  uint64_t totalBytes() const { return totalBytes_; }
  const std::vector<MemoryRegion>& regions() const { return regions_; }
  // End of RAM below 4 GiB.
  uint64_t lowRamEnd() const;

  // Host view of [gpa, gpa+length), or an empty span if any byte is outside RAM.
  std::span<uint8_t> slice(uint64_t gpa, uint64_t length) const;
  bool read(uint64_t gpa, void* out, uint64_t length) const;
  bool write(uint64_t gpa, const void* data, uint64_t length) const;

  template <typename T>
  bool writeObject(uint64_t gpa, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, &value, sizeof(T));
  }

 private:
  void validateSize() const;
  void layOutRegions();

  uint64_t totalBytes_;
  Mapping mapping_;  // one host mapping; regions are windows into it
  UniqueFd file_;    // the file RAM is mapped from, if any
  std::string fileName_;
  std::vector<MemoryRegion> regions_;
};

}  // namespace hyve
