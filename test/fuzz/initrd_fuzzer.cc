// libFuzzer target: the initrd unpacker (every host decompressor, the newc cpio walker,
// padding and concatenation). Whatever the input, unpackInitrd() returns an image or
// throws hyve::Error(BadInitrd); sanitizers catch the rest. Built and run by
// scripts/fuzz.sh; seeds in test/fuzz/corpus/initrd/.
#include "boot/initrd.h"
#include "util/error.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

// Small enough that a bomb stops quickly, large enough for real pieces.
constexpr uint64_t kLimit = 16 * 1024 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    hyve::boot::InitrdImage image = hyve::boot::unpackInitrd(std::vector<uint8_t>(data, data + size), "fuzz", kLimit);
    // Read all of what the guest would receive (ASan checks every byte is addressable).
    uint8_t sum = 0;
    for (uint8_t byte : image.data()) sum = static_cast<uint8_t>(sum + byte);
    if (image.data().size() > kLimit + 3 + (sum & 0)) __builtin_trap();  // the cap (plus padding) held
  } catch (const hyve::Error& e) {
    if (e.code() != hyve::ErrorCode::BadInitrd) __builtin_trap();
  }
  return 0;
}
