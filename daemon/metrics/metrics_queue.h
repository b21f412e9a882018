// SPDX-License-Identifier: Apache-2.0
// The metrics handle of one served queue: what its consumer threads update.
//
// Made by Metrics::addQueue(). Every method is a lock-free atomic update of a
// series created up front (the histogram takes its own short lock), so it is
// cheap on the request path and callable from any thread. The series stay
// while any handle of the same (queue, handler) is alive; destroying the last
// one removes them from /metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "metrics_families.h"
#include "metrics_outcome.h"

namespace warren {

// A reading of one queue's series (QueueMetrics::counts()).
struct QueueCounts {
  std::uint64_t received = 0;           // deliveries, redeliveries included
  std::uint64_t handled = 0;            // handler runs
  std::uint64_t replied = 0;            // finished ok
  std::uint64_t replied_error = 0;      // finished with an error reply
  std::uint64_t missing_reply_to = 0;   // finished no_reply_to
  std::uint64_t too_large = 0;          // finished too_large
  std::uint64_t requeued = 0;           // finished requeued
  std::uint64_t reply_refused = 0;      // finished reply_refused
  std::uint64_t lost = 0;               // finished lost
  std::uint64_t returned = 0;           // replies returned (basic.return)
  std::uint64_t nacked = 0;             // replies refused (basic.nack)
  std::uint64_t deadline_queued = 0;    // deadline_exceeded before the handler ran
  std::uint64_t deadline_handling = 0;  // deadline_exceeded after it ran
  std::uint64_t worker_crashes = 0;     // worker processes that crashed
  std::uint64_t worker_kills = 0;       // worker processes killed at a deadline
  std::uint64_t worker_restarts = 0;    // worker processes started again
  std::int64_t handlers_held = 0;       // handlers running past handler_timeout
  std::int64_t deferred_in_flight = 0;  // deferred replies not completed yet
  std::uint64_t deferred_late = 0;      // deferred completions dropped: past the deadline
  std::uint64_t deferred_lost = 0;      // deferred completions dropped: connection lost
  std::uint64_t reply_failures = 0;     // reply publishes that failed
  std::uint64_t sessions_lost = 0;      // consuming sessions lost
  std::uint64_t blocked = 0;            // connection.blocked notifications
};

class QueueMetrics {
 public:
  QueueMetrics(std::shared_ptr<MetricsFamilies> families, std::string queue, std::string handler);
  ~QueueMetrics();
  QueueMetrics(const QueueMetrics&) = delete;
  QueueMetrics& operator=(const QueueMetrics&) = delete;

  const std::string& queue() const noexcept { return queue_; }
  const std::string& handler() const noexcept { return handler_; }

  // --- requests {queue, handler}

  // A delivery arrived (redeliveries included; also call redelivered()).
  void received() noexcept { series_.received->Increment(); }
  void redelivered() noexcept { series_.redelivered->Increment(); }
  // A request is done with: replied and acked, acked without reply_to, or
  // handed back to the broker. Each received() ends in exactly one finished().
  void finished(Outcome outcome) noexcept { series_.finished[outcomeIndex(outcome)]->Increment(); }
  // Time the handler plugin took; only for requests the handler ran.
  void observeHandler(std::chrono::duration<double> elapsed) noexcept {
    series_.handler_duration->Observe(elapsed.count());
  }
  // +1 when a request is received, -1 when it is finished.
  void inProgressAdd(int delta) noexcept { series_.in_progress->Increment(delta); }
  // Publishing a reply failed (the channel or connection broke).
  void replyPublishFailed() noexcept { series_.reply_publish_failures->Increment(); }
  // The broker returned a mandatory reply: no queue by the reply_to name.
  void replyReturned() noexcept { series_.replies_returned->Increment(); }
  // The broker refused (basic.nack) a confirmed reply.
  void replyNacked() noexcept { series_.replies_nacked->Increment(); }
  // A request answered deadline_exceeded: its deadline had passed on
  // arrival (the handler was not run) / when its handler returned.
  void deadlineExceededQueued() noexcept { series_.deadline_exceeded_queued->Increment(); }
  void deadlineExceededHandling() noexcept { series_.deadline_exceeded_handling->Increment(); }
  // Handler worker processes: one died or broke the protocol holding a
  // request, one was killed at a deadline, one was started again.
  void workerCrashed() noexcept { series_.worker_crashes->Increment(); }
  void workerKilled() noexcept { series_.worker_kills->Increment(); }
  void workerRestarted() noexcept { series_.worker_restarts->Increment(); }
  // In-process handlers running past handler_timeout now.
  void setHandlersHeld(int held) noexcept { series_.handlers_held->Set(held); }
  // Deferred replies (plugin ABI 1.1): +1 when a plugin defers one, -1 when
  // its request is answered; a completion that came too late (its request
  // was answered deadline_exceeded) or for a lost connection.
  void deferredInFlightAdd(int delta) noexcept { series_.deferred_in_flight->Increment(delta); }
  void deferredDroppedLate() noexcept { series_.deferred_dropped_late->Increment(); }
  void deferredDroppedLost() noexcept { series_.deferred_dropped_lost->Increment(); }

  // --- consumers and connections {queue}

  // A consumer's basic.consume was confirmed / that consumer is gone.
  void consumerConnected() noexcept { series_.consumers_connected->Increment(); }
  void consumerDisconnected() noexcept { series_.consumers_connected->Decrement(); }
  // Set by Metrics::addQueue(); call again when a reload resizes the queue.
  void setConsumersConfigured(int consumers) noexcept {
    series_.consumers_configured->Set(consumers);
  }
  void connectionAttempt() noexcept { series_.connection_attempts->Increment(); }
  // An attempt failed, or an open connection was lost.
  void connectionFailure() noexcept { series_.connection_failures->Increment(); }
  // A consumer that was consuming lost its session without being asked to.
  void sessionLost() noexcept { series_.sessions_lost->Increment(); }
  // The broker sent connection.blocked to a consumer's connection.
  void brokerBlocked() noexcept { series_.broker_blocked->Increment(); }

  // What the series say now: the one count of every event above, for
  // callers in the process (tests, diagnostics) that do not scrape.
  QueueCounts counts() const;

 private:
  std::shared_ptr<MetricsFamilies> families_;  // keeps the series' families alive
  std::string queue_;
  std::string handler_;
  QueueSeries series_;
};

}  // namespace warren
