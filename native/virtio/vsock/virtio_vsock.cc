#include "virtio/vsock/virtio_vsock.h"

#include "util/error.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

namespace hyve::virtio {

using vsock::Header;

namespace {

constexpr size_t kMaxConnectLine = 32;  // "CONNECT 4294967295\n" fits
constexpr uint32_t kCreditUpdateThreshold = VirtioVsock::kBufAlloc / 4;

// The chain's buffers from byte `offset` on, `length` bytes at most, as iovecs.
std::vector<iovec> iovecsOf(const std::vector<Segment>& segments, uint64_t offset, uint64_t length) {
  std::vector<iovec> out;
  for (const Segment& s : segments) {
    if (length == 0) break;
    if (offset >= s.data.size()) {
      offset -= s.data.size();
      continue;
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(s.data.size() - offset, length));
    out.push_back({s.data.data() + offset, take});
    length -= take;
    offset = 0;
  }
  return out;
}

bool wouldBlock(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

sockaddr_un unixAddress(const std::string& path, bool& fits) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  fits = path.size() < sizeof address.sun_path;
  if (fits) std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace

struct VirtioVsock::Connection {
  enum class State { AwaitConnect, Connecting, Established };
  State state = State::AwaitConnect;
  UniqueFd host;
  uint32_t hostPort = 0;
  uint32_t guestPort = 0;
  std::string line;           // the host client's CONNECT line so far
  bool hostReadable = false;  // the host socket may have data (edge-triggered: until EAGAIN)
  bool hostEof = false;       // the host sent its last byte; the guest was told (SHUTDOWN SEND)
  bool hostWriteShut = false;
  // Guest data the host socket has not taken yet; never more than kBufAlloc bytes.
  std::vector<uint8_t> pending;
  size_t pendingStart = 0;
  uint32_t fwdCnt = 0;           // guest bytes handed to the host socket
  uint32_t reportedFwdCnt = 0;   // fwdCnt as the guest last heard it
  bool creditUpdateQueued = false;
  uint32_t txCnt = 0;            // bytes sent to the guest
  uint32_t peerBufAlloc = 0;     // the guest's receive buffer and what it has consumed
  uint32_t peerFwdCnt = 0;
  bool guestShutSend = false;
  bool guestShutRcv = false;

  size_t pendingBytes() const { return pending.size() - pendingStart; }
  // What the guest can take now; a guest reporting more consumed than it was sent gets none.
  uint32_t credit() const {
    uint32_t inFlight = txCnt - peerFwdCnt;
    return inFlight >= peerBufAlloc ? 0 : peerBufAlloc - inFlight;
  }
};

VirtioVsock::VirtioVsock(std::string socketPath, uint64_t guestCid) : socketPath_(std::move(socketPath)), guestCid_(guestCid) {
  if (guestCid_ <= vsock::kHostCid || guestCid_ >= 0xffffffff) {
    throw Error(ErrorCode::BadConfig, "virtio-vsock guest CID " + std::to_string(guestCid_) + " is not between 3 and 4294967294");
  }
  bool fits = false;
  sockaddr_un address = unixAddress(socketPath_, fits);
  // The longest guest port suffix ("_4294967295") must fit too.
  if (!fits || socketPath_.size() + 11 >= sizeof address.sun_path) {
    throw Error(ErrorCode::BadConfig, "virtio-vsock socket path '" + socketPath_ + "' is longer than " +
                                          std::to_string(sizeof address.sun_path - 12) + " bytes");
  }
  struct stat existing{};
  if (::lstat(socketPath_.c_str(), &existing) == 0 && S_ISSOCK(existing.st_mode)) ::unlink(socketPath_.c_str());
  listener_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener_.valid()) throwErrno(ErrorCode::Internal, "vsock socket");
  if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throwErrno(ErrorCode::BadConfig, "virtio-vsock: cannot listen on " + socketPath_);
  }
  if (::listen(listener_.get(), 64) != 0) throwErrno(ErrorCode::Internal, "vsock listen");
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) throwErrno(ErrorCode::Internal, "epoll_create1");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), &event) != 0) throwErrno(ErrorCode::Internal, "epoll_ctl");
}

