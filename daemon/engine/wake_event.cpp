// SPDX-License-Identifier: Apache-2.0
#include "wake_event.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace warren {

WakeEvent::WakeEvent() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

WakeEvent::~WakeEvent() { ::close(fd_); }

void WakeEvent::signal() noexcept {
  const std::uint64_t one = 1;
  // Fails only when the counter would overflow: it is readable either way.
  [[maybe_unused]] const ssize_t unused = ::write(fd_, &one, sizeof one);
}

bool WakeEvent::clear() noexcept {
  std::uint64_t count = 0;
  return ::read(fd_, &count, sizeof count) == static_cast<ssize_t>(sizeof count);
}

}  // namespace warren
