// A raw disk image as the guest's disk devices see it: an image file or a host block
// device, opened read-write, read-only, or ephemeral (the guest writes to a private copy
// that disappears with the VM; the image never changes). Shared by every disk device
// (virtio-blk now, AHCI later).
#pragma once

#include "util/unique_fd.h"

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

namespace hyve {

struct DiskOptions {
  std::string path;
  bool readOnly = false;
  // The guest may write, but to a private copy: a reflink (FICLONE) of the image when the
  // filesystem can, a sparse copy otherwise, in an unnamed O_TMPFILE file that the kernel
  // frees when the VM process ends, however it ends.
  bool ephemeral = false;
  std::string serial;  // what GET_ID reports, at most 20 bytes
};

class RawDisk {
 public:
  // Opens without blocking on what is not a disk: a FIFO, socket or character device is
  // refused before anything reads it. Throws Error(BadDisk) naming the path.
  explicit RawDisk(const DiskOptions& options);

  uint64_t sizeBytes() const { return size_; }
  bool readOnly() const { return readOnly_; }
  const std::string& path() const { return path_; }
  // How the guest's writes are kept: "read-write", "read-only", "ephemeral (reflink)" or
  // "ephemeral (copy)".
  const std::string& mode() const { return mode_; }

  // Whole transfers or false (errno set); a read past the end of a shrunken device reads zeros.
  bool read(uint64_t offset, std::span<const iovec> buffers) const;
  bool write(uint64_t offset, std::span<const iovec> buffers) const;
  bool flush() const;  // data and what is needed to read it back reach the file
  bool discard(uint64_t offset, uint64_t length) const;      // punches a hole
  bool writeZeroes(uint64_t offset, uint64_t length) const;  // reads back as zeros

  // Writes what the guest sees now into a new file `file` (a reflink where the filesystem
  // can, else a sparse copy): how a snapshot keeps the disk as it was at the pause.
  // Throws Error(BadDisk).
  void copyTo(const std::string& file) const;

 private:
  std::string path_;
  std::string mode_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  bool readOnly_ = false;
};

}  // namespace hyve