VirtioVsock::~VirtioVsock() { ::unlink(socketPath_.c_str()); }

void VirtioVsock::readConfig(uint64_t offset, std::span<uint8_t> data) const {
  uint8_t config[8];
  std::memcpy(config, &guestCid_, 8);
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof config ? config[offset + i] : 0;
}

void VirtioVsock::reset() {
  byFd_.clear();
  connections_.clear();
  pendingClients_.clear();
  control_.clear();
  resetEventPending_ = false;
  active_ = false;
}

// The next host port too: a restored guest may still hold sockets of connections it had
// (closing ones linger for seconds after the transport reset), and a new connection from a
// port it remembers would be taken for one of them and refused.
void VirtioVsock::saveDeviceState(snapshot::StateWriter& out, const std::string& /*files*/) const {
  out.u64("guestCid", guestCid_);
  out.u32("nextHostPort", nextHostPort_);
}

void VirtioVsock::restoreDeviceState(snapshot::StateReader& in, const std::string& /*files*/) {
  uint64_t cid = in.u64("guestCid");
  if (cid <= vsock::kHostCid || cid >= 0xffffffff) in.fail("field 'guestCid' is not a guest CID (" + std::to_string(cid) + ")");
  uint32_t nextPort = in.u32("nextHostPort");
  if (nextPort < kFirstHostPort) in.fail("field 'nextHostPort' is below the first host port (" + std::to_string(nextPort) + ")");
  guestCid_ = cid;
  nextHostPort_ = nextPort;
  // This process has none of the connections the guest remembers: tell it (§5.10.6.7).
  reset();
  resetEventPending_ = true;
}

uint32_t VirtioVsock::handle(unsigned queue, const Chain& chain) {
  switch (queue) {
    case kRxQueue:
      return handleRx(chain);
    case kTxQueue:
      handleTx(chain);
      kickRx();  // a reply, a credit update or new credit for host data may be waiting
      return 0;
    default: {
      if (!resetEventPending_) return kDeferRequest;
      if (chain.writableBytes() < 4) throw QueueError{"event buffer is shorter than an event"};
      uint32_t id = vsock::kEventTransportReset;
      chain.write(0, {reinterpret_cast<const uint8_t*>(&id), 4});
      resetEventPending_ = false;
      return 4;
    }
  }
}

// ---- device → guest ----

Header VirtioVsock::headerFor(uint32_t hostPort, uint32_t guestPort, uint16_t op) {
  Header h;
  h.srcCid = vsock::kHostCid;
  h.dstCid = guestCid_;
  h.srcPort = hostPort;
  h.dstPort = guestPort;
  h.type = vsock::kTypeStream;
  h.op = op;
  if (auto it = connections_.find(keyOf(hostPort, guestPort)); it != connections_.end()) {
    Connection& c = *it->second;
    h.bufAlloc = kBufAlloc;
    h.fwdCnt = c.fwdCnt;
    c.reportedFwdCnt = c.fwdCnt;
    c.creditUpdateQueued = false;
  }
  return h;
}

