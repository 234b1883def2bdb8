#include "virtio/virtqueue.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace hyve::virtio {

namespace {

constexpr uint16_t kDescNext = 1;
constexpr uint16_t kDescWrite = 2;
constexpr uint16_t kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;
constexpr uint64_t kDescSize = 16;

struct Descriptor {
  uint64_t address;
  uint32_t length;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Descriptor) == kDescSize);

[[noreturn]] void malformed(std::string message) { throw QueueError{std::move(message)}; }

uint64_t total(const std::vector<Segment>& segments) {
  uint64_t bytes = 0;
  for (const auto& s : segments) bytes += s.data.size();
  return bytes;
}

// Walks `segments` from `offset`, handing each overlapping piece to `copy`.
template <typename Copy>
uint64_t copyAt(const std::vector<Segment>& segments, uint64_t offset, uint64_t length, Copy copy) {
  uint64_t done = 0;
  for (const auto& s : segments) {
    if (done == length) break;
    if (offset >= s.data.size()) {
      offset -= s.data.size();
      continue;
    }
    uint64_t n = std::min<uint64_t>(s.data.size() - offset, length - done);
    copy(s.data.data() + offset, done, n);
    done += n;
    offset = 0;
  }
  return done;
}

}  // namespace

uint64_t Chain::readableBytes() const { return total(readable); }
uint64_t Chain::writableBytes() const { return total(writable); }

uint64_t Chain::read(uint64_t offset, std::span<uint8_t> out) const {
  return copyAt(readable, offset, out.size(), [&](uint8_t* guest, uint64_t at, uint64_t n) { std::memcpy(out.data() + at, guest, n); });
}

uint64_t Chain::write(uint64_t offset, std::span<const uint8_t> in) const {
  return copyAt(writable, offset, in.size(), [&](uint8_t* guest, uint64_t at, uint64_t n) { std::memcpy(guest, in.data() + at, n); });
}

template <typename T>
T SplitQueue::load(uint64_t gpa) const {
  T value;
  if (!memory_.read(gpa, &value, sizeof value)) malformed("ring address " + std::to_string(gpa) + " is outside guest RAM");
  return value;
}

template <typename T>
void SplitQueue::store(uint64_t gpa, T value) const {
  if (!memory_.write(gpa, &value, sizeof value)) malformed("ring address " + std::to_string(gpa) + " is outside guest RAM");
}

void SplitQueue::reset() {
  state_ = State{};
  state_.size = maxSize_;
  features_ = 0;
}

void SplitQueue::validate() const {
  const State& s = state_;
  if (s.size == 0 || s.size > maxSize_ || (s.size & (s.size - 1)) != 0) {
    malformed("queue size " + std::to_string(s.size) + " is not a power of two up to " + std::to_string(maxSize_));
  }
  if (s.descAddress % 16 || s.availAddress % 2 || s.usedAddress % 4) malformed("ring addresses are misaligned");
  uint64_t n = s.size;
  if (memory_.slice(s.descAddress, kDescSize * n).empty() || memory_.slice(s.availAddress, 6 + 2 * n).empty() ||
      memory_.slice(s.usedAddress, 6 + 8 * n).empty()) {
    malformed("a ring of the queue lies outside guest RAM");
  }
}

void SplitQueue::walk(uint64_t table, uint32_t tableSize, uint16_t index, bool indirect, Chain& chain,
                      uint32_t& budget) const {
  // A chain can visit each descriptor of its table once; one longer than the table loops.
  for (uint32_t visited = 0;; ++visited) {
    if (visited >= tableSize) malformed("descriptor chain loops (longer than its table of " + std::to_string(tableSize) + ")");
    if (budget == 0) malformed("descriptor chain is longer than " + std::to_string(kMaxChainLength));
    --budget;
    if (index >= tableSize) malformed("descriptor index " + std::to_string(index) + " is past the table");
    auto d = load<Descriptor>(table + kDescSize * index);
    if (d.flags & kDescIndirect) {
      if (indirect) malformed("an indirect table holds an indirect descriptor");
      if (!(features_ & (uint64_t{1} << kFeatureIndirectDesc))) malformed("indirect descriptor without INDIRECT_DESC");
      if (d.flags & kDescNext) malformed("indirect descriptor has NEXT set");
      if (d.length == 0 || d.length % kDescSize || d.length / kDescSize > kMaxIndirectDescriptors) {
        malformed("indirect table length " + std::to_string(d.length) + " is not 1-" +
                  std::to_string(kMaxIndirectDescriptors) + " descriptors");
      }
      if (memory_.slice(d.address, d.length).empty()) malformed("indirect table outside guest RAM");
      walk(d.address, d.length / static_cast<uint32_t>(kDescSize), 0, true, chain, budget);
      return;
    }
    if (d.length > 0) {
      std::span<uint8_t> data = memory_.slice(d.address, d.length);
      if (data.empty()) malformed("buffer at " + std::to_string(d.address) + "+" + std::to_string(d.length) + " is outside guest RAM");
      bool writable = d.flags & kDescWrite;
      if (!writable && !chain.writable.empty()) malformed("a device-readable buffer follows a device-writable one");
      (writable ? chain.writable : chain.readable).push_back({data, writable});
    }
    if (!(d.flags & kDescNext)) return;
    index = d.next;
  }
}

