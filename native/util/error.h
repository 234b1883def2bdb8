// Errors that cross into JavaScript carry a stable code so callers can act on them
// (e.g. "no /dev/kvm" vs "not a kernel image") without parsing messages.
#pragma once

#include <stdexcept>
#include <string>

namespace hyve {

enum class ErrorCode {
  NoKvm,          // /dev/kvm missing or the KVM API unusable
  KvmAccess,      // /dev/kvm exists but the user may not open it
  BadKernel,      // kernel file missing, unreadable or not a recognised image
  BadInitrd,      // initrd missing, unreadable or corrupt
  BadConfig,      // a configuration value is out of range
  Memory,         // guest memory cannot be allocated or mapped
  Hypervisor,     // an unexpected failure of a hypervisor call
  GuestFault,     // the guest did something the VMM cannot continue from
  BadSnapshot,    // a snapshot is corrupt, truncated, or from another hyve version/config
  BadDisk,        // a disk image is missing, unreadable, or not a regular file or block device
  Internal,
};

const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Throws Error(code, message + ": " + strerror(errno)).
[[noreturn]] void throwErrno(ErrorCode code, const std::string& message);

}  // namespace hyve
