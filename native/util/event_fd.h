// eventfd helpers: a doorbell one thread rings and another waits on with poll().
#pragma once

#include "util/unique_fd.h"

namespace hyve {

// A nonblocking, close-on-exec eventfd. Throws Error(Internal) when none can be made.
UniqueFd newEventFd();
// Rings it (the counter only grows; a full counter is already readable).
void signalEventFd(int fd);
// Resets it to not readable; returns whether it was readable.
bool drainEventFd(int fd);

}  // namespace hyve
