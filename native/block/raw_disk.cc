#include "block/raw_disk.h"

#include "util/error.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace hyve {

namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  std::string message = "disk ";  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on a + chain
  message.append(path).append(": ").append(why);
  throw Error(ErrorCode::BadDisk, message);
}

[[noreturn]] void refuseErrno(const std::string& path, const std::string& what) {
  int saved = errno;
  std::string why = what;
  why.append(": ").append(std::strerror(saved));
  refuse(path, why);
}

// Copies [0, size) of `from` into `to` keeping holes: only the data extents are copied.
void sparseCopy(int from, int to, uint64_t size, bool seekable, const std::string& path) {
  if (::ftruncate(to, static_cast<off_t>(size)) != 0) refuseErrno(path, "cannot size the ephemeral copy");
  uint64_t at = 0;
  while (at < size) {
    uint64_t start = at, end = size;
    if (seekable) {
      off_t data = ::lseek(from, static_cast<off_t>(at), SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;  // only a hole remains
        seekable = false;
      } else {
        start = static_cast<uint64_t>(data);
        off_t hole = ::lseek(from, data, SEEK_HOLE);
        end = hole < 0 ? size : std::min<uint64_t>(size, static_cast<uint64_t>(hole));
      }
    }
    loff_t in = static_cast<loff_t>(start), out = static_cast<loff_t>(start);
    while (static_cast<uint64_t>(in) < end) {
      ssize_t n = ::copy_file_range(from, &in, to, &out, end - static_cast<uint64_t>(in), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        // Across filesystems on older kernels, or from a block device: plain reads.
        std::vector<char> buffer(1 << 20);
        while (static_cast<uint64_t>(in) < end) {
          ssize_t got = ::pread(from, buffer.data(), std::min<uint64_t>(buffer.size(), end - static_cast<uint64_t>(in)), in);
          if (got <= 0) refuseErrno(path, "cannot copy the image for an ephemeral disk");
          if (::pwrite(to, buffer.data(), static_cast<size_t>(got), in) != got) refuseErrno(path, "cannot write the ephemeral copy");
          in += got;
        }
        break;
      }
      if (n == 0) break;
    }
    at = end;
  }
}

// An unnamed temporary file next to the image (so a reflink can work), else in $TMPDIR or /tmp.
UniqueFd temporaryFile(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const char* tmp = std::getenv("TMPDIR");
  std::vector<std::filesystem::path> dirs{parent.empty() ? std::filesystem::path(".") : parent,
                                          std::filesystem::path(tmp && *tmp ? tmp : "/tmp"), std::filesystem::path("/tmp")};
  for (const auto& dir : dirs) {
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return UniqueFd(fd);
  }
  refuseErrno(path, "cannot create a temporary file for an ephemeral disk");
}

template <typename Op>
bool transfer(int fd, uint64_t offset, std::span<const iovec> buffers, Op op) {
  std::vector<iovec> rest(buffers.begin(), buffers.end());
  size_t first = 0;
  while (first < rest.size()) {
    int count = static_cast<int>(std::min<size_t>(rest.size() - first, IOV_MAX));
    ssize_t n = op(fd, rest.data() + first, count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {  // end of file: the rest reads as zeros (a write never gets here)
      for (size_t i = first; i < rest.size(); ++i) std::memset(rest[i].iov_base, 0, rest[i].iov_len);
      return true;
    }
    offset += static_cast<uint64_t>(n);
    auto left = static_cast<size_t>(n);
    while (first < rest.size() && left >= rest[first].iov_len) left -= rest[first++].iov_len;
    if (left > 0) {
      rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + left;
      rest[first].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

RawDisk::RawDisk(const DiskOptions& options) : path_(options.path), readOnly_(options.readOnly) {
  if (path_.empty()) refuse("(none)", "no path given");
  bool writable = !options.readOnly && !options.ephemeral;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  int fd = ::open(path_.c_str(), (writable ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) refuseErrno(path_, "cannot open");
  fd_.reset(fd);
  struct stat st{};
  if (::fstat(fd, &st) != 0) refuseErrno(path_, "cannot stat");
  bool block = S_ISBLK(st.st_mode);
  if (!S_ISREG(st.st_mode) && !block) refuse(path_, "is not a regular file or a block device");
  if (::fcntl(fd, F_SETFL, 0) != 0) refuseErrno(path_, "cannot clear O_NONBLOCK");
  if (block) {
    if (::ioctl(fd, BLKGETSIZE64, &size_) != 0) refuseErrno(path_, "cannot read the block device's size");
  } else {
    size_ = static_cast<uint64_t>(st.st_size);
  }
  mode_ = options.readOnly ? "read-only" : "read-write";
  if (options.ephemeral && !options.readOnly) {
    UniqueFd copy = temporaryFile(path_);
    if (!block && ::ioctl(copy.get(), FICLONE, fd) == 0) {
      mode_ = "ephemeral (reflink)";
    } else {
      sparseCopy(fd, copy.get(), size_, !block, path_);
      mode_ = "ephemeral (copy)";
    }
    fd_ = std::move(copy);
  }
}

void RawDisk::copyTo(const std::string& file) const {
  UniqueFd to(::open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
  if (!to.valid()) refuseErrno(file, "cannot create the snapshot's copy");
  struct stat st{};
  bool regular = ::fstat(fd_.get(), &st) == 0 && S_ISREG(st.st_mode);
  if (regular && ::ioctl(to.get(), FICLONE, fd_.get()) == 0) return;
  sparseCopy(fd_.get(), to.get(), size_, regular, file);
  if (::fsync(to.get()) != 0) refuseErrno(file, "cannot write the snapshot's copy");
}

bool RawDisk::read(uint64_t offset, std::span<const iovec> buffers) const {
  return transfer(fd_.get(), offset, buffers, ::preadv);
}

bool RawDisk::write(uint64_t offset, std::span<const iovec> buffers) const {
  if (readOnly_) {
    errno = EROFS;
    return false;
  }
  return transfer(fd_.get(), offset, buffers, [](int fd, const iovec* iov, int n, off_t at) {
    ssize_t written = ::pwritev(fd, iov, n, at);
    if (written == 0) errno = ENOSPC;
    return written == 0 ? ssize_t{-1} : written;
  });
}

bool RawDisk::flush() const { return readOnly_ || ::fdatasync(fd_.get()) == 0; }

bool RawDisk::discard(uint64_t offset, uint64_t length) const {
  if (readOnly_) return errno = EROFS, false;
  return ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                     static_cast<off_t>(length)) == 0;
}

bool RawDisk::writeZeroes(uint64_t offset, uint64_t length) const {
  if (readOnly_) return errno = EROFS, false;
  if (::fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(length)) == 0) return true;
  if (discard(offset, length)) return true;
  std::vector<char> zeros(std::min<uint64_t>(length, 1 << 20), 0);
  for (uint64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), length - done));
    if (::pwrite(fd_.get(), zeros.data(), n, static_cast<off_t>(offset + done)) != static_cast<ssize_t>(n)) return false;
    done += n;
  }
  return true;
}

}  // namespace hyve
