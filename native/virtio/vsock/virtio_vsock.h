// virtio-vsock (virtio 1.x §5.10) in user space, in the manner of Firecracker's hybrid
// vsock: no /dev/vhost-vsock, the host side is one UNIX socket per VM.
//  - A host client connects to `socketPath` and writes `CONNECT <port>\n`; once the guest
//    accepts, it reads `OK <host port>\n` and then has a byte stream to the guest's vsock
//    port. A refusal closes the client's socket.
//  - A guest connecting to host (CID 2) port P reaches the UNIX socket `<socketPath>_P`.
//
// Queues: rx (device → driver), tx (driver → device), event. All work runs on the
// transport's worker thread with the transport lock held, never on a vCPU thread: handle()
// for the queues, service() when the host sockets (an epoll set, eventFd()) have news. An
// rx buffer with nothing to fill stays in its ring (kDeferRequest) until the device kicks
// rx: host data arrived, or a control packet or new credit is there to send. The worker
// runs under the "virtio-vsock" seccomp allowlist (util/seccomp_filters.cc).
//
// Every header the guest writes is hostile: lengths are checked against the chain, a
// connection may hold at most kBufAlloc bytes the host has not taken yet (the credit this
// device grants; a guest that sends past it is reset), control replies wait in a bounded
// queue, and connections are bounded in number. A malformed packet is answered with RST
// or dropped; it never ends the device.
//
// Snapshots keep the guest CID and the next host port. Connections are reset: a restored device has none
// and sends the driver TRANSPORT_RESET, so guest sockets see ECONNRESET while listening
// sockets keep listening (docs/snapshot-format.md).
#pragma once

#include "util/unique_fd.h"
#include "virtio/virtio_device.h"
#include "virtio/vsock/vsock_packet.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace hyve::virtio {

class VirtioVsock final : public VirtioDevice {
 public:
  static constexpr unsigned kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;
  // Bytes of guest data a connection may hold before the host side takes them: the
  // buffer space advertised to the guest (buf_alloc).
  static constexpr uint32_t kBufAlloc = 256 * 1024;
  // Host memory for guest data is at most kMaxConnections * kBufAlloc.
  static constexpr size_t kMaxConnections = 256;
  // Control packets (RESPONSE, RST, CREDIT_UPDATE) waiting for rx buffers.
  static constexpr size_t kMaxPendingControl = 1024;
  // Data bytes per packet to the guest at most.
  static constexpr uint32_t kMaxPacketData = 64 * 1024;
  // The first port assigned to host-initiated connections.
  static constexpr uint32_t kFirstHostPort = 1u << 30;

  // Listens on `socketPath` (a stale socket there is replaced). Throws Error(BadConfig)
  // for a CID the guest cannot have or a path that cannot be bound.
  VirtioVsock(std::string socketPath, uint64_t guestCid);
  ~VirtioVsock() override;

  uint16_t deviceId() const override { return kDeviceVsock; }
  uint32_t pciClass() const override { return 0x00ff00; }
  uint64_t features() const override { return 0; }  // stream sockets only
  std::vector<uint16_t> queueSizes() const override { return {256, 256, 16}; }
  void readConfig(uint64_t offset, std::span<uint8_t> data) const override;
  void attach(std::function<void(unsigned)> kick) override { kick_ = std::move(kick); }
  void activate(uint64_t /*features*/) override { active_ = true; }
  void reset() override;
  std::string_view threadRole() const override { return "virtio-vsock"; }
  void saveDeviceState(snapshot::StateWriter& out, const std::string& files) const override;
  void restoreDeviceState(snapshot::StateReader& in, const std::string& files) override;
  uint32_t handle(unsigned queue, const Chain& chain) override;
  // The host sockets: readable when a client connects, a peer sends or takes bytes. None
  // while the driver is not running: the transport would not serve it, and a readable fd
  // nobody takes from would spin the worker (clients wait in the listen backlog meanwhile).
  int eventFd() const override { return active_ ? epoll_.get() : -1; }
  // Takes the host sockets' news, then kicks rx (and tx) so they are served again.
  bool service(QueueIo& io) override;

  uint64_t guestCid() const { return guestCid_; }
  uint32_t nextHostPort() const { return nextHostPort_; }
  size_t connectionCount() const { return connections_.size() + pendingClients_.size(); }

 private:
  struct Connection;
  using Key = uint64_t;  // host port << 32 | guest port
  static Key keyOf(uint32_t hostPort, uint32_t guestPort) { return uint64_t{hostPort} << 32 | guestPort; }

  struct Control {
    uint32_t hostPort;
    uint32_t guestPort;
    uint16_t op;
    uint32_t flags;
  };

  uint32_t handleRx(const Chain& chain);
  void handleTx(const Chain& chain);
  void onRequest(const vsock::Header& h);
  void onRw(Connection& c, const vsock::Header& h, const Chain& chain);
  void acceptClients();
  void readConnectLine(int fd);
  void flush(Connection& c);
  void afterFlush(Connection& c);
  void queueControl(uint32_t hostPort, uint32_t guestPort, uint16_t op, uint32_t flags = 0);
  void reset(Key key);  // RST to the guest, host socket closed
  void drop(Key key);   // host socket closed, nothing sent
  vsock::Header headerFor(uint32_t hostPort, uint32_t guestPort, uint16_t op);
  void watch(int fd);
  void onEvent();
  void kickRx();
  uint32_t allocateHostPort(uint32_t guestPort);

  std::function<void(unsigned)> kick_;
  std::string socketPath_;
  uint64_t guestCid_;
  UniqueFd listener_;
  UniqueFd epoll_;
  std::map<Key, std::unique_ptr<Connection>> connections_;
  std::unordered_map<int, Connection*> byFd_;
  // Host clients that have not finished their CONNECT line yet, by fd.
  std::unordered_map<int, std::unique_ptr<Connection>> pendingClients_;
  std::deque<Control> control_;
  bool resetEventPending_ = false;
  bool active_ = false;  // between the driver's DRIVER_OK and its reset
  uint32_t nextHostPort_ = kFirstHostPort;
  Key nextRxKey_ = 0;  // round robin over connections with host data
};

}  // namespace hyve::virtio
