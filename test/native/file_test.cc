// Input files: opened without blocking, regular files only, errors naming the path.
#include "util/file.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace hyve {
namespace {

std::string temporaryPath(const char* name) { return "/tmp/hyve-file-test-" + std::to_string(::getpid()) + "-" + name; }

std::string errorOf(const std::string& path) {
  try {
    readRegularFile(path, "kernel", ErrorCode::BadKernel, 1024);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::BadKernel);
    return e.what();
  }
  return "";
}

TEST_CASE("input files: a FIFO without a writer is refused at once, not waited on") {
  std::string fifo = temporaryPath("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(errorOf(fifo) == "kernel " + fifo + " is a FIFO, not a regular file");
  ::unlink(fifo.c_str());
}

TEST_CASE("input files: directories and devices are refused by kind; a missing file says so") {
  CHECK(errorOf("/tmp") == "kernel /tmp is a directory, not a regular file");
  CHECK(errorOf("/dev/null") == "kernel /dev/null is a character device, not a regular file");
  CHECK(errorOf("/nonexistent/k").starts_with("cannot open kernel /nonexistent/k: "));
}

TEST_CASE("input files: a regular file is read whole, and one over the cap is refused before reading") {
  std::string file = temporaryPath("regular");
  std::FILE* f = std::fopen(file.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::fputs("hello", f);
  std::fclose(f);
  CHECK(readRegularFile(file, "initrd", ErrorCode::BadInitrd, 5) == std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'});
  try {
    readRegularFile(file, "initrd", ErrorCode::BadInitrd, 4);
    FAIL("a file over the cap was read");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "initrd " + file + " is 5 bytes, more than the 4 bytes accepted");
  }
  ::unlink(file.c_str());
}

}  // namespace
}  // namespace hyve
