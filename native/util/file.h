// Opening the files hyve reads as input (kernels, initrds, snapshot files): paths come
// from users and from snapshot headers, so anything may sit behind them. A FIFO or a
// device would block open() or read() forever in native code, where no JavaScript
// signal handler can run; these helpers never block and accept regular files only.
#pragma once

#include "util/error.h"
#include "util/unique_fd.h"

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hyve {

// Opens `path` read-only with O_NONBLOCK|O_CLOEXEC (a FIFO with no writer must not stall
// open()), then refuses anything but a regular file. `what` names the file in messages
// ("kernel", "snapshot memory file"); every error is Error(code) naming the path. Fills
// `info` with the file's fstat() when given.
UniqueFd openRegularFile(const std::string& path, const std::string& what, ErrorCode code, struct stat* info = nullptr);

// The whole regular file, read through openRegularFile(). Files over `maxBytes` are
// refused (Error(code)) before anything is allocated, and at most `maxBytes` are read
// even if the file grows meanwhile.
std::vector<uint8_t> readRegularFile(const std::string& path, const std::string& what, ErrorCode code, uint64_t maxBytes);

}  // namespace hyve
