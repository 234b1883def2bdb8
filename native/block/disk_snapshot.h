// A disk in a snapshot, the same for every disk device (virtio-blk, ahci-hd, ahci-cd):
// what the guest sees is copied into the snapshot directory, and each restore reopens that
// copy, writing (if the disk is writable) to a private ephemeral copy of its own, so the
// snapshot's file never changes and restored copies never see each other's writes.
#pragma once

#include "block/raw_disk.h"
#include "snapshot/state_io.h"

#include <memory>
#include <string>
#include <string_view>

namespace hyve {

// Copies `disk` to `file` (replacing one an earlier snapshot left there) and writes its
// size and read-only flag to `out`. `who` names the device in errors.
void saveDiskToSnapshot(const RawDisk& disk, snapshot::StateWriter& out, const std::string& file, std::string_view who);

// Reopens the disk saveDiskToSnapshot() kept in `file`. A missing, unreadable or resized
// file is Error(BadSnapshot) naming `who` and the file.
std::unique_ptr<RawDisk> restoreDiskFromSnapshot(snapshot::StateReader& in, const std::string& file, std::string_view who);

}  // namespace hyve
