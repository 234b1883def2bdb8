// An interrupt controller that records what devices drive, for tests.
#pragma once

#include "core/interrupts.h"

#include <cstdint>
#include <map>
#include <vector>

namespace hyve::test {

class FakeInterrupts final : public InterruptController {
 public:
  void setIrqLevel(uint32_t gsi, bool high) override { levels[gsi] = high; }
  void signalMsi(uint64_t address, uint32_t data) override { msis.push_back({address, data}); }
  bool level(uint32_t gsi) const {
    auto it = levels.find(gsi);
    return it != levels.end() && it->second;
  }

  std::map<uint32_t, bool> levels;
  struct Msi {
    uint64_t address;
    uint32_t data;
  };
  std::vector<Msi> msis;
};

}  // namespace hyve::test
