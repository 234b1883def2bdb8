#include "snapshot/snapshot_file.h"

#include "snapshot/state_io.h"
#include "util/error.h"
#include "util/file.h"
#include "util/mapping.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#ifndef HYVE_VERSION
#error "HYVE_VERSION must be defined by the build (binding.gyp reads it from package.json)"
#endif

namespace hyve::snapshot {

namespace {

constexpr char kMagic[8] = {'H', 'Y', 'V', 'E', 'S', 'N', 'A', 'P'};
constexpr const char* kEndSection = "end";
constexpr size_t kBlock = 64 * 1024;  // memory.bin is written and hole-punched in these units

// The snapshot fuzzer (test/fuzz/snapshot_fuzzer.cc) mutates what the checksums protect:
// its build (and only its) skips the comparisons, as OSS-Fuzz's convention has it.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kFuzzing = true;
#else
constexpr bool kFuzzing = false;
#endif

uint32_t crc(std::span<const uint8_t> data) {
  return static_cast<uint32_t>(crc32_z(crc32_z(0, nullptr, 0), data.data(), data.size()));
}

int64_t mtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

std::string joinPath(const std::string& dir, const char* name) { return (std::filesystem::path(dir) / name).string(); }

[[noreturn]] void writeFailed(const std::string& path) { throwErrno(ErrorCode::Internal, "cannot write snapshot file " + path); }

void writeAll(int fd, const uint8_t* data, size_t length, off_t offset, const std::string& path) {
  while (length > 0) {
    ssize_t n = ::pwrite(fd, data, length, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) writeFailed(path);
    data += n;
    length -= static_cast<size_t>(n);
    offset += n;
  }
}

// A file written under a temporary name and renamed into place: removed again if anything
// fails before the rename (a full disk must not leave *.tmp-<pid> files behind).
class TemporaryFile {
 public:
  TemporaryFile(std::string finalPath, mode_t mode)
      : finalPath_(std::move(finalPath)), path_(finalPath_ + ".tmp-" + std::to_string(::getpid())) {
    fd_ = UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd_.valid()) writeFailed(path_);
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (!committed_) ::unlink(path_.c_str());
  }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // Closes the file and renames it to its final name.
  void commit() {
    fd_.reset();
    if (::rename(path_.c_str(), finalPath_.c_str()) < 0) writeFailed(finalPath_);
    committed_ = true;
  }

 private:
  std::string finalPath_;
  std::string path_;
  UniqueFd fd_;
  bool committed_ = false;
};

bool allZero(const uint8_t* data, size_t length) {
  static const uint8_t zeros[kBlock] = {};
  return std::memcmp(data, zeros, length) == 0;
}

void encodeHeader(StateWriter& out, const Header& h) {
  out.string(h.hyveVersion);
  out.string(h.backend);
  out.u64(h.memoryBytes);
  out.u32(h.cpus);
  for (const FileIdentity* f : {&h.kernel, &h.initrd}) {
    out.string(f->path);
    out.u64(f->size);
    out.i64(f->mtimeNs);
  }
  out.string(h.cmdline);
  out.u32(h.machineFlags);
  out.i64(h.savedRealtimeNs);
  out.u64(h.memoryFileBytes);
  out.i64(h.memoryMtimeNs);
  out.u32(h.memoryCrc32);
  out.u32(static_cast<uint32_t>(h.sections.size()));
  for (const auto& name : h.sections) out.string(name);
}

Header decodeHeader(StateReader& in) {
  Header h;
  h.hyveVersion = in.string();
  h.backend = in.string();
  h.memoryBytes = in.u64();
  h.cpus = in.u32();
  for (FileIdentity* f : {&h.kernel, &h.initrd}) {
    f->path = in.string();
    f->size = in.u64();
    f->mtimeNs = in.i64();
  }
  h.cmdline = in.string();
  h.machineFlags = in.u32();
  h.savedRealtimeNs = in.i64();
  h.memoryFileBytes = in.u64();
  h.memoryMtimeNs = in.i64();
  h.memoryCrc32 = in.u32();
  uint32_t count = in.u32();
  if (count > 1024) in.fail("lists an implausible number of sections");
  for (uint32_t i = 0; i < count; ++i) h.sections.push_back(in.string());
  in.expectEnd();
  return h;
}

}  // namespace

const char* hyveVersion() { return HYVE_VERSION; }

std::string Header::configDigest() const {
  StateWriter w;
  w.u64(memoryBytes);
  w.u32(cpus);
  for (const FileIdentity* f : {&kernel, &initrd}) {
    w.string(f->path);
    w.u64(f->size);
    w.i64(f->mtimeNs);
  }
  w.string(cmdline);
  w.u32(machineFlags);
  for (const auto& name : sections) w.string(name);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc(w.data()));
  return hex;
}

FileIdentity identify(const std::string& path) {
  FileIdentity id;
  id.path = path;
  struct stat st {};
  if (!path.empty() && ::stat(path.c_str(), &st) == 0) {
    id.size = static_cast<uint64_t>(st.st_size);
    id.mtimeNs = mtimeNs(st);
  }
  return id;
}

