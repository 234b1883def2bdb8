// The PCI-to-ISA bridge (00:1f.0 by convention). The ISA devices themselves (UART, RTC,
// i8042, PM timer) sit at fixed ports; this function only tells the guest the bridge exists.
#pragma once

#include "devices/pci/pci_device.h"

namespace hyve {

class LpcBridge final : public PciDevice {
 public:
  LpcBridge();
};

}  // namespace hyve
