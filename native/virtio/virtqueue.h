// A split virtqueue (virtio 1.x §2.7) as the device side sees it: the descriptor table,
// the available ring the driver fills and the used ring the device fills, all in guest
// RAM. Everything read from guest memory is hostile: every address goes through
// GuestMemory::slice() (so nothing outside RAM is ever touched), every index is checked
// against the queue size, and a descriptor chain is bounded (a loop ends it), so a
// malformed ring ends in QueueError, which the transport turns into DEVICE_NEEDS_RESET.
#pragma once

#include "core/guest_memory.h"
#include "snapshot/state_io.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hyve::virtio {

// Feature bits the queue implements (virtio 1.x §6).
constexpr unsigned kFeatureIndirectDesc = 28;
constexpr unsigned kFeatureEventIdx = 29;
constexpr unsigned kFeatureVersion1 = 32;

constexpr uint16_t kMaxQueueSize = 1024;  // what any of our devices offers, at most
// An indirect table may hold at most this many descriptors (§2.7.5.3.1 bounds it by the
// queue size for direct chains only; Linux never makes one longer than its queue size).
constexpr uint32_t kMaxIndirectDescriptors = 1024;
// The longest chain a request may have, direct and indirect descriptors together.
constexpr uint32_t kMaxChainLength = 2048;

// A chain handed back to the driver: its head and the bytes written to its buffers.
struct UsedEntry {
  uint16_t head = 0;
  uint32_t written = 0;
};

// A malformed ring: the message says what the driver did wrong.
struct QueueError {
  std::string message;
};

// One buffer of a chain, already checked to lie inside guest RAM.
struct Segment {
  std::span<uint8_t> data;
  bool deviceWritable = false;
};

// A popped request: the head index (what goes back in the used ring) and its buffers,
// device-readable ones first (§2.7.4.2 requires it of the driver; we check it).
struct Chain {
  uint16_t head = 0;
  std::vector<Segment> readable;
  std::vector<Segment> writable;
  uint64_t readableBytes() const;
  uint64_t writableBytes() const;
  // Copies out of the readable buffers starting at `offset`; returns the bytes copied.
  uint64_t read(uint64_t offset, std::span<uint8_t> out) const;
  // Copies into the writable buffers starting at `offset`; returns the bytes copied.
  uint64_t write(uint64_t offset, std::span<const uint8_t> in) const;
};

class SplitQueue {
 public:
  // What the driver programs through the transport, and where the device is in the rings.
  struct State {
    uint16_t size = 0;           // queue_size: 0 or a power of two up to the maximum
    bool ready = false;          // queue_enable
    uint16_t msixVector = 0xffff;
    uint64_t descAddress = 0;
    uint64_t availAddress = 0;
    uint64_t usedAddress = 0;
    uint16_t lastAvail = 0;      // next avail ring entry the device will take
    uint16_t usedIndex = 0;      // the device's copy of used->idx
    uint16_t signalledUsed = 0;  // used->idx at the last interrupt (EVENT_IDX)
    bool signalledUsedValid = false;
    void save(snapshot::StateWriter& out) const;
    static State load(snapshot::StateReader& in, uint16_t maxSize);
  };

  SplitQueue(const GuestMemory& memory, uint16_t maxSize) : memory_(memory), maxSize_(maxSize) { state_.size = maxSize; }

  State& state() { return state_; }
  const State& state() const { return state_; }
  uint16_t maxSize() const { return maxSize_; }
  void setFeatures(uint64_t negotiated) { features_ = negotiated; }
  void reset();

  // Checks the driver's programming when it enables the queue (§4.1.4.3.2): a size that
  // is not a power of two, rings outside RAM or misaligned. Throws QueueError.
  void validate() const;

  // The next request, or nullopt when the ring is empty. Throws QueueError on a malformed
  // ring or chain (nothing is consumed then).
  std::optional<Chain> pop();
  // Takes back the last `count` pops (nothing of them was pushed): they are popped again.
  void unpop(uint16_t count) { state_.lastAvail = static_cast<uint16_t>(state_.lastAvail - count); }
  // Returns a request to the driver with `written` bytes written to its buffers.
  void push(uint16_t head, uint32_t written) {
    const UsedEntry entry{head, written};
    push(std::span(&entry, 1));
  }
  // Returns several as one: used->idx moves once, after every entry is written, so a
  // driver never sees part of them (a frame spread over mergeable buffers, §5.1.6.4).
  void push(std::span<const UsedEntry> entries);
  // Whether the driver wants an interrupt for the used entries pushed since the last one
  // (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX); records that it got one.
  bool needsInterrupt();
  // With EVENT_IDX: tells the driver to notify when anything beyond lastAvail arrives.
  void publishAvailEvent();

 private:
  template <typename T>
  T load(uint64_t gpa) const;
  template <typename T>
  void store(uint64_t gpa, T value) const;
  void walk(uint64_t table, uint32_t tableSize, uint16_t index, bool indirect, Chain& chain, uint32_t& budget) const;

  const GuestMemory& memory_;
  uint16_t maxSize_;
  uint64_t features_ = 0;
  State state_;
};

}  // namespace hyve::virtio
