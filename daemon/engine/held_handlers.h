// SPDX-License-Identifier: Apache-2.0
// Which of a queue's consumers are held by a handler running in warrend's
// process past the queue's handler_timeout: a plugin that hangs holds its
// consumer until it returns, and a queue whose every consumer is held serves
// nothing although its connection is fine. Each such handler is logged once
// with the request it holds, counted in warren_handlers_held, and when
// every consumer is held the queue is not ready (/ready).
//
// The threads that run handlers mark each run's start and end; the queue's
// keeper thread calls check() about once a second.
#pragma once

#include "metrics_queue.h"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace warren {

class HeldHandlers {
 public:
  using Clock = std::chrono::steady_clock;

  HeldHandlers(int consumers, std::chrono::milliseconds handler_timeout,
               std::shared_ptr<spdlog::logger> logger, std::shared_ptr<QueueMetrics> metrics);

  // Consumer `index` runs its handler on the request `correlation_id`
  // names, from `since`. The string must stay as it is until finished().
  void started(int index, const std::string& correlation_id, Clock::time_point since) noexcept;
  // Its handler returned (logged when it had been held).
  void finished(int index, Clock::time_point now) noexcept;
  // Logs each handler newly past handler_timeout; returns how many are held.
  int check(Clock::time_point now) noexcept;
  // Found past handler_timeout by check() and not returned since.
  int held() const noexcept { return held_.load(); }
  int consumers() const noexcept { return static_cast<int>(runs_.size()); }
  std::chrono::milliseconds handlerTimeout() const noexcept { return handler_timeout_; }

 private:
  struct Run {
    bool running = false;
    bool held = false;    // past handler_timeout, counted in held_
    bool logged = false;  // and said so in the log
    Clock::time_point since;
    const std::string* correlation_id = nullptr;
  };

  const std::chrono::milliseconds handler_timeout_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::shared_ptr<QueueMetrics> metrics_;
  std::mutex mutex_;
  std::vector<Run> runs_;     // under mutex_
  std::atomic<int> held_{0};  // runs_ held; written under mutex_
};

}  // namespace warren
