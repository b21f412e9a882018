// SPDX-License-Identifier: Apache-2.0
// Whether a queue's consumers are consuming: for readiness, for tests that
// wait, and for a log that speaks once per outage instead of once per
// attempt.
//
// The consumers of a queue share its connection (queue_connection.h): they
// start consuming together and are lost together. The first failure of an
// outage is logged, then only the retries at attempts 1, 2, 4, 8, ..., and
// one line when the consumers are back.
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

namespace warren {

class QueueHealth {
 public:
  using Clock = std::chrono::steady_clock;

  // `metrics` gets warren_consumers_connected and the connection failures.
  QueueHealth(std::string queue, int consumers, int prefetch,
              std::shared_ptr<spdlog::logger> logger, std::shared_ptr<QueueMetrics> metrics);

  // Every consumer started consuming after `attempts` failed attempts, on a
  // connection to `endpoint` (logged, with each new connection).
  void consuming(std::uint32_t attempts, std::string_view endpoint);
  // The connection failed (to open, or its session ended); retried in
  // `delay`. `lost` when it was consuming; `misconfigured` when the broker
  // refuses what the configuration asks for (logged as an error).
  void failed(std::string_view failure, std::uint32_t attempt, std::chrono::milliseconds delay,
              bool lost, bool misconfigured);
  // The consumers stopped for good (shutdown).
  void stopped();

  int consumersConfigured() const noexcept { return consumers_; }
  int consumersConsuming() const;
  // Blocks until every consumer consumes, or the deadline; true when they do.
  bool waitAllConsuming(Clock::time_point deadline) const;

 private:
  std::string queue_;
  int prefetch_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<QueueMetrics> metrics_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  const int consumers_;
  int count_ = 0;        // consuming: 0 or consumers_
  bool served_ = false;  // all consumers consumed at least once
  bool outage_ = false;  // some consumer is down since the last time all were up
  Clock::time_point outage_started_;
};

}  // namespace warren
