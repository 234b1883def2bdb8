#include "virtio/rng/virtio_rng.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>

namespace hyve::virtio {

void VirtioRng::readConfig(uint64_t, std::span<uint8_t> data) const { std::fill(data.begin(), data.end(), 0); }

uint32_t VirtioRng::handle(unsigned, const Chain& chain) {
  uint32_t written = 0;
  for (const Segment& segment : chain.writable) {
    size_t want = std::min<size_t>(segment.data.size(), kMaxRequestBytes - written);
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::getrandom(segment.data.data() + got, want - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return written + static_cast<uint32_t>(got);  // the driver asks again
      }
      got += static_cast<size_t>(n);
    }
    written += static_cast<uint32_t>(got);
    if (written == kMaxRequestBytes) break;
  }
  return written;
}

}  // namespace hyve::virtio
