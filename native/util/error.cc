#include "util/error.h"

#include <cerrno>
#include <cstring>

namespace hyve {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::NoKvm: return "HYVE_NO_KVM";
    case ErrorCode::KvmAccess: return "HYVE_KVM_ACCESS";
    case ErrorCode::BadKernel: return "HYVE_BAD_KERNEL";
    case ErrorCode::BadInitrd: return "HYVE_BAD_INITRD";
    case ErrorCode::BadConfig: return "HYVE_BAD_CONFIG";
    case ErrorCode::Memory: return "HYVE_MEMORY";
    case ErrorCode::Hypervisor: return "HYVE_HYPERVISOR";
    case ErrorCode::GuestFault: return "HYVE_GUEST_FAULT";
    case ErrorCode::BadSnapshot: return "HYVE_BAD_SNAPSHOT";
    case ErrorCode::BadDisk: return "HYVE_BAD_DISK";
    case ErrorCode::Internal: return "HYVE_INTERNAL";
  }
  return "HYVE_INTERNAL";
}

void throwErrno(ErrorCode code, const std::string& message) {
  int saved = errno;
  throw Error(code, message + ": " + std::strerror(saved));
}

}  // namespace hyve
