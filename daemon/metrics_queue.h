// The metrics handle of one served queue: what its consumer threads update.
//
// Made by Metrics::addQueue(). Every method is a lock-free atomic update of a
// series created up front (the histogram takes its own short lock), so it is
// cheap on the request path and callable from any thread. The series stay
// while any handle of the same (queue, handler) is alive; destroying the last
// one removes them from /metrics.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "metrics_families.h"
#include "metrics_outcome.h"

namespace warren {

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

 private:
  std::shared_ptr<MetricsFamilies> families_;  // keeps the series' families alive
  std::string queue_;
  std::string handler_;
  QueueSeries series_;
};

}  // namespace warren
