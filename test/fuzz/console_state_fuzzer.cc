// libFuzzer target for virtio-console's snapshot fields (native/virtio/console/): the input
// is the device's own state as a snapshot holds it (the seed in
// test/fuzz/corpus/console_state/ is a valid one), restored into a device with port 0 as
// the console and two named ports. Whatever the bytes, the restore either applies fields
// that fit the device or throws Error(BadSnapshot) and leaves it as it was; a restored
// device saves state that restores again and serves its control queue inside its bounds.
// Built and run by scripts/fuzz.sh.
#include "core/guest_memory.h"
#include "core/layout.h"
#include "util/error.h"
#include "virtio/console/virtio_console.h"

#include <unistd.h>

#include <cstdint>
#include <string>

using namespace hyve;
using namespace hyve::virtio;

namespace {

VirtioConsole::Config config() {
  std::string base = "/tmp/hyve-console-fuzz-" + std::to_string(::getpid());
  VirtioConsole::Config c;
  c.console = true;
  c.ports = {{"org.hyve.a", base + "-a"}, {"b", base + "-b"}};
  for (const auto& port : c.ports) ::unlink(port.socket.c_str());
  c.consoleOutput = [](std::span<const uint8_t>) {};
  c.consoleDrained = [] {};
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t length) {
  static VirtioConsole device(config());
  static GuestMemory memory(16 * layout::MiB);
  snapshot::StateReader in({data, length}, "fuzz");
  try {
    device.restoreDeviceState(in, "");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::BadSnapshot) __builtin_trap();
    return 0;
  }
  // What was accepted saves and restores again (a snapshot of a restored copy).
  snapshot::StateWriter out;
  device.saveDeviceState(out, "");
  snapshot::StateReader again(out.data(), "fuzz again");
  device.restoreDeviceState(again, "");
  if (!again.atEnd()) __builtin_trap();
  // The driver takes the pending control messages (into 16-byte buffers) and the console's input.
  Chain buffer;
  buffer.writable.push_back({memory.slice(0x1000, 16), true});
  for (size_t taken = 0; device.handle(2, buffer) != kDeferRequest; ++taken) {
    if (taken > VirtioConsole::kMaxSavedControl + 3 * (VirtioConsole::kMaxNamedPorts + 1)) __builtin_trap();
  }
  device.handle(0, buffer);
  device.reset();
  return 0;
}
