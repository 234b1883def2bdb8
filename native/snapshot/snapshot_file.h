// The on-disk snapshot: a directory with `state.bin` (header and state sections) and
// `memory.bin` (guest RAM, raw, page-aligned, mmap-able). docs/snapshot-format.md is the
// specification; this is its only reader and writer.
#pragma once

#include "util/unique_fd.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hyve::snapshot {

// 2: device state saved field by field, by name; 3: virtio functions add their device's fields;
// 4: PVM guests run user mode with XCR0 = x87|SSE (pvm/user_xstate.h), so processes in an
// older PVM snapshot may have chosen AVX code that would now fault.
// src/snapshot-cache.ts keys cached snapshots by it (SNAPSHOT_FORMAT).
constexpr uint32_t kFormatVersion = 4;
constexpr const char* kStateFile = "state.bin";
constexpr const char* kMemoryFile = "memory.bin";

// The most state.bin can hold, from what goes into it: a header (two paths and a command
// line), per vCPU its registers, MSRs, LAPIC and XSAVE area (7 KiB today; 256 KiB allows
// for larger XSAVE layouts), the devices (a few KiB), and the console input the guest has
// not read yet (capped when the snapshot is taken). readStateFile() refuses a larger file
// before allocating anything for it.
constexpr uint64_t kMaxHeaderBytes = 1 << 20;
constexpr uint64_t kMaxVcpuStateBytes = 256 << 10;
constexpr uint32_t kMaxSnapshotVcpus = 64;
constexpr uint64_t kMaxDeviceStateBytes = 1 << 20;
constexpr uint64_t kMaxPendingInputBytes = 4 << 20;  // per console port
constexpr uint64_t kMaxStateFileBytes =
    kMaxHeaderBytes + kMaxSnapshotVcpus * kMaxVcpuStateBytes + kMaxDeviceStateBytes + 2 * kMaxPendingInputBytes;

// The hyve version this addon was built from (package.json); snapshots from any other
// version are refused, since device and section layouts may differ between versions.
const char* hyveVersion();

// What a kernel or initrd file was when the snapshotted VM booted from it.
struct FileIdentity {
  std::string path;  // empty: none
  uint64_t size = 0;
  int64_t mtimeNs = 0;
};

struct Header {
  std::string hyveVersion;
  uint32_t formatVersion = kFormatVersion;
  std::string backend;  // Hypervisor::name(): a snapshot only restores on the same kind of backend
  // The machine configuration: a restored VM takes these, not the caller's.
  uint64_t memoryBytes = 0;
  uint32_t cpus = 0;
  FileIdentity kernel, initrd;
  std::string cmdline;
  uint32_t machineFlags = 0;  // MachineConfig booleans, see Machine
  // Host CLOCK_REALTIME at the save: restore moves guest clocks on by the time since.
  int64_t savedRealtimeNs = 0;
  // memory.bin as written. Restore trusts a file whose size and mtime still match, and
  // checks the CRC only when the mtime differs (e.g. after a copy): see the format doc.
  uint64_t memoryFileBytes = 0;
  int64_t memoryMtimeNs = 0;
  uint32_t memoryCrc32 = 0;
  // Section names in file order (vCPUs, platform, devices, console): the device list.
  std::vector<std::string> sections;

  // A short digest of the machine configuration (memory, cpus, kernel/initrd identity,
  // cmdline, flags, device list), for messages and cache keys.
  std::string configDigest() const;
};

struct Section {
  std::string name;
  std::vector<uint8_t> data;
};

struct MemoryFileInfo {
  uint64_t bytes = 0;
  uint64_t allocatedBytes = 0;  // on disk: zero pages are left as holes
  int64_t mtimeNs = 0;
  uint32_t crc32 = 0;
};

FileIdentity identify(const std::string& path);

// Writes `memory` to <dir>/memory.bin (through a temporary name, then renamed).
MemoryFileInfo writeMemoryFile(const std::string& dir, std::span<const uint8_t> memory);
// Writes <dir>/state.bin (through a temporary name, then renamed: its presence means the
// snapshot is complete). Returns its size in bytes.
uint64_t writeStateFile(const std::string& dir, const Header& header, const std::vector<Section>& sections);

struct StateFile {
  Header header;
  std::vector<Section> sections;
};

// Reads and fully validates <dir>/state.bin: magic, format and hyve version, header and
// section checksums, the end marker. Throws Error(BadSnapshot) with the reason.
StateFile readStateFile(const std::string& dir);
// Opens <dir>/memory.bin after checking it against the header (size; mtime, else CRC).
// `verify` forces the CRC check.
UniqueFd openMemoryFile(const std::string& dir, const Header& header, bool verify);

}  // namespace hyve::snapshot
