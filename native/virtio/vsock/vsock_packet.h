// The virtio-vsock packet header (virtio 1.x §5.10.6), little-endian on the wire, and the
// constants of its fields. Every header the guest sends is hostile: parse() copies it out
// of guest memory and the device checks each field before acting on it.
#pragma once

#include <cstdint>
#include <cstring>

namespace hyve::virtio::vsock {

constexpr uint64_t kHostCid = 2;
constexpr uint16_t kTypeStream = 1;

enum Op : uint16_t {
  kOpInvalid = 0,
  kOpRequest = 1,
  kOpResponse = 2,
  kOpRst = 3,
  kOpShutdown = 4,
  kOpRw = 5,
  kOpCreditUpdate = 6,
  kOpCreditRequest = 7,
};

// SHUTDOWN flags: the sender will receive (RCV) or send (SEND) no more.
constexpr uint32_t kShutdownRcv = 1;
constexpr uint32_t kShutdownSend = 2;

// The event queue's only event (§5.10.6.7).
constexpr uint32_t kEventTransportReset = 0;

struct Header {
  uint64_t srcCid = 0;
  uint64_t dstCid = 0;
  uint32_t srcPort = 0;
  uint32_t dstPort = 0;
  uint32_t len = 0;
  uint16_t type = 0;
  uint16_t op = 0;
  uint32_t flags = 0;
  uint32_t bufAlloc = 0;
  uint32_t fwdCnt = 0;

  static constexpr size_t kSize = 44;

  // x86 is little-endian, as the wire is; the field offsets are the spec's.
  void serialize(uint8_t* out) const {
    std::memcpy(out + 0, &srcCid, 8);
    std::memcpy(out + 8, &dstCid, 8);
    std::memcpy(out + 16, &srcPort, 4);
    std::memcpy(out + 20, &dstPort, 4);
    std::memcpy(out + 24, &len, 4);
    std::memcpy(out + 28, &type, 2);
    std::memcpy(out + 30, &op, 2);
    std::memcpy(out + 32, &flags, 4);
    std::memcpy(out + 36, &bufAlloc, 4);
    std::memcpy(out + 40, &fwdCnt, 4);
  }
  static Header parse(const uint8_t* in) {
    Header h;
    std::memcpy(&h.srcCid, in + 0, 8);
    std::memcpy(&h.dstCid, in + 8, 8);
    std::memcpy(&h.srcPort, in + 16, 4);
    std::memcpy(&h.dstPort, in + 20, 4);
    std::memcpy(&h.len, in + 24, 4);
    std::memcpy(&h.type, in + 28, 2);
    std::memcpy(&h.op, in + 30, 2);
    std::memcpy(&h.flags, in + 32, 4);
    std::memcpy(&h.bufAlloc, in + 36, 4);
    std::memcpy(&h.fwdCnt, in + 40, 4);
    return h;
  }
};

}  // namespace hyve::virtio::vsock
