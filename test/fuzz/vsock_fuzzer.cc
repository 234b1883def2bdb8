// libFuzzer target for virtio-vsock's packet handling (native/virtio/vsock/): the input is
// a series of guest packets, each a 44-byte header (the fuzzer's, with the guest CID and
// stream type forced half of the time so it gets past the first checks) and up to 4 KiB
// of data, sent on the tx queue; after each the rx queue is drained into a small buffer.
// A guest port 1000 on the host has a listener that never reads, so connections fill up.
// Whatever the packets, the device must answer or drop them inside its bounds: ASan/UBSan
// catch memory errors, libFuzzer's timeout a hang, its RSS limit unbounded buffering.
// Built and run by scripts/fuzz.sh.
#include "core/guest_memory.h"
#include "core/layout.h"
#include "virtio/vsock/virtio_vsock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

using namespace hyve;
using namespace hyve::virtio;

namespace {

// service() takes the host sockets' news; vsock moves no buffers through QueueIo.
class NoQueues final : public QueueIo {
 public:
  std::optional<Chain> pop(unsigned) override { return std::nullopt; }
  void unpop(unsigned, uint16_t) override {}
  void push(unsigned, std::span<const UsedEntry>) override {}
  uint16_t size(unsigned) const override { return 0; }
};

struct Rig {
  GuestMemory memory{16 * layout::MiB};
  std::string path = "/tmp/hyve-vsock-fuzz-" + std::to_string(::getpid());
  VirtioVsock device{path, 3};
  UniqueFd listener;
  Rig() {
    listener = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string port = path + "_1000";
    ::unlink(port.c_str());
    std::strncpy(a.sun_path, port.c_str(), sizeof a.sun_path - 1);
    (void)!::bind(listener.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
    (void)!::listen(listener.get(), 16);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t length) {
  static Rig rig;
  rig.device.reset();
  auto tx = rig.memory.slice(0x100000, 0x2000);
  auto rx = rig.memory.slice(0x200000, 0x1000);
  size_t at = 0;
  while (at + vsock::Header::kSize + 2 <= length) {
    uint16_t dataLength;
    std::memcpy(&dataLength, data + at, 2);
    dataLength %= 4096;
    at += 2;
    auto h = vsock::Header::parse(data + at);
    at += vsock::Header::kSize;
    if (h.flags & 0x80000000u) {  // mostly well-formed addressing, so deeper paths are reached
      h.srcCid = 3;
      h.dstCid = vsock::kHostCid;
      h.type = vsock::kTypeStream;
      h.dstPort = h.dstPort % 2 ? 1000 : h.dstPort;
      h.srcPort %= 4;
    }
    size_t take = std::min<size_t>(dataLength, length - at);
    h.serialize(tx.data());
    std::memcpy(tx.data() + vsock::Header::kSize, data + at, take);
    at += take;
    Chain packet;
    packet.readable.push_back({tx.subspan(0, vsock::Header::kSize + take), false});
    rig.device.handle(VirtioVsock::kTxQueue, packet);
    NoQueues io;
    rig.device.service(io);
    for (int i = 0; i < 8; ++i) {
      Chain buffer;
      buffer.writable.push_back({rx, true});
      if (rig.device.handle(VirtioVsock::kRxQueue, buffer) == kDeferRequest) break;
    }
  }
  return 0;
}
