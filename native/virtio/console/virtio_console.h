// virtio-console with MULTIPORT (virtio 1.x §5.3): port 0 can be the guest's console
// (hvc0), wired to the machine's console stream like COM1; ports 1..n are named byte
// streams (/dev/vport0pN, named in /sys/class/virtio-ports/*/name), each reached from the
// host through a UNIX stream socket the device listens on (bhyve's `name=path`), one peer
// at a time.
//
// Nothing the guest does grows host memory: guest-to-host bytes go straight from the
// guest's buffers into the socket, and a request the peer cannot take yet stays in the
// ring (kDeferRequest) until the socket is writable again, so a slow or absent peer
// stalls the guest's writes (backpressure) rather than dropping bytes. Host-to-guest
// bytes are read from the socket straight into the guest's buffers only when the guest
// has posted some. The console's input waits in a fixed-size buffer. Control messages
// the device owes the driver are bounded too: while too many are pending, the driver's
// own control messages wait in their ring.
//
// Snapshots keep port 0's role, the ports' names, which ports a guest process has open,
// the console's unread input and the control messages the driver has not taken. A
// restored copy listens on sockets of its own (the caller's arguments; the names must be
// the snapshot's) and has none of the original's peers: a port that had one is reported
// closed to the guest (PORT_OPEN 0, so its readers see end of file) until the copy's first
// peer connects (docs/snapshot-format.md).
#pragma once

#include "util/unique_fd.h"
#include "virtio/virtio_device.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace hyve::virtio {

class VirtioConsole final : public VirtioDevice {
 public:
  struct NamedPort {
    std::string name;    // what the guest sees in /sys/class/virtio-ports/vportNpM/name
    std::string socket;  // the UNIX socket path the device listens on
  };
  struct Config {
    bool console = false;  // port 0 is the guest console (hvc0)
    std::vector<NamedPort> ports;  // ports 1, 2, ...
    // Port 0's output, and "port 0 has room for input again" (the machine's console wiring).
    std::function<void(std::span<const uint8_t>)> consoleOutput;
    std::function<void()> consoleDrained;
  };

  static constexpr uint16_t kDataQueueSize = 256;
  static constexpr uint16_t kControlQueueSize = 64;
  static constexpr size_t kMaxNamedPorts = 30;
  static constexpr size_t kConsoleInputBytes = 4096;
  static constexpr size_t kMaxPendingControl = 64;
  // Control messages a snapshot may hold: the driver's messages are taken while fewer than
  // kMaxPendingControl wait and add at most one per port each; a restore and the copy's
  // first peers add at most two PORT_OPENs per port (a restore replaces a port's earlier ones).
  static constexpr size_t kMaxSavedControl = kMaxPendingControl + 3 * (kMaxNamedPorts + 1);

  // Parses `-s N,virtio-console,args`: comma-separated `console` and `name=socketpath`.
  // Throws Error(BadConfig).
  static Config parseArgs(const std::string& args);

  // Listens on every named port's socket (an existing file there is refused).
  explicit VirtioConsole(Config config);
  ~VirtioConsole() override;

  uint16_t deviceId() const override { return kDeviceConsole; }
  uint32_t pciClass() const override { return 0x078000; }  // communication, other
  std::string_view threadRole() const override { return "virtio-con"; }
  uint64_t features() const override;
  std::vector<uint16_t> queueSizes() const override;
  void readConfig(uint64_t offset, std::span<uint8_t> data) const override;
  void attach(std::function<void(unsigned)> kick) override { kick_ = std::move(kick); }
  void reset() override;
  void saveDeviceState(snapshot::StateWriter& out, const std::string& files) const override;
  void restoreDeviceState(snapshot::StateReader& in, const std::string& files) override;
  uint32_t handle(unsigned queue, const Chain& chain) override;

  bool isGuestConsole() const { return config_.console; }
  // Console input for port 0: takes what fits in its buffer and returns how much it took;
  // consoleDrained is called when room appears.
  size_t pushConsoleInput(std::span<const uint8_t> bytes);

  // The configuration a snapshot's device state starts with (socket paths empty): what a
  // restoring caller needs to give the copy sockets of its own. Throws Error(BadSnapshot).
  static Config savedConfig(snapshot::StateReader& in);

 private:
  struct Port {
    NamedPort named;
    UniqueFd listener;
    UniqueFd peer;
    bool guestOpen = false;   // a guest process has the port open (the driver's PORT_OPEN)
    bool peerEof = false;     // the peer shut its sending side
    bool rxWaiting = false;   // a receive request waits for the peer to send
    bool txWaiting = false;   // a transmit request waits for the peer to read
    bool hostClosed = false;  // the guest was told the host side closed (a restored copy's reset peer)
    uint64_t txOffset = 0;    // bytes of the head transmit request already sent
  };

  uint32_t portCount() const { return static_cast<uint32_t>(ports_.size()) + 1; }  // max_nr_ports
  void sendControl(uint32_t id, uint16_t event, uint16_t value, const std::string& extra = {});  // mutex_ held
  uint32_t controlFromDriver(const Chain& chain);
  uint32_t receive(Port& port, const Chain& chain);
  uint32_t transmit(Port& port, const Chain& chain);
  void dropPeer(Port& port);
  void wake();
  void poll();

  Config config_;
  std::function<void(unsigned)> kick_;
  mutable std::mutex mutex_;
  std::vector<Port> ports_;  // ports_[i] is port i + 1
  std::deque<uint8_t> consoleInput_;
  std::deque<std::vector<uint8_t>> control_;  // messages for the driver
  UniqueFd wake_;
  UniqueFd stop_;
  std::thread poller_;
};

}  // namespace hyve::virtio