uint32_t VirtioVsock::handleRx(const Chain& chain) {
  uint64_t room = chain.writableBytes();
  if (room < Header::kSize) throw QueueError{"rx buffer of " + std::to_string(room) + " bytes cannot hold a packet header"};
  uint8_t raw[Header::kSize];
  if (!control_.empty()) {
    Control c = control_.front();
    control_.pop_front();
    Header h = headerFor(c.hostPort, c.guestPort, c.op);
    h.flags = c.flags;
    h.serialize(raw);
    chain.write(0, raw);
    return Header::kSize;
  }
  // Data: round robin over the connections, from the one after the last served.
  for (size_t turn = 0; turn < 2; ++turn) {
    auto it = turn == 0 ? connections_.lower_bound(nextRxKey_) : connections_.begin();
    auto end = turn == 0 ? connections_.end() : connections_.lower_bound(nextRxKey_);
    for (; it != end; ++it) {
      Connection& c = *it->second;
      if (c.state != Connection::State::Established || !c.hostReadable || c.hostEof || c.guestShutRcv) continue;
      uint32_t take = static_cast<uint32_t>(std::min<uint64_t>({c.credit(), room - Header::kSize, kMaxPacketData}));
      if (take == 0) continue;
      auto iov = iovecsOf(chain.writable, Header::kSize, take);
      ssize_t n = ::readv(c.host.get(), iov.data(), static_cast<int>(iov.size()));
      if (n < 0 && (wouldBlock(errno) || errno == EINTR)) {
        c.hostReadable = false;
        continue;
      }
      Key key = it->first;
      nextRxKey_ = key + 1;
      Header h;
      if (n < 0) {
        h = headerFor(c.hostPort, c.guestPort, vsock::kOpRst);
        drop(key);
      } else if (n == 0) {
        c.hostEof = true;
        c.hostReadable = false;
        h = headerFor(c.hostPort, c.guestPort, vsock::kOpShutdown);
        h.flags = vsock::kShutdownSend;
      } else {
        h = headerFor(c.hostPort, c.guestPort, vsock::kOpRw);
        h.len = static_cast<uint32_t>(n);
        c.txCnt += static_cast<uint32_t>(n);
      }
      h.serialize(raw);
      chain.write(0, raw);
      return Header::kSize + h.len;
    }
  }
  return kDeferRequest;
}

void VirtioVsock::kickRx() {
  if (kick_ && (!control_.empty() || std::any_of(connections_.begin(), connections_.end(), [](const auto& entry) {
                  return entry.second->hostReadable;
                }))) {
    kick_(kRxQueue);
  }
}

void VirtioVsock::queueControl(uint32_t hostPort, uint32_t guestPort, uint16_t op, uint32_t flags) {
  if (control_.size() >= kMaxPendingControl) return;  // a driver that posts no rx buffers loses replies
  control_.push_back({hostPort, guestPort, op, flags});
}

void VirtioVsock::drop(Key key) {
  auto it = connections_.find(key);
  if (it == connections_.end()) return;
  byFd_.erase(it->second->host.get());
  connections_.erase(it);  // closing the fd takes it out of the epoll set
}

void VirtioVsock::reset(Key key) {
  queueControl(static_cast<uint32_t>(key >> 32), static_cast<uint32_t>(key), vsock::kOpRst);
  drop(key);
}

// ---- guest → device ----

void VirtioVsock::handleTx(const Chain& chain) {
  uint8_t raw[Header::kSize];
  if (chain.read(0, raw) < Header::kSize) return;  // no header: nothing to answer
  Header h = Header::parse(raw);
  // Packets that claim another source or destination have no connection to answer on.
  if (h.srcCid != guestCid_ || h.dstCid != vsock::kHostCid) return;
  Key key = keyOf(h.dstPort, h.srcPort);
  auto it = connections_.find(key);
  bool malformed = h.type != vsock::kTypeStream || h.len > chain.readableBytes() - Header::kSize ||
                   (h.op != vsock::kOpRw && h.len != 0);
  if (malformed || h.op == vsock::kOpInvalid || h.op > vsock::kOpCreditRequest) {
    if (h.op == vsock::kOpRst) drop(key);
    else if (it != connections_.end()) reset(key);
    else queueControl(h.dstPort, h.srcPort, vsock::kOpRst);
    return;
  }
  if (h.op == vsock::kOpRequest) {
    if (it != connections_.end()) reset(key);  // a second request on a live connection
    else onRequest(h);
    return;
  }
  if (it == connections_.end()) {
    if (h.op != vsock::kOpRst) queueControl(h.dstPort, h.srcPort, vsock::kOpRst);
    return;
  }
  Connection& c = *it->second;
  c.peerBufAlloc = h.bufAlloc;
  c.peerFwdCnt = h.fwdCnt;
  switch (h.op) {
    case vsock::kOpResponse: {
      if (c.state != Connection::State::Connecting) return reset(key);
      c.state = Connection::State::Established;
      std::string ok = "OK " + std::to_string(c.hostPort) + "\n";
      if (::send(c.host.get(), ok.data(), ok.size(), MSG_NOSIGNAL | MSG_DONTWAIT) != static_cast<ssize_t>(ok.size())) reset(key);
      return;
    }
    case vsock::kOpRw:
      if (c.state != Connection::State::Established || c.guestShutSend) return reset(key);
      return onRw(c, h, chain);
    case vsock::kOpCreditUpdate:
      return;  // the new credit is in the header; the worker serves rx next
    case vsock::kOpCreditRequest:
      if (!c.creditUpdateQueued) queueControl(c.hostPort, c.guestPort, vsock::kOpCreditUpdate);
      c.creditUpdateQueued = true;
      return;
    case vsock::kOpShutdown:
      if (c.state != Connection::State::Established) return reset(key);
      c.guestShutRcv |= (h.flags & vsock::kShutdownRcv) != 0;
      c.guestShutSend |= (h.flags & vsock::kShutdownSend) != 0;
      return afterFlush(c);
    case vsock::kOpRst:
      return drop(key);
    default:
      return reset(key);
  }
}