MemoryFileInfo writeMemoryFile(const std::string& dir, std::span<const uint8_t> memory) {
  TemporaryFile file(joinPath(dir, kMemoryFile), 0644);
  const std::string& temporary = file.path();
  int fd = file.fd();
  MemoryFileInfo info;
  info.bytes = memory.size();
  uLong sum = crc32_z(0, nullptr, 0);
  // Untouched guest pages read as zeros without being allocated; leaving them as holes
  // keeps the file (and the time to write it) proportional to the memory in use.
  for (size_t offset = 0; offset < memory.size(); offset += kBlock) {
    size_t length = std::min(kBlock, memory.size() - offset);
    const uint8_t* block = memory.data() + offset;
    sum = crc32_z(sum, block, length);
    if (allZero(block, length)) continue;
    writeAll(fd, block, length, static_cast<off_t>(offset), temporary);
    info.allocatedBytes += length;
  }
  if (::ftruncate(fd, static_cast<off_t>(memory.size())) < 0) writeFailed(temporary);
  info.crc32 = static_cast<uint32_t>(sum);
  // Read-only: restored guests map this file privately, and an in-place change would
  // show through in every page they have not written yet.
  ::fchmod(fd, 0444);
  struct stat st {};
  if (::fstat(fd, &st) < 0) writeFailed(temporary);
  info.mtimeNs = mtimeNs(st);
  file.commit();
  return info;
}

uint64_t writeStateFile(const std::string& dir, const Header& header, const std::vector<Section>& sections) {
  StateWriter out;
  out.bytes(kMagic, sizeof kMagic);
  out.u32(kFormatVersion);
  StateWriter encoded;
  encodeHeader(encoded, header);
  out.blob(encoded.data());
  out.u32(crc(encoded.data()));
  auto section = [&](const std::string& name, std::span<const uint8_t> data) {
    out.string(name);
    out.blob(data);
    out.u32(crc(data));
  };
  for (const auto& s : sections) section(s.name, s.data);
  section(kEndSection, {});

  std::string path = joinPath(dir, kStateFile);
  if (out.data().size() > kMaxStateFileBytes) {
    throw Error(ErrorCode::Internal, "snapshot state is " + std::to_string(out.data().size()) +
                                         " bytes, more than a restore accepts (" + std::to_string(kMaxStateFileBytes) + ")");
  }
  TemporaryFile file(path, 0444);
  writeAll(file.fd(), out.data().data(), out.data().size(), 0, file.path());
  file.commit();
  return out.data().size();
}

StateFile readStateFile(const std::string& dir) {
  std::string path = joinPath(dir, kStateFile);
  std::vector<uint8_t> bytes = readRegularFile(path, "snapshot state file", ErrorCode::BadSnapshot, kMaxStateFileBytes);

  StateReader in(bytes, path);
  auto magic = in.bytes(sizeof kMagic);
  if (std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0) in.fail("is not a hyve snapshot (bad magic)");
  uint32_t format = in.u32();
  if (format != kFormatVersion) {
    in.fail("has format version " + std::to_string(format) + "; this hyve reads version " +
            std::to_string(kFormatVersion));
  }
  auto encoded = in.blob();
  if (in.u32() != crc(encoded) && !kFuzzing) in.fail("has a corrupt header (checksum mismatch)");
  StateReader headerReader(encoded, path + " header");
  StateFile file;
  file.header = decodeHeader(headerReader);
  file.header.formatVersion = format;
  if (file.header.hyveVersion != HYVE_VERSION) {
    in.fail("was taken by hyve " + file.header.hyveVersion + "; this is hyve " + HYVE_VERSION +
            " (snapshots only restore on the version that took them)");
  }
  bool ended = false;
  while (!in.atEnd()) {
    std::string name = in.string();
    auto data = in.blob();
    if (in.u32() != crc(data) && !kFuzzing) in.fail("section '" + name + "' is corrupt (checksum mismatch)");
    if (name == kEndSection) {
      ended = true;
      break;
    }
    file.sections.push_back({name, {data.begin(), data.end()}});
  }
  if (!ended) in.fail("is truncated (no end marker)");
  in.expectEnd();
  std::vector<std::string> names;
  for (const auto& s : file.sections) names.push_back(s.name);
  if (names != file.header.sections) in.fail("sections do not match its header's list");
  return file;
}

UniqueFd openMemoryFile(const std::string& dir, const Header& header, bool verify) {
  std::string path = joinPath(dir, kMemoryFile);
  struct stat st {};
  UniqueFd fd = openRegularFile(path, "snapshot memory file", ErrorCode::BadSnapshot, &st);
  if (header.memoryFileBytes != header.memoryBytes) {
    throw Error(ErrorCode::BadSnapshot, "snapshot " + dir + " describes " + std::to_string(header.memoryBytes) +
                                            " bytes of guest memory but a memory file of " +
                                            std::to_string(header.memoryFileBytes) + " bytes");
  }
  if (static_cast<uint64_t>(st.st_size) != header.memoryFileBytes) {
    throw Error(ErrorCode::BadSnapshot, "snapshot memory file " + path + " has " + std::to_string(st.st_size) +
                                            " bytes, expected " + std::to_string(header.memoryFileBytes) +
                                            " (truncated or replaced)");
  }
  if (verify || mtimeNs(st) != header.memoryMtimeNs) {
    // Changed since it was written (or copied): read it all once and compare checksums.
    void* addr = ::mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (addr == MAP_FAILED) throwErrno(ErrorCode::BadSnapshot, "cannot map " + path);
    Mapping contents(addr, static_cast<size_t>(st.st_size));
    if (crc({contents.data(), contents.size()}) != header.memoryCrc32) {
      throw Error(ErrorCode::BadSnapshot, "snapshot memory file " + path + " is corrupt (checksum mismatch)");
    }
  }
  return fd;
}

}  // namespace hyve::snapshot
