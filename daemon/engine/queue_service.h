// SPDX-License-Identifier: Apache-2.0
// Serves one configured queue: its connection with N consumers
// (queue_connection.h), and the stop, drain and join that a reload or
// shutdown asks of it.
#pragma once

#include "config.h"
#include "metrics_queue.h"
#include "plugin_instance.h"
#include "queue_connection.h"
#include "queue_runtime.h"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace warren {

class QueueService {
 public:
  QueueService(QueueConfig queue, BrokerSettings broker, std::chrono::milliseconds drain_timeout,
               std::shared_ptr<const Handler> handler, std::shared_ptr<spdlog::logger> logger,
               std::shared_ptr<QueueMetrics> metrics);
  // Stops (as requestStop) and joins.
  ~QueueService();
  QueueService(const QueueService&) = delete;
  QueueService& operator=(const QueueService&) = delete;

  void start();
  // Stop taking requests; requests in progress have until the drain timeout
  // to finish. Returns at once; join() waits.
  void requestStop() noexcept;
  // After requestStop(): waits for the consumers (see QueueConnection::join).
  void join();
  // After requestStop(), for a caller that must not wait: joins when every
  // consumer is done or the drain deadline has passed (then join() only
  // takes the connections of handlers still running and returns), and says
  // whether it did. False means "look again later".
  bool tryJoin();
  // For a stop that has not begun yet.
  void setDrainTimeout(std::chrono::milliseconds timeout);

  // Blocks until every consumer is consuming, or the deadline; true when so.
  bool waitConsuming(std::chrono::steady_clock::time_point deadline) const;
  int consumersConsuming() const { return runtime_->health.consumersConsuming(); }
  // Consumers held by a handler running past handler_timeout (held_handlers.h).
  int consumersHeld() const { return runtime_->held.held(); }
  // 1 when the thread holding the connection is past the time it promised
  // to come round again (watchdog), else 0.
  int stalledConsumers() const;
  // True after join() when handlers were still running at the drain deadline.
  bool abandonedHandlers() const noexcept { return abandoned_.load(); }

  // What its metrics series have counted (the same numbers /metrics shows).
  QueueCounts counts() const { return runtime_->metrics->counts(); }
  const QueueConfig& config() const noexcept { return runtime_->queue; }

 private:
  std::chrono::milliseconds drain_timeout_;
  std::shared_ptr<QueueRuntime> runtime_;
  std::shared_ptr<QueueConnection> connection_;

  std::mutex stop_mutex_;
  std::chrono::steady_clock::time_point drain_deadline_;  // under stop_mutex_
  bool started_ = false;                                  // under stop_mutex_
  bool joined_ = false;                                   // under stop_mutex_
  std::atomic<bool> abandoned_{false};
};

}  // namespace warren
