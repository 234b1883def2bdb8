#include "util/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace hyve {

namespace {

const char* fileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

std::string sizeText(uint64_t bytes) {
  constexpr uint64_t kMiB = 1024 * 1024;
  return bytes >= kMiB ? std::to_string(bytes / kMiB) + " MiB" : std::to_string(bytes) + " bytes";
}

}  // namespace

UniqueFd openRegularFile(const std::string& path, const std::string& what, ErrorCode code, struct stat* info) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) throwErrno(code, "cannot open " + what + " " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throwErrno(code, "cannot stat " + what + " " + path);
  if (!S_ISREG(st.st_mode)) {
    std::string kind = fileKind(st.st_mode);
    throw Error(code, what + " " + path + " is " + kind + (kind.starts_with("a ") ? ", not a regular file" : ""));
  }
  // O_NONBLOCK means nothing for a regular file's reads; drop it so the descriptor is an
  // ordinary one for whoever maps or reads it next.
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0) throwErrno(code, "cannot use " + what + " " + path);
  if (info != nullptr) *info = st;
  return fd;
}

std::vector<uint8_t> readRegularFile(const std::string& path, const std::string& what, ErrorCode code, uint64_t maxBytes) {
  struct stat info {};
  UniqueFd fd = openRegularFile(path, what, code, &info);
  if (static_cast<uint64_t>(info.st_size) > maxBytes) {
    throw Error(code, what + " " + path + " is " + sizeText(static_cast<uint64_t>(info.st_size)) + ", more than the " +
                          sizeText(maxBytes) + " accepted");
  }
  std::vector<uint8_t> data(static_cast<size_t>(info.st_size));
  size_t filled = 0;
  while (filled < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + filled, data.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throwErrno(code, "cannot read " + what + " " + path);
    if (n == 0) break;  // the file shrank while we read it
    filled += static_cast<size_t>(n);
  }
  data.resize(filled);
  return data;
}

}  // namespace hyve