std::optional<Chain> SplitQueue::pop() {
  State& s = state_;
  uint16_t availIndex = load<uint16_t>(s.availAddress + 2);
  uint16_t pending = static_cast<uint16_t>(availIndex - s.lastAvail);
  if (pending == 0) return std::nullopt;
  if (pending > s.size) malformed("available index jumped " + std::to_string(pending) + " entries ahead of a " + std::to_string(s.size) + "-entry queue");
  std::atomic_thread_fence(std::memory_order_acquire);  // the ring entry after the index
  uint16_t head = load<uint16_t>(s.availAddress + 4 + 2 * uint64_t(s.lastAvail % s.size));
  Chain chain;
  chain.head = head;
  uint32_t budget = kMaxChainLength;
  walk(s.descAddress, s.size, head, false, chain, budget);
  ++s.lastAvail;
  return chain;
}

void SplitQueue::push(std::span<const UsedEntry> entries) {
  State& s = state_;
  uint16_t index = s.usedIndex;
  for (const UsedEntry& e : entries) {
    uint64_t entry = s.usedAddress + 4 + 8 * uint64_t(index % s.size);
    store<uint32_t>(entry, e.head);
    store<uint32_t>(entry + 4, e.written);
    ++index;
  }
  std::atomic_thread_fence(std::memory_order_release);  // the entries before the index
  s.usedIndex = index;
  store<uint16_t>(s.usedAddress + 2, s.usedIndex);
}

bool SplitQueue::needsInterrupt() {
  State& s = state_;
  std::atomic_thread_fence(std::memory_order_seq_cst);  // used->idx before the driver's flags
  if (features_ & (uint64_t{1} << kFeatureEventIdx)) {
    uint16_t usedEvent = load<uint16_t>(s.availAddress + 4 + 2 * uint64_t(s.size));
    uint16_t old = s.signalledUsed;
    bool valid = s.signalledUsedValid;
    s.signalledUsed = s.usedIndex;
    s.signalledUsedValid = true;
    if (!valid) return true;
    // vring_need_event(): did used->idx pass used_event since the last interrupt?
    return static_cast<uint16_t>(s.usedIndex - usedEvent - 1) < static_cast<uint16_t>(s.usedIndex - old);
  }
  return !(load<uint16_t>(s.availAddress) & kAvailNoInterrupt);
}

void SplitQueue::publishAvailEvent() {
  if (!(features_ & (uint64_t{1} << kFeatureEventIdx))) return;
  store<uint16_t>(state_.usedAddress + 4 + 8 * uint64_t(state_.size), state_.lastAvail);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // before the caller looks at avail->idx again
}

void SplitQueue::State::save(snapshot::StateWriter& out) const {
  out.u16("size", size);
  out.boolean("ready", ready);
  out.u16("msixVector", msixVector);
  out.u64("descAddress", descAddress);
  out.u64("availAddress", availAddress);
  out.u64("usedAddress", usedAddress);
  out.u16("lastAvail", lastAvail);
  out.u16("usedIndex", usedIndex);
  out.u16("signalledUsed", signalledUsed);
  out.boolean("signalledUsedValid", signalledUsedValid);
}

SplitQueue::State SplitQueue::State::load(snapshot::StateReader& in, uint16_t maxSize) {
  State s;
  s.size = in.u16("size", maxSize);
  s.ready = in.boolean("ready");
  s.msixVector = in.u16("msixVector");
  s.descAddress = in.u64("descAddress");
  s.availAddress = in.u64("availAddress");
  s.usedAddress = in.u64("usedAddress");
  s.lastAvail = in.u16("lastAvail");
  s.usedIndex = in.u16("usedIndex");
  s.signalledUsed = in.u16("signalledUsed");
  s.signalledUsedValid = in.boolean("signalledUsedValid");
  return s;
}

}  // namespace hyve::virtio
