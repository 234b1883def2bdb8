// The host bridge at 00:00.0. It has no registers beyond its header; it exists because
// guests expect bus 0 to start with one (Linux's type-1 sanity check looks for its class).
#pragma once

#include "devices/pci/pci_device.h"

namespace hyve {

class HostBridge final : public PciDevice {
 public:
  HostBridge();
};

}  // namespace hyve
