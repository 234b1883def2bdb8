#include "virtio/console/virtio_console.h"

#include "util/error.h"
#include "util/seccomp.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace hyve::virtio {

namespace {

constexpr unsigned kMultiportBit = 1;  // VIRTIO_CONSOLE_F_MULTIPORT

// Queues (§5.3.2): port 0's receive and transmit, the control pair, then each further port's pair.
constexpr unsigned kControlRx = 2;
constexpr unsigned kControlTx = 3;
unsigned rxQueue(uint32_t port) { return port == 0 ? 0 : 2 + 2 * port; }

// Control events (§5.3.6.2).
constexpr uint16_t kDeviceReady = 0;
constexpr uint16_t kDeviceAdd = 1;
constexpr uint16_t kPortReady = 3;
constexpr uint16_t kConsolePort = 4;
constexpr uint16_t kPortOpen = 6;
constexpr uint16_t kPortName = 7;

struct ControlHeader {
  uint32_t id;
  uint16_t event;
  uint16_t value;
};

UniqueFd newEventFd() {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throwErrno(ErrorCode::Internal, "eventfd");
  return UniqueFd(fd);
}

UniqueFd listenOn(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path) {
    throw Error(ErrorCode::BadConfig, "virtio-console socket path '" + path + "' is empty or longer than " +
                                          std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throwErrno(ErrorCode::Internal, "socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throwErrno(ErrorCode::BadConfig, "virtio-console: cannot listen on " + path);
  }
  if (::listen(fd.get(), 1) != 0) throwErrno(ErrorCode::Internal, "listen on " + path);
  return fd;
}

// The chain's buffers from byte `skip` on, as at most IOV_MAX iovecs.
std::vector<iovec> iovecs(const std::vector<Segment>& segments, uint64_t skip) {
  std::vector<iovec> out;
  for (const auto& s : segments) {
    if (out.size() == IOV_MAX) break;
    if (skip >= s.data.size()) {
      skip -= s.data.size();
      continue;
    }
    out.push_back({s.data.data() + skip, s.data.size() - skip});
    skip = 0;
  }
  return out;
}

bool validPortName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

VirtioConsole::Config VirtioConsole::parseArgs(const std::string& args) {
  Config config;
  size_t start = 0;
  while (start <= args.size() && !args.empty()) {
    size_t comma = args.find(',', start);
    std::string item = args.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t equals = item.find('=');
    if (item == "console") {
      config.console = true;
    } else if (equals != std::string::npos) {
      NamedPort port{item.substr(0, equals), item.substr(equals + 1)};
      if (!validPortName(port.name)) {
        throw Error(ErrorCode::BadConfig, "virtio-console port name '" + port.name + "' must be 1-64 of [A-Za-z0-9._-]");
      }
      for (const auto& other : config.ports) {
        if (other.name == port.name) throw Error(ErrorCode::BadConfig, "virtio-console port '" + port.name + "' is named twice");
      }
      config.ports.push_back(std::move(port));
    } else {
      throw Error(ErrorCode::BadConfig, "virtio-console option '" + item + "' is neither 'console' nor name=/socket/path");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (config.ports.size() > kMaxNamedPorts) {
    throw Error(ErrorCode::BadConfig, "virtio-console has at most " + std::to_string(kMaxNamedPorts) + " named ports");
  }
  if (!config.console && config.ports.empty()) {
    throw Error(ErrorCode::BadConfig, "virtio-console needs 'console' or a port: -s N,virtio-console[,console][,name=/socket/path...]");
  }
  return config;
}

VirtioConsole::VirtioConsole(Config config) : config_(std::move(config)) {
  for (const auto& named : config_.ports) {
    Port port;
    port.named = named;
    port.listener = listenOn(named.socket);
    ports_.push_back(std::move(port));
  }
  wake_ = newEventFd();
  stop_ = newEventFd();
  poller_ = std::thread(&VirtioConsole::poll, this);
}

VirtioConsole::~VirtioConsole() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  poller_.join();
  for (const auto& port : ports_) ::unlink(port.named.socket.c_str());
}

uint64_t VirtioConsole::features() const { return uint64_t{1} << kMultiportBit; }

std::vector<uint16_t> VirtioConsole::queueSizes() const {
  std::vector<uint16_t> sizes{kDataQueueSize, kDataQueueSize, kControlQueueSize, kControlQueueSize};
  for (size_t i = 0; i < ports_.size(); ++i) sizes.insert(sizes.end(), {kDataQueueSize, kDataQueueSize});
  return sizes;
}

void VirtioConsole::readConfig(uint64_t offset, std::span<uint8_t> data) const {
  uint8_t config[12] = {};  // cols, rows (no SIZE feature), max_nr_ports, emerg_wr
  uint32_t ports = portCount();
  std::memcpy(config + 4, &ports, 4);
  std::fill(data.begin(), data.end(), 0);
  if (offset < sizeof config) std::memcpy(data.data(), config + offset, std::min<uint64_t>(data.size(), sizeof config - offset));
}

void VirtioConsole::reset() {
  std::lock_guard lock(mutex_);
  control_.clear();
  for (auto& port : ports_) {
    port.txOffset = 0;  // the driver's requests are gone
    port.rxWaiting = port.txWaiting = port.guestOpen = port.hostClosed = false;
  }
}

// ---- snapshots ----

// Port 0's role and the ports' names first, so savedConfig() reads them alone; then per
// port whether a guest process has it open, whether it had a peer (a copy has none) and
// whether the guest was told it closed; the console's unread input; the control messages
// the driver has not taken. The transport is paused: no request is being served.
void VirtioConsole::saveDeviceState(snapshot::StateWriter& out, const std::string& /*files*/) const {
  std::lock_guard lock(mutex_);  // the port watcher accepts peers meanwhile
  out.boolean("console", config_.console);
  out.u32("ports", static_cast<uint32_t>(ports_.size()));
  for (const auto& port : ports_) {
    out.blob("name", {reinterpret_cast<const uint8_t*>(port.named.name.data()), port.named.name.size()});
  }
  for (const auto& port : ports_) {
    out.boolean("guestOpen", port.guestOpen);
    out.boolean("peer", port.peer.valid());
    out.boolean("hostClosed", port.hostClosed);
  }
  std::vector<uint8_t> input(consoleInput_.begin(), consoleInput_.end());
  out.blob("consoleInput", input);
  out.u32("control", static_cast<uint32_t>(control_.size()));
  for (const auto& message : control_) out.blob("message", message);
}

VirtioConsole::Config VirtioConsole::savedConfig(snapshot::StateReader& in) {
  Config config;
  config.console = in.boolean("console");
  uint32_t count = in.u32("ports", kMaxNamedPorts);
  for (uint32_t i = 0; i < count; ++i) {
    auto name = in.blob("name");
    NamedPort port{std::string(name.begin(), name.end()), {}};
    if (!validPortName(port.name)) in.fail("field 'name' is not a port name");
    for (const auto& other : config.ports) {
      if (other.name == port.name) in.fail("names port '" + port.name + "' twice");
    }
    config.ports.push_back(std::move(port));
  }
  if (!config.console && config.ports.empty()) in.fail("has neither a console nor a port");
  return config;
}

// Everything is read and checked before the device changes: a bad snapshot leaves it as it was.
void VirtioConsole::restoreDeviceState(snapshot::StateReader& in, const std::string& /*files*/) {
  Config saved = savedConfig(in);
  auto names = [](const Config& c) {
    std::string out = c.console ? "console" : "";
    for (const auto& p : c.ports) out += (out.empty() ? "" : ",") + p.name;
    return out;
  };
  if (saved.console != config_.console || names(saved) != names(config_)) {
    // The caller names the copy's ports, each with a socket of its own, after the snapshot's.
    in.fail("has virtio-console ports [" + names(saved) + "], the device [" + names(config_) + "]");
  }
  struct Saved {
    bool guestOpen, peer, hostClosed;
  };
  std::vector<Saved> ports;
  for (size_t i = 0; i < ports_.size(); ++i) ports.push_back({in.boolean("guestOpen"), in.boolean("peer"), in.boolean("hostClosed")});
  auto input = in.blob("consoleInput");
  if (input.size() > kConsoleInputBytes) in.fail("field 'consoleInput' holds more than " + std::to_string(kConsoleInputBytes) + " bytes");
  if (!input.empty() && !config_.console) in.fail("field 'consoleInput' holds input for a port 0 that is no console");
  uint32_t count = in.u32("control", kMaxSavedControl);
  std::deque<std::vector<uint8_t>> control;
  for (uint32_t i = 0; i < count; ++i) {
    auto message = in.blob("message");
    ControlHeader header{};
    if (message.size() < sizeof header) in.fail("field 'message' is shorter than a control header");
    std::memcpy(&header, message.data(), sizeof header);
    std::string extra(message.begin() + sizeof header, message.end());
    // Only what sendControl() sends: a name only with PORT_NAME, and only the port's own.
    bool fits = header.id < portCount() && (header.id != 0 || config_.console);
    switch (header.event) {
      case kDeviceAdd:
        fits = fits && extra.empty();
        break;
      case kConsolePort:
        fits = fits && header.id == 0 && extra.empty();
        break;
      case kPortOpen:
        fits = fits && header.value <= 1 && extra.empty();
        break;
      case kPortName:
        fits = fits && header.id != 0 && extra == ports_[header.id - 1].named.name;
        break;
      default:
        fits = false;
    }
    if (!fits) {
      in.fail("field 'message' is no control message this device sends (port " + std::to_string(header.id) + ", event " +
              std::to_string(header.event) + ")");
    }
    control.emplace_back(message.begin(), message.end());
  }

  std::lock_guard lock(mutex_);
  consoleInput_.assign(input.begin(), input.end());
  control_ = std::move(control);
  for (size_t i = 0; i < ports_.size(); ++i) {
    Port& port = ports_[i];
    port.guestOpen = ports[i].guestOpen;
    port.txOffset = 0;  // a copy's peer gets the whole of a request the original's had part of
    port.rxWaiting = port.txWaiting = port.peerEof = false;
    // This process has none of the original's peers: the guest's readers see end of file
    // until the copy's first peer connects.
    port.hostClosed = ports[i].peer || ports[i].hostClosed;
    if (!ports[i].peer) continue;
    uint32_t id = static_cast<uint32_t>(i + 1);
    std::erase_if(control_, [id](const std::vector<uint8_t>& message) {  // superseded; keeps the backlog bounded
      ControlHeader header;
      std::memcpy(&header, message.data(), sizeof header);
      return header.id == id && header.event == kPortOpen;
    });
    sendControl(id, kPortOpen, 0);
  }
}

void VirtioConsole::sendControl(uint32_t id, uint16_t event, uint16_t value, const std::string& extra) {
  ControlHeader header{id, event, value};
  std::vector<uint8_t> message(sizeof header + extra.size());
  std::memcpy(message.data(), &header, sizeof header);
  std::memcpy(message.data() + sizeof header, extra.data(), extra.size());
  control_.push_back(std::move(message));
  if (kick_) kick_(kControlRx);
}

uint32_t VirtioConsole::controlFromDriver(const Chain& chain) {
  ControlHeader header{};
  if (chain.read(0, std::span(reinterpret_cast<uint8_t*>(&header), sizeof header)) < sizeof header) return 0;
  std::lock_guard lock(mutex_);
  // Each message below adds at most portCount() messages, so this bounds the backlog.
  if (control_.size() >= kMaxPendingControl) return kDeferRequest;
  switch (header.event) {
    case kDeviceReady:
      if (header.value != 1) break;
      if (config_.console) sendControl(0, kDeviceAdd, 0);
      for (uint32_t id = 1; id < portCount(); ++id) sendControl(id, kDeviceAdd, 0);
      break;
    case kPortReady:
      if (header.value != 1 || header.id >= portCount()) break;
      if (header.id == 0) {
        if (config_.console) sendControl(0, kConsolePort, 1);
      } else {
        sendControl(header.id, kPortName, 0, ports_[header.id - 1].named.name);
      }
      // The host side counts as connected from the start: until a peer connects, the
      // guest's writes wait in their ring and its reads wait for data.
      if (header.id != 0) ports_[header.id - 1].hostClosed = false;
      sendControl(header.id, kPortOpen, 1);
      break;
    case kPortOpen:
      // Linux drops what arrives for a port no guest process has open, so the peer's
      // bytes wait in its socket until one opens it.
      if (header.id == 0 || header.id >= portCount()) break;
      ports_[header.id - 1].guestOpen = header.value == 1;
      if (header.value == 1 && kick_) kick_(rxQueue(header.id));
      break;
    default:  // the rest need no answer
      break;
  }
  return 0;
}

void VirtioConsole::wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void VirtioConsole::dropPeer(Port& port) {
  port.peer.reset();
  port.peerEof = port.rxWaiting = port.txWaiting = false;
  wake();  // listen again
}

uint32_t VirtioConsole::receive(Port& port, const Chain& chain) {
  // Served once a peer connects and a guest process opens the port.
  if (!port.peer.valid() || port.peerEof || !port.guestOpen) return kDeferRequest;
  auto iov = iovecs(chain.writable, 0);
  if (iov.empty()) return 0;
  msghdr message{};
  message.msg_iov = iov.data();
  message.msg_iovlen = iov.size();
  ssize_t n = ::recvmsg(port.peer.get(), &message, MSG_DONTWAIT);
  if (n > 0) return static_cast<uint32_t>(n);
  if (n == 0) {
    port.peerEof = true;  // the peer may still read what the guest sends
    return kDeferRequest;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    port.rxWaiting = true;
    wake();
    return kDeferRequest;
  }
  dropPeer(port);
  return kDeferRequest;
}

uint32_t VirtioConsole::transmit(Port& port, const Chain& chain) {
  if (!port.peer.valid()) return kDeferRequest;
  uint64_t total = chain.readableBytes();
  while (port.txOffset < total) {
    auto iov = iovecs(chain.readable, port.txOffset);
    msghdr message{};
    message.msg_iov = iov.data();
    message.msg_iovlen = iov.size();
    ssize_t n = ::sendmsg(port.peer.get(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      port.txOffset += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      port.txWaiting = true;
      wake();
    } else {
      dropPeer(port);  // the rest goes to the next peer
    }
    return kDeferRequest;
  }
  port.txOffset = 0;
  return 0;
}

uint32_t VirtioConsole::handle(unsigned queue, const Chain& chain) {
  if (queue == kControlTx) return controlFromDriver(chain);
  if (queue == kControlRx) {
    std::lock_guard lock(mutex_);
    if (control_.empty()) return kDeferRequest;
    const auto& message = control_.front();
    uint32_t written = static_cast<uint32_t>(chain.write(0, message));
    control_.pop_front();
    if (control_.size() + 1 == kMaxPendingControl && kick_) kick_(kControlTx);  // room for the driver's messages
    return written;
  }
  if (queue < 2) {  // port 0
    if (queue == 1) {
      if (!config_.console) return 0;
      for (const auto& s : chain.readable) config_.consoleOutput(s.data);
      return 0;
    }
    size_t taken = 0;
    {
      std::lock_guard lock(mutex_);
      if (consoleInput_.empty()) return kDeferRequest;
      for (const auto& s : chain.writable) {
        size_t n = std::min(s.data.size(), consoleInput_.size());
        std::copy_n(consoleInput_.begin(), n, s.data.begin());
        consoleInput_.erase(consoleInput_.begin(), consoleInput_.begin() + static_cast<std::ptrdiff_t>(n));
        taken += n;
        if (consoleInput_.empty()) break;
      }
    }
    if (taken > 0 && config_.consoleDrained) config_.consoleDrained();
    return static_cast<uint32_t>(taken);
  }
  uint32_t id = (queue - 2) / 2;
  if (id == 0 || id >= portCount()) return 0;
  std::lock_guard lock(mutex_);
  Port& port = ports_[id - 1];
  return queue % 2 == 0 ? receive(port, chain) : transmit(port, chain);
}

size_t VirtioConsole::pushConsoleInput(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  size_t n = std::min(bytes.size(), kConsoleInputBytes - consoleInput_.size());
  consoleInput_.insert(consoleInput_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
  if (n > 0 && kick_) kick_(0);
  return n;
}

// The host side of the named ports: accepts a peer when a port has none, and kicks a
// port's queue when the request it deferred can go on.
void VirtioConsole::poll() {
  seccomp::confineThread("con-ports");
  for (;;) {
    std::vector<pollfd> fds{{stop_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    std::vector<std::pair<uint32_t, bool>> owners;  // port id, whether the fd is the listener
    {
      std::lock_guard lock(mutex_);
      for (uint32_t i = 0; i < ports_.size(); ++i) {
        const Port& port = ports_[i];
        short events = 0;
        if (!port.peer.valid()) {
          fds.push_back({port.listener.get(), POLLIN, 0});
          owners.push_back({i + 1, true});
          continue;
        }
        if (port.rxWaiting) events |= POLLIN;
        if (port.txWaiting) events |= POLLOUT;
        if (events == 0) continue;
        fds.push_back({port.peer.get(), events, 0});
        owners.push_back({i + 1, false});
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    uint64_t count;
    if (fds[1].revents) (void)!::read(wake_.get(), &count, sizeof count);
    std::lock_guard lock(mutex_);
    for (size_t k = 0; k < owners.size(); ++k) {
      short revents = fds[k + 2].revents;
      if (!revents) continue;
      auto [id, listener] = owners[k];
      Port& port = ports_[id - 1];
      if (listener) {
        int peer = ::accept4(port.listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (peer < 0) continue;
        port.peer.reset(peer);
        port.peerEof = false;
        if (port.hostClosed) {  // a restored copy's first peer: the guest may use the port again
          port.hostClosed = false;
          sendControl(id, kPortOpen, 1);
        }
      } else {
        if (revents & (POLLIN | POLLHUP | POLLERR)) port.rxWaiting = false;
        if (revents & (POLLOUT | POLLHUP | POLLERR)) port.txWaiting = false;
      }
      if (kick_) {
        kick_(rxQueue(id));
        kick_(rxQueue(id) + 1);
      }
    }
  }
}

}  // namespace hyve::virtio
