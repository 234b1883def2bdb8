// Dispatches guest port-I/O and MMIO accesses to devices by address range.
// Ranges are registered while the machine is built; PCI BAR moves may re-register
// at run time, so lookups take a shared lock.
#pragma once

#include <cstdint>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

namespace hyve {

// A device region on a bus. `offset` is relative to the registered base.
// Implementations do their own locking: vCPU threads call in concurrently.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class IoBus {
 public:
  // Throws Error(Internal) if the range overlaps an existing one.
  void add(uint64_t base, uint64_t length, BusDevice* device, std::string name);
  // Removes the range registered at exactly `base` for `device`, if any.
  void remove(uint64_t base, BusDevice* device);

  // The device that took the access, or null if none claims the address: the caller
  // decides what unclaimed I/O means.
  BusDevice* read(uint64_t address, std::span<uint8_t> data) const;
  BusDevice* write(uint64_t address, std::span<const uint8_t> data) const;

  // Name under which `device` is registered (for diagnostics), or empty.
  std::string nameOf(const BusDevice* device) const;

 private:
  struct Range {
    uint64_t base;
    uint64_t length;
    BusDevice* device;
    std::string name;
  };
  const Range* find(uint64_t address) const;

  mutable std::shared_mutex mutex_;
  std::vector<Range> ranges_;  // sorted by base, non-overlapping
};

}  // namespace hyve
