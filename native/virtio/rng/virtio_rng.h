// virtio-rng (virtio 1.x §5.4; xhyve's virtio-rnd): one request queue whose device-writable
// buffers are filled from the host's getrandom().
#pragma once

#include "virtio/virtio_device.h"

namespace hyve::virtio {

class VirtioRng final : public VirtioDevice {
 public:
  // Bytes handed out per request at most: a driver asking for more gets this much.
  static constexpr uint32_t kMaxRequestBytes = 64 * 1024;

  uint16_t deviceId() const override { return kDeviceEntropy; }
  uint32_t pciClass() const override { return 0x00ff00; }  // unclassified, "other"
  uint64_t features() const override { return 0; }
  std::string_view threadRole() const override { return "virtio-rng"; }
  std::vector<uint16_t> queueSizes() const override { return {256}; }
  void readConfig(uint64_t, std::span<uint8_t> data) const override;
  uint32_t handle(unsigned queue, const Chain& chain) override;
};

}  // namespace hyve::virtio
