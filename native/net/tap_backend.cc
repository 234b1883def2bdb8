#include "net/tap_backend.h"

#include "util/error.h"
#include "util/event_fd.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace hyve::net {

namespace {

// struct virtio_net_hdr_v1, all zeros: no checksum or segmentation offload either way.
constexpr size_t kVnetHeaderBytes = 12;

}  // namespace

TapBackend::TapBackend(const std::string& name) : name_(name), idle_(newEventFd()), buffer_(kVnetHeaderBytes + kMaxFrameBytes) {
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos) {
    throw Error(ErrorCode::BadConfig, "virtio-tap: '" + name + "' is not a network interface name");
  }
  // TUNSETIFF would create a missing device for root: refuse instead, so a typo is an error.
  struct stat st{};
  if (::stat(("/sys/class/net/" + name).c_str(), &st) != 0) {
    throw Error(ErrorCode::BadConfig, "virtio-tap: tap device " + name + " does not exist; create it first: ip tuntap add dev " + name +
                                          " mode tap user $(id -un) && ip link set " + name + " up (as root)");
  }
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throwErrno(ErrorCode::BadConfig, "virtio-tap: cannot open /dev/net/tun for " + name + " (load the tun module: modprobe tun)");
  }
  fd_.reset(fd);
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd, TUNSETIFF, &request) < 0) {
    if (errno == EPERM || errno == EACCES) {
      throw Error(ErrorCode::BadConfig, "virtio-tap: no permission to attach to tap device " + name +
                                            ": run as root, or give it to this user: ip tuntap add dev " + name + " mode tap user $(id -un)");
    }
    throwErrno(ErrorCode::BadConfig, "virtio-tap: cannot attach to " + name + " (is it a tap device, not tun, and free?)");
  }
  // The guest gets the tap's MTU (VIRTIO_NET_F_MTU), so both ends agree on frame sizes.
  if (UniqueFd probe(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)); probe.valid()) {
    ifreq query{};
    std::strncpy(query.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (::ioctl(probe.get(), SIOCGIFMTU, &query) == 0 && query.ifr_mtu >= 68 && query.ifr_mtu <= 65535 - 18) {
      mtu_ = static_cast<uint16_t>(query.ifr_mtu);
    }
  }
  int header = kVnetHeaderBytes;
  if (::ioctl(fd, TUNSETVNETHDRSZ, &header) < 0) throwErrno(ErrorCode::BadConfig, "virtio-tap: " + name + ": TUNSETVNETHDRSZ");
}

bool TapBackend::transmit(std::span<const uint8_t> frame) {
  if (!failure().empty()) return true;  // dropped: the guest never waits on a dead device
  uint8_t header[kVnetHeaderBytes] = {};
  iovec iov[2] = {{header, sizeof header}, {const_cast<uint8_t*>(frame.data()), frame.size()}};
  // A full kernel queue drops the frame, as a busy link does; so does a tap whose link is
  // down (EIO), as an unplugged cable does: the host may bring it up later (a test moves
  // the tap into a namespace and sets it up after the guest is already sending).
  if (::writev(fd_.get(), iov, 2) < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS && errno != EIO) {
    fail("tap device " + name_ + " failed: " + std::strerror(errno) + " (was it removed?)");
  }
  return true;
}

bool TapBackend::receive(std::vector<uint8_t>& frame) {
  if (!failure().empty()) return false;
  for (;;) {
    ssize_t n = ::read(fd_.get(), buffer_.data(), buffer_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) fail("tap device " + name_ + " failed: " + std::strerror(errno) + " (was it removed?)");
      return false;
    }
    if (static_cast<size_t>(n) < kVnetHeaderBytes + kMinFrameBytes) continue;  // a runt from the host side
    frame.assign(buffer_.begin() + kVnetHeaderBytes, buffer_.begin() + n);
    return true;
  }
}

int TapBackend::wakeFd() const { return failure().empty() ? fd_.get() : idle_.get(); }

std::string TapBackend::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

void TapBackend::fail(const std::string& why) {
  std::lock_guard lock(mutex_);
  if (failure_.empty()) failure_ = why;
}

}  // namespace hyve::net
