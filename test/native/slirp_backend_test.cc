// The user-mode backend without a guest: frames in, frames out, through libslirp on its
// own thread. ARP for the gateway is answered; a connection to a forwarded host port
// reaches the guest's side as frames for 10.0.2.15; a taken host port is refused by name.
#include "net/slirp_backend.h"
#include "util/error.h"

#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace hyve::net {
namespace {

constexpr uint8_t kGuestMac[6] = {0x02, 0, 0, 0, 0, 1};

void put32(std::vector<uint8_t>& frame, size_t at, uint32_t hostOrder) {
  uint32_t v = htonl(hostOrder);
  std::memcpy(frame.data() + at, &v, 4);
}

std::vector<uint8_t> arpRequest(uint32_t target) {
  std::vector<uint8_t> f(42, 0);
  std::memset(f.data(), 0xff, 6);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  f[12] = 0x08, f[13] = 0x06;  // ARP
  f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0, f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;  // Ethernet/IPv4, request
  std::memcpy(f.data() + 22, kGuestMac, 6);
  put32(f, 28, kUserGuest);
  put32(f, 38, target);
  return f;
}

// Waits up to `ms` for a frame from the backend that `match` accepts.
template <typename Match>
bool receiveMatching(SlirpBackend& backend, int ms, Match match) {
  std::vector<uint8_t> frame;
  for (int waited = 0; waited < ms; waited += 50) {
    backend.clearWake();
    while (backend.receive(frame)) {
      if (match(frame)) return true;
    }
    pollfd fd{backend.wakeFd(), POLLIN, 0};
    ::poll(&fd, 1, 50);
  }
  return false;
}

uint16_t freePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t length = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &length);
  ::close(s);
  return ntohs(a.sin_port);
}

TEST_CASE("slirp backend: the gateway answers ARP") {
  SlirpBackend backend({});
  REQUIRE(backend.transmit(arpRequest(kUserGateway)));
  bool answered = receiveMatching(backend, 5000, [](const std::vector<uint8_t>& f) {
    if (f.size() < 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 2) return false;  // an ARP reply
    uint32_t sender;
    std::memcpy(&sender, f.data() + 28, 4);
    return ntohl(sender) == kUserGateway && std::memcmp(f.data(), kGuestMac, 6) == 0;
  });
  CHECK(answered);
  CHECK(backend.failure().empty());
}

TEST_CASE("slirp backend: a connection to a forwarded host port becomes frames for the guest") {
  uint16_t port = freePort();
  SlirpBackend backend({{false, port, 8080}});
  REQUIRE(backend.transmit(arpRequest(kUserGateway)));  // slirp learns the guest's MAC
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  CHECK((rc == 0 || errno == EINPROGRESS));
  // A TCP SYN for 10.0.2.15:8080.
  bool syn = receiveMatching(backend, 5000, [](const std::vector<uint8_t>& f) {
    if (f.size() < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6) return false;
    uint32_t to;
    std::memcpy(&to, f.data() + 30, 4);
    size_t tcp = 14 + (f[14] & 0xf) * 4;
    return ntohl(to) == kUserGuest && f.size() >= tcp + 14 && (f[tcp + 2] << 8 | f[tcp + 3]) == 8080 && (f[tcp + 13] & 0x02);
  });
  CHECK(syn);
  ::close(s);
}

TEST_CASE("slirp backend: a host port that is taken is refused, naming the forward") {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(s, 1) == 0);
  socklen_t length = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &length);
  uint16_t port = ntohs(a.sin_port);
  try {
    SlirpBackend backend({{false, port, 22}});
    FAIL("a taken port was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::BadConfig);
    CHECK(std::string(e.what()).find("127.0.0.1:" + std::to_string(port) + " -> guest port 22") != std::string::npos);
  }
  ::close(s);
}

}  // namespace
}  // namespace hyve::net
