#include "block/disk_snapshot.h"

#include "util/error.h"

#include <unistd.h>

namespace hyve {

void saveDiskToSnapshot(const RawDisk& disk, snapshot::StateWriter& out, const std::string& file, std::string_view who) {
  if (file.empty()) throw Error(ErrorCode::Internal, std::string(who) + ": a snapshot without a directory for the disk");
  ::unlink(file.c_str());  // from an earlier snapshot into the same directory
  disk.copyTo(file);
  out.u64("sizeBytes", disk.sizeBytes());
  out.boolean("readOnly", disk.readOnly());
}

std::unique_ptr<RawDisk> restoreDiskFromSnapshot(snapshot::StateReader& in, const std::string& file, std::string_view who) {
  uint64_t size = in.u64("sizeBytes");
  bool readOnly = in.boolean("readOnly");
  DiskOptions options;
  options.path = file;
  options.readOnly = readOnly;
  options.ephemeral = !readOnly;  // this restore's own copy: the snapshot's file never changes
  std::unique_ptr<RawDisk> disk;
  try {
    disk = std::make_unique<RawDisk>(options);
  } catch (const Error& e) {
    throw Error(ErrorCode::BadSnapshot, std::string(who) + ": the snapshot's disk: " + e.what());
  }
  if (disk->sizeBytes() != size) {
    throw Error(ErrorCode::BadSnapshot, std::string(who) + ": " + file + " holds " + std::to_string(disk->sizeBytes()) +
                                            " bytes, the snapshot says " + std::to_string(size));
  }
  return disk;
}

}  // namespace hyve
