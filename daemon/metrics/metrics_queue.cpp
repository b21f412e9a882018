// SPDX-License-Identifier: Apache-2.0
#include "metrics_queue.h"

#include <utility>

namespace warren {

QueueMetrics::QueueMetrics(std::shared_ptr<MetricsFamilies> families, std::string queue,
                           std::string handler)
    : families_(std::move(families)),
      queue_(std::move(queue)),
      handler_(std::move(handler)),
      series_(families_->acquire(queue_, handler_)) {}

QueueMetrics::~QueueMetrics() { families_->release(queue_, handler_); }

namespace {

// Counters hold doubles; every series here only ever counts whole events.
std::uint64_t read(const prometheus::Counter* counter) {
  return static_cast<std::uint64_t>(counter->Value());
}

}  // namespace

QueueCounts QueueMetrics::counts() const {
  const auto finished = [this](Outcome outcome) {
    return read(series_.finished[outcomeIndex(outcome)]);
  };
  QueueCounts counts;
  counts.received = read(series_.received);
  counts.handled = series_.handler_duration->Collect().histogram.sample_count;
  counts.replied = finished(Outcome::kOk);
  for (const ErrorCodeInfo& info : kErrorCodes) counts.replied_error += finished(info.outcome);
  counts.missing_reply_to = finished(Outcome::kNoReplyTo);
  counts.too_large = finished(Outcome::kTooLarge);
  counts.requeued = finished(Outcome::kRequeued);
  counts.reply_refused = finished(Outcome::kReplyRefused);
  counts.lost = finished(Outcome::kLost);
  counts.returned = read(series_.replies_returned);
  counts.nacked = read(series_.replies_nacked);
  counts.deadline_queued = read(series_.deadline_exceeded_queued);
  counts.deadline_handling = read(series_.deadline_exceeded_handling);
  counts.worker_crashes = read(series_.worker_crashes);
  counts.worker_kills = read(series_.worker_kills);
  counts.worker_restarts = read(series_.worker_restarts);
  counts.handlers_held = static_cast<std::int64_t>(series_.handlers_held->Value());
  counts.deferred_in_flight = static_cast<std::int64_t>(series_.deferred_in_flight->Value());
  counts.deferred_late = read(series_.deferred_dropped_late);
  counts.deferred_lost = read(series_.deferred_dropped_lost);
  counts.reply_failures = read(series_.reply_publish_failures);
  counts.sessions_lost = read(series_.sessions_lost);
  counts.blocked = read(series_.broker_blocked);
  return counts;
}

}  // namespace warren
