#include "net/frame_queue.h"

namespace hyve::net {

bool FrameQueue::push(std::span<const uint8_t> frame) {
  std::lock_guard lock(mutex_);
  if (frames_.size() >= maxFrames_ || bytes_ + frame.size() > maxBytes_) return false;
  frames_.emplace_back(frame.begin(), frame.end());
  bytes_ += frame.size();
  return true;
}

bool FrameQueue::pop(std::vector<uint8_t>& frame) {
  std::lock_guard lock(mutex_);
  if (frames_.empty()) return false;
  frame = std::move(frames_.front());
  frames_.pop_front();
  bytes_ -= frame.size();
  return true;
}

bool FrameQueue::empty() const {
  std::lock_guard lock(mutex_);
  return frames_.empty();
}

}  // namespace hyve::net
