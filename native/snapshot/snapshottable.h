// What every piece of guest-visible machine state implements to be part of a snapshot.
// Each Snapshottable becomes one named section of the snapshot's state file; restore
// requires exactly the same set of names, so a device added later that forgets to
// register itself (or a snapshot from a machine with other devices) is refused.
#pragma once

#include "snapshot/state_io.h"

#include <string>

namespace hyve::snapshot {

class Snapshottable {
 public:
  virtual ~Snapshottable() = default;
  // Stable section name, e.g. "device:com1". Unique within a machine.
  virtual std::string snapshotName() const = 0;
  // Called with every vCPU parked.
  virtual void save(StateWriter& out) const = 0;
  // Called on a freshly built machine before any vCPU runs. Throws Error(BadSnapshot)
  // (through the reader) on malformed input.
  virtual void restore(StateReader& in) = 0;
};

// Adapts a device that keeps its guest-visible state in one `State` struct with
// saveState()/restoreState(), whose State saves and loads itself field by field
// (save(StateWriter&) and static load(StateReader&): the convention of native/devices/).
template <typename Device>
class DeviceState final : public Snapshottable {
 public:
  DeviceState(std::string name, Device& device) : name_(std::move(name)), device_(device) {}
  std::string snapshotName() const override { return name_; }
  void save(StateWriter& out) const override { device_.saveState().save(out); }
  void restore(StateReader& in) override {
    auto state = Device::State::load(in);
    in.expectEnd();
    try {
      device_.restoreState(state);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::BadSnapshot) throw;
      in.fail(e.what());  // with the snapshot and section named
    }
  }

 private:
  std::string name_;
  Device& device_;
};

// The name a device's own files (e.g. a disk's contents) get in a snapshot directory: the
// directory and the device's section name with ':' and '/' made '-'; empty without a directory.
inline std::string filePrefix(const std::string& dir, std::string section) {
  if (dir.empty()) return {};
  for (char& c : section) {
    if (c == ':' || c == '/') c = '-';
  }
  return dir + "/" + section;
}

}  // namespace hyve::snapshot
