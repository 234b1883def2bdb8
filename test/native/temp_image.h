// A sparse temporary image file for disk-device tests, removed at the end of the test.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hyve::test {

struct TempImage {
  std::string path;
  explicit TempImage(size_t bytes) {
    char name[] = "/tmp/hyve-blk-test-XXXXXX";
    int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, static_cast<off_t>(bytes)) == 0);
    ::close(fd);
    path = name;
  }
  ~TempImage() { ::unlink(path.c_str()); }
  TempImage(const TempImage&) = delete;
  TempImage& operator=(const TempImage&) = delete;
  std::vector<uint8_t> read(uint64_t offset, size_t length) const {
    std::vector<uint8_t> out(length);
    int fd = ::open(path.c_str(), O_RDONLY);
    CHECK(::pread(fd, out.data(), length, static_cast<off_t>(offset)) == static_cast<ssize_t>(length));
    ::close(fd);
    return out;
  }
  void write(uint64_t offset, const std::vector<uint8_t>& data) const {
    int fd = ::open(path.c_str(), O_WRONLY);
    CHECK(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)) == static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
};

}  // namespace hyve::test
