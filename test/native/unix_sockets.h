// The host side of devices that listen on UNIX stream sockets (vsock, virtio-console
// ports), for their unit tests.
#pragma once

#include "util/unique_fd.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace hyve::test {

inline UniqueFd unixSocket() { return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

inline sockaddr_un addressOf(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

// Bytes from `fd` until `want` arrived, EOF, or a second without any.
inline std::string receive(int fd, size_t want) {
  std::string out;
  while (out.size() < want) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) break;
    char buffer[65536];
    ssize_t n = ::recv(fd, buffer, std::min(sizeof buffer, want - out.size()), 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace hyve::test
