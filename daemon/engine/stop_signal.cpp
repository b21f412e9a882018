// SPDX-License-Identifier: Apache-2.0
#include "stop_signal.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace warren {

StopSignal::StopSignal() : event_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

StopSignal::~StopSignal() { ::close(event_fd_); }

void StopSignal::request() noexcept {
  {
    std::lock_guard lock(mutex_);
    if (requested_.exchange(true)) return;
  }
  requested_changed_.notify_all();
  // Never read back: the fd stays readable for every poller from now on.
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t unused = ::write(event_fd_, &one, sizeof one);
}

bool StopSignal::waitFor(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return requested_changed_.wait_for(lock, delay, [this] { return requested(); });
}

}  // namespace warren
