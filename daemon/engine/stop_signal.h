// SPDX-License-Identifier: Apache-2.0
// A one-way stop request that threads can test, wait on with a timeout, or
// poll() for next to a socket.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace warren {

class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Idempotent; safe from any thread (not from a signal handler).
  void request() noexcept;
  bool requested() const noexcept { return requested_.load(std::memory_order_acquire); }
  // Stays readable once a stop was requested: poll() it beside a socket.
  int fd() const noexcept { return event_fd_; }
  // Sleeps for `delay` unless a stop comes first; true when stopping.
  bool waitFor(std::chrono::milliseconds delay);

 private:
  int event_fd_;
  std::atomic<bool> requested_{false};
  std::mutex mutex_;
  std::condition_variable requested_changed_;
};

}  // namespace warren
