// Which of a queue's consumers are consuming: for readiness, for tests that
// wait, and for a log that speaks once per outage instead of once per
// consumer and attempt.
//
// Each consumer has its own connection and its own backoff. When the broker
// goes away they all fail at about the same time, so the first failure of an
// outage is logged, then only the retries of the lowest-numbered consumer
// still down (at attempts 1, 2, 4, 8, ...), and one line when the last
// consumer is back.
#pragma once

#include "metrics_queue.h"

#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace warren {

class QueueHealth {
 public:
  using Clock = std::chrono::steady_clock;

  // `metrics` gets warren_consumers_connected and the connection failures.
  QueueHealth(std::string queue, int consumers, int prefetch,
              std::shared_ptr<spdlog::logger> logger, std::shared_ptr<QueueMetrics> metrics);

  // Consumer `index` started consuming after `attempts` failed attempts.
  void consuming(int index, std::uint32_t attempts);
  // Consumer `index` failed (to connect, or its session ended) and retries
  // in `delay`. `lost` when it was consuming; `misconfigured` when the broker
  // refuses what the configuration asks for (logged as an error).
  void failed(int index, std::string_view failure, std::uint32_t attempt,
              std::chrono::milliseconds delay, bool lost, bool misconfigured);
  // Consumer `index` stopped for good (shutdown).
  void stopped(int index);

  int consumersConfigured() const noexcept { return static_cast<int>(consuming_.size()); }
  int consumersConsuming() const;
  // Blocks until every consumer consumes, or the deadline; true when they do.
  bool waitAllConsuming(Clock::time_point deadline) const;

 private:
  int lowestDown() const;  // under mutex

  std::string queue_;
  int prefetch_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<QueueMetrics> metrics_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<char> consuming_;  // by consumer index: consuming or not
  int count_ = 0;
  bool served_ = false;  // all consumers consumed at least once
  bool outage_ = false;  // some consumer is down since the last time all were up
  Clock::time_point outage_started_;
};

}  // namespace warren
