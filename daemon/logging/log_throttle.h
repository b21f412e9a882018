// SPDX-License-Identifier: Apache-2.0
// Lets one log line of a kind through per interval and counts the ones held
// back, so that a flood of one event (every queued request found past its
// deadline under overload) costs a line per interval, which says how many
// it stands for. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace warren {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogThrottle(Clock::duration interval) : interval_(interval) {}
  LogThrottle(const LogThrottle&) = delete;
  LogThrottle& operator=(const LogThrottle&) = delete;

  // An event at `now`: the number of events held back since the last line
  // let through when this one may be logged, nullopt when it is held back.
  std::optional<std::uint64_t> admit(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (started_ && now < next_) {
      ++held_back_;
      return std::nullopt;
    }
    started_ = true;
    next_ = now + interval_;
    const std::uint64_t held_back = held_back_;
    held_back_ = 0;
    return held_back;
  }

 private:
  const Clock::duration interval_;
  std::mutex mutex_;
  bool started_ = false;         // under mutex_
  Clock::time_point next_;       // under mutex_: the next line is let through from then
  std::uint64_t held_back_ = 0;  // under mutex_
};

}  // namespace warren
