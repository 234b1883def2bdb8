// A bounded queue of Ethernet frames between two threads: bounded in frames and in bytes,
// so nothing a guest (or a peer on the network) sends can grow host memory past it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

namespace hyve::net {

class FrameQueue {
 public:
  FrameQueue(size_t maxFrames, size_t maxBytes) : maxFrames_(maxFrames), maxBytes_(maxBytes) {}

  // False (and nothing queued) when the frame does not fit.
  bool push(std::span<const uint8_t> frame);
  // Moves the oldest frame into `frame`; false when empty.
  bool pop(std::vector<uint8_t>& frame);
  bool empty() const;

 private:
  const size_t maxFrames_;
  const size_t maxBytes_;
  mutable std::mutex mutex_;
  std::deque<std::vector<uint8_t>> frames_;
  size_t bytes_ = 0;
};

}  // namespace hyve::net