void VirtioVsock::onRequest(const Header& h) {
  Key key = keyOf(h.dstPort, h.srcPort);
  if (connectionCount() >= kMaxConnections) return queueControl(h.dstPort, h.srcPort, vsock::kOpRst);
  bool fits = false;
  sockaddr_un address = unixAddress(socketPath_ + "_" + std::to_string(h.dstPort), fits);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  // Nobody listening (or a full backlog) is a refusal, as a closed port is.
  if (!fits || !fd.valid() || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return queueControl(h.dstPort, h.srcPort, vsock::kOpRst);
  }
  auto c = std::make_unique<Connection>();
  c->state = Connection::State::Established;
  c->host = std::move(fd);
  c->hostPort = h.dstPort;
  c->guestPort = h.srcPort;
  c->peerBufAlloc = h.bufAlloc;
  c->peerFwdCnt = h.fwdCnt;
  watch(c->host.get());
  byFd_[c->host.get()] = c.get();
  connections_[key] = std::move(c);
  queueControl(h.dstPort, h.srcPort, vsock::kOpResponse);
}

void VirtioVsock::onRw(Connection& c, const Header& h, const Chain& chain) {
  Key key = keyOf(c.hostPort, c.guestPort);
  if (h.len > kBufAlloc - c.pendingBytes()) return reset(key);  // past the credit it was given
  uint32_t sent = 0;
  if (c.pendingBytes() == 0 && h.len > 0) {
    auto iov = iovecsOf(chain.readable, Header::kSize, h.len);
    msghdr message{};
    message.msg_iov = iov.data();
    message.msg_iovlen = iov.size();
    ssize_t n = ::sendmsg(c.host.get(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && !wouldBlock(errno) && errno != EINTR) return reset(key);
    sent = n > 0 ? static_cast<uint32_t>(n) : 0;
    c.fwdCnt += sent;
  }
  if (sent < h.len) {
    if (c.pendingStart > 0 && c.pendingStart >= c.pending.size() / 2) {
      c.pending.erase(c.pending.begin(), c.pending.begin() + static_cast<std::ptrdiff_t>(c.pendingStart));
      c.pendingStart = 0;
    }
    size_t at = c.pending.size();
    c.pending.resize(at + (h.len - sent));
    chain.read(Header::kSize + sent, {c.pending.data() + at, h.len - sent});
  }
  afterFlush(c);
}

void VirtioVsock::flush(Connection& c) {
  while (c.pendingBytes() > 0) {
    ssize_t n = ::send(c.host.get(), c.pending.data() + c.pendingStart, c.pendingBytes(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && wouldBlock(errno)) break;
    if (n <= 0) return reset(keyOf(c.hostPort, c.guestPort));
    c.pendingStart += static_cast<size_t>(n);
    c.fwdCnt += static_cast<uint32_t>(n);
  }
  if (c.pendingBytes() == 0) {
    c.pending.clear();
    c.pendingStart = 0;
  }
  afterFlush(c);
}

// After guest data moved to the host: tell the guest about freed space, and finish its
// shutdown once everything it sent has been delivered.
void VirtioVsock::afterFlush(Connection& c) {
  if (c.fwdCnt - c.reportedFwdCnt >= kCreditUpdateThreshold && !c.creditUpdateQueued) {
    queueControl(c.hostPort, c.guestPort, vsock::kOpCreditUpdate);
    c.creditUpdateQueued = true;
  }
  if (c.pendingBytes() > 0) return;
  if (c.guestShutSend && c.guestShutRcv) return reset(keyOf(c.hostPort, c.guestPort));  // §5.10.6.6: close with RST
  if (c.guestShutSend && !c.hostWriteShut) {
    ::shutdown(c.host.get(), SHUT_WR);
    c.hostWriteShut = true;
  }
}

// ---- the host side ----

void VirtioVsock::watch(int fd) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) throwErrno(ErrorCode::Internal, "epoll_ctl");
}

