#include "util/mapping.h"

#include "util/error.h"

#include <string>

namespace hyve {

Mapping Mapping::anonymous(size_t length) {
  void* addr = ::mmap(nullptr, length, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) {
    throwErrno(ErrorCode::Memory, "cannot reserve " + std::to_string(length >> 20) + " MiB of guest memory");
  }
  return Mapping(addr, length);
}

}  // namespace hyve
