#include "util/event_fd.h"

#include "util/error.h"

#include <sys/eventfd.h>

#include <cstdint>

namespace hyve {

UniqueFd newEventFd() {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throwErrno(ErrorCode::Internal, "eventfd");
  return UniqueFd(fd);
}

void signalEventFd(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

bool drainEventFd(int fd) {
  uint64_t count;
  return ::read(fd, &count, sizeof count) == sizeof count;
}

}  // namespace hyve