bool VirtioVsock::service(QueueIo& /*io*/) {
  onEvent();
  kickRx();
  return false;
}

void VirtioVsock::onEvent() {
  epoll_event events[64];
  for (;;) {
    int count = ::epoll_wait(epoll_.get(), events, 64, 0);
    if (count < 0 && errno == EINTR) continue;
    for (int i = 0; i < count; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener_.get()) {
        acceptClients();
      } else if (pendingClients_.count(fd)) {
        readConnectLine(fd);
      } else if (auto it = byFd_.find(fd); it != byFd_.end()) {
        Connection& c = *it->second;
        if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.hostReadable = true;
        if ((events[i].events & EPOLLOUT) && c.pendingBytes() > 0) flush(c);
      }
    }
    if (count < 64) return;
  }
}

void VirtioVsock::acceptClients() {
  for (;;) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;
    if (connectionCount() >= kMaxConnections) continue;  // closed: the client sees EOF
    auto c = std::make_unique<Connection>();
    int raw = fd.get();
    c->host = std::move(fd);
    watch(raw);
    pendingClients_[raw] = std::move(c);
    readConnectLine(raw);  // the line may be there already
  }
}

// "CONNECT <port>\n", read a byte at a time so nothing after it is taken from the stream.
void VirtioVsock::readConnectLine(int fd) {
  Connection& c = *pendingClients_.at(fd);
  for (;;) {
    char byte;
    ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && wouldBlock(errno)) return;
    if (n <= 0 || c.line.size() >= kMaxConnectLine) {
      pendingClients_.erase(fd);  // gone, or not speaking the protocol
      return;
    }
    if (byte != '\n') {
      c.line += byte;
      continue;
    }
    break;
  }
  std::string_view line = c.line;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  uint32_t port = 0;
  constexpr std::string_view kVerb = "CONNECT ";
  bool ok = line.substr(0, kVerb.size()) == kVerb && line.size() > kVerb.size();
  if (ok) {
    auto [end, error] = std::from_chars(line.data() + kVerb.size(), line.data() + line.size(), port);
    ok = error == std::errc() && end == line.data() + line.size();
  }
  auto owned = std::move(pendingClients_.at(fd));
  pendingClients_.erase(fd);
  if (!ok) return;  // closed
  owned->state = Connection::State::Connecting;
  owned->guestPort = port;
  owned->hostPort = allocateHostPort(port);
  owned->hostReadable = true;  // bytes after the line may be waiting already
  Key key = keyOf(owned->hostPort, port);
  byFd_[fd] = owned.get();
  connections_[key] = std::move(owned);
  queueControl(static_cast<uint32_t>(key >> 32), port, vsock::kOpRequest);
}

uint32_t VirtioVsock::allocateHostPort(uint32_t guestPort) {
  for (;;) {
    uint32_t port = nextHostPort_++;
    if (nextHostPort_ == 0) nextHostPort_ = kFirstHostPort;
    if (!connections_.count(keyOf(port, guestPort))) return port;
  }
}

}  // namespace hyve::virtio
