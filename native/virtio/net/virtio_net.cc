#include "virtio/net/virtio_net.h"

#include <algorithm>
#include <cstring>

namespace hyve::virtio {

namespace {

// Feature bits (§5.1.3).
constexpr unsigned kMtuBit = 3;
constexpr unsigned kMacBit = 5;
constexpr unsigned kMrgRxBufBit = 15;
constexpr unsigned kStatusBit = 16;
constexpr uint16_t kLinkUp = 1;
constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM

struct Header {
  uint8_t flags;
  uint8_t gsoType;
  uint16_t hdrLen;
  uint16_t gsoSize;
  uint16_t csumStart;
  uint16_t csumOffset;
  uint16_t numBuffers;
};
static_assert(sizeof(Header) == VirtioNet::kHeaderBytes);

}  // namespace

VirtioNet::VirtioNet(std::array<uint8_t, 6> mac, std::unique_ptr<net::NetBackend> backend,
                     std::function<void(const std::string&)> log)
    : mac_(mac), backend_(std::move(backend)), log_(std::move(log)) {}

uint64_t VirtioNet::features() const { return 1ull << kMtuBit | 1ull << kMacBit | 1ull << kMrgRxBufBit | 1ull << kStatusBit; }

void VirtioNet::readConfig(uint64_t offset, std::span<uint8_t> data) const {
  // mac, status, max_virtqueue_pairs (unused without MQ), mtu.
  uint8_t config[12] = {};
  std::memcpy(config, mac_.data(), 6);
  uint16_t status = kLinkUp;
  std::memcpy(config + 6, &status, 2);
  uint16_t mtu = backend_->mtu();
  std::memcpy(config + 10, &mtu, 2);
  std::fill(data.begin(), data.end(), 0);
  if (offset < sizeof config) std::memcpy(data.data(), config + offset, std::min<uint64_t>(data.size(), sizeof config - offset));
}

void VirtioNet::activate(uint64_t features) {
  mergeable_ = features >> kMrgRxBufBit & 1;
  rxStalled_ = txStalled_ = false;
}

void VirtioNet::reset() {
  mergeable_ = false;
  rxStalled_ = txStalled_ = false;
  havePending_ = false;  // a frame on its way is lost with the link
}

int VirtioNet::eventFd() const { return !rxStalled_ || txStalled_ ? backend_->wakeFd() : -1; }

bool VirtioNet::service(QueueIo& io) {
  backend_->clearWake();
  rxStalled_ = txStalled_ = false;
  bool more = transmit(io);
  more = receive(io) || more;
  if (!failureReported_) {
    if (std::string why = backend_->failure(); !why.empty()) {
      failureReported_ = true;
      if (log_) log_("virtio-net: " + why + "; the guest's frames are dropped from now on");
    }
  }
  return more;
}

bool VirtioNet::transmit(QueueIo& io) {
  for (unsigned n = 0; n < kBatch; ++n) {
    auto chain = io.pop(kTxQueue);
    if (!chain) return false;
    uint64_t length = chain->readableBytes();
    Header header{};
    chain->read(0, std::span(reinterpret_cast<uint8_t*>(&header), sizeof header));
    // No offload was offered, so a header asking for one (a partial checksum, segmentation)
    // is as bad as a runt or a giant. The rest of the header is not looked at: the device
    // must ignore flag bits it does not use (§5.1.6.2.2), csum_start and csum_offset mean
    // nothing without NEEDS_CSUM, nor hdr_len without GSO, and num_buffers nothing on
    // transmit (Linux leaves it unset when MRG_RXBUF is off).
    bool bad = length < kHeaderBytes + net::kMinFrameBytes || length > kHeaderBytes + net::kMaxFrameBytes ||
               (header.flags & kNeedsCsum) || header.gsoType != 0;
    if (bad) {
      ++counters_.txDropped;
      io.push(kTxQueue, chain->head, 0);
      continue;
    }
    frame_.resize(length - kHeaderBytes);
    chain->read(kHeaderBytes, frame_);
    if (!backend_->failure().empty()) {
      ++counters_.txDropped;  // a dead backend swallows frames rather than hang the guest
    } else if (!backend_->transmit(frame_)) {
      io.unpop(kTxQueue, 1);  // stays in the ring until the backend has room
      txStalled_ = true;
      return false;
    } else {
      ++counters_.txFrames;
    }
    io.push(kTxQueue, chain->head, 0);
  }
  return true;
}

bool VirtioNet::receive(QueueIo& io) {
  std::vector<Chain> chains;
  for (unsigned n = 0; n < kBatch; ++n) {
    if (!havePending_) {
      if (!backend_->receive(pending_)) return false;
      havePending_ = true;
    }
    // Gather buffers until the frame fits: one chain, or several with mergeable buffers.
    uint64_t need = kHeaderBytes + pending_.size();
    uint64_t room = 0;
    chains.clear();
    while (room < need) {
      // Every buffer the ring can hold at once is too small together: waiting for more
      // would stall the receive queue for good.
      if (!chains.empty() && chains.size() >= io.size(kRxQueue)) break;
      auto chain = io.pop(kRxQueue);
      if (!chain) {
        io.unpop(kRxQueue, static_cast<uint16_t>(chains.size()));
        rxStalled_ = true;
        return false;
      }
      if (!chain->readable.empty() || chain->writableBytes() < kHeaderBytes) {
        throw QueueError{"a receive buffer is not a device-writable one of at least " + std::to_string(kHeaderBytes) + " bytes"};
      }
      room += chain->writableBytes();
      chains.push_back(std::move(*chain));
      if (!mergeable_ && room < need) break;
    }
    if (room < need) {  // too big for one buffer, or for the whole ring: the frame is lost, the buffers kept
      io.unpop(kRxQueue, static_cast<uint16_t>(chains.size()));
      ++counters_.rxDropped;
      havePending_ = false;
      continue;
    }
    Header header{};
    header.numBuffers = static_cast<uint16_t>(chains.size());
    uint64_t at = 0;  // bytes of the frame written so far
    used_.clear();
    for (size_t i = 0; i < chains.size(); ++i) {
      const Chain& chain = chains[i];
      uint64_t written = 0;
      if (i == 0) written = chain.write(0, std::span(reinterpret_cast<const uint8_t*>(&header), sizeof header));
      uint64_t n = chain.write(written, std::span<const uint8_t>(pending_).subspan(at));
      at += n;
      used_.push_back({chain.head, static_cast<uint32_t>(written + n)});
    }
    // All buffers at once: a driver polling the ring that saw the first one without the
    // rest would drop the frame ("buffers out of N missing"), and TCP would wait out a
    // retransmission timeout for it.
    io.push(kRxQueue, used_);
    ++counters_.rxFrames;
    havePending_ = false;
  }
  return true;
}

}  // namespace hyve::virtio
