// The initrd unpacker on hostile shapes: cost linear in the bytes produced however many
// streams they come in, and memory bounded by the output (or the cap), not a multiple.
#include "boot/initrd.h"
#include "util/error.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <ctime>
#include <vector>

namespace hyve::boot {
namespace {

constexpr size_t kMiB = 1024 * 1024;

// ASan keeps freed memory in quarantine and adds shadow pages: resident-memory bounds
// hold only for a plain build (scripts/test-sanitized.sh runs these tests under ASan).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMeasuresRss = false;
#else
constexpr bool kMeasuresRss = true;
#endif

std::vector<uint8_t> gzip(const std::vector<uint8_t>& data) {
  z_stream s{};
  REQUIRE(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&s, data.size()));
  s.next_in = const_cast<Bytef*>(data.data());
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// Peak resident memory of this process so far, in bytes.
size_t peakRss() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<size_t>(usage.ru_maxrss) * 1024;
}

double cpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

TEST_CASE("initrd: ten thousand empty gzip members after 64 MiB cost time and memory linear in the output") {
  // Before: each stream grew the output to twice its size and zero-filled it (64 MiB per
  // empty member here, 640 GB in all: minutes) and the output peaked at twice its size.
  constexpr size_t kBytes = 64 * kMiB;
  constexpr int kMembers = 10'000;
  std::vector<uint8_t> file = gzip(std::vector<uint8_t>(kBytes, 'x'));
  std::vector<uint8_t> empty = gzip({});
  for (int i = 0; i < kMembers; ++i) file.insert(file.end(), empty.begin(), empty.end());

  size_t rssBefore = peakRss();
  double cpuBefore = cpuSeconds();
  InitrdImage image = unpackInitrd(std::move(file), "many-members.gz");
  double cpu = cpuSeconds() - cpuBefore;
  CHECK(image.compression == "gzip");
  REQUIRE(image.data().size() == kBytes);
  CHECK(image.data()[kBytes - 1] == 'x');
  // ~0.1 s of work (and ~0.5 s sanitized); the quadratic version needs minutes.
  CHECK(cpu < 10.0);
  // The output's own pages, plus decoder state and slack; the old growth touched twice that.
  if (kMeasuresRss) CHECK(peakRss() - rssBefore < kBytes + 24 * kMiB);
}

TEST_CASE("initrd: a decompression bomb stops at the cap, with memory near the cap") {
  constexpr uint64_t kLimit = 32 * kMiB;
  std::vector<uint8_t> bomb = gzip(std::vector<uint8_t>(4 * kLimit, 0));
  size_t rssBefore = peakRss();
  try {
    unpackInitrd(std::move(bomb), "bomb.gz", kLimit);
    FAIL("the bomb was unpacked");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::BadInitrd);
    CHECK(std::string(e.what()).find("expands beyond the 32 MiB limit") != std::string::npos);
  }
  if (kMeasuresRss) CHECK(peakRss() - rssBefore < kLimit + 24 * kMiB);
}

TEST_CASE("initrd: a few bytes asking for a huge decoder dictionary are refused before it is allocated") {
  // A legacy .lzma header: properties, a 768 MiB dictionary, unknown size, then data.
  std::vector<uint8_t> file = {0x5d, 0x00, 0x00, 0x00, 0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  file.resize(file.size() + 64, 0x41);
  size_t rssBefore = peakRss();
  try {
    unpackInitrd(std::move(file), "huge-dictionary.lzma");
    FAIL("the stream was unpacked");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::BadInitrd);
    CHECK(std::string(e.what()).find("needs more than 256 MiB of decoder memory") != std::string::npos);
  }
  if (kMeasuresRss) CHECK(peakRss() - rssBefore < 16 * kMiB);
}

TEST_CASE("initrd: cpio, zero padding and compressed pieces are joined in order, 4-byte aligned") {
  std::vector<uint8_t> file = gzip({'a', 'b', 'c'});
  file.insert(file.end(), 5, 0);  // padding between pieces
  std::vector<uint8_t> second = gzip({'d'});
  file.insert(file.end(), second.begin(), second.end());
  InitrdImage image = unpackInitrd(std::move(file), "joined.gz");
  std::vector<uint8_t> expected = {'a', 'b', 'c', 0, 'd', 0, 0, 0};
  CHECK(std::vector<uint8_t>(image.data().begin(), image.data().end()) == expected);
  CHECK(image.compression == "gzip");
}

TEST_CASE("initrd: data with nothing compressed is passed through unchanged") {
  std::vector<uint8_t> file = {1, 2, 3, 4, 5};
  InitrdImage image = unpackInitrd(file, "raw.img");
  CHECK(image.compression == "none");
  CHECK(std::vector<uint8_t>(image.data().begin(), image.data().end()) == file);
}

}  // namespace
}  // namespace hyve::boot
