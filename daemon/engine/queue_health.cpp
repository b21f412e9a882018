// SPDX-License-Identifier: Apache-2.0
#include "queue_health.h"

namespace warren {
namespace {

bool powerOfTwo(std::uint32_t attempt) { return attempt != 0 && (attempt & (attempt - 1)) == 0; }

}  // namespace

QueueHealth::QueueHealth(std::string queue, int consumers, int prefetch,
                         std::shared_ptr<spdlog::logger> logger,
                         std::shared_ptr<QueueMetrics> metrics)
    : queue_(std::move(queue)),
      prefetch_(prefetch),
      logger_(std::move(logger)),
      metrics_(std::move(metrics)),
      consumers_(consumers) {}

void QueueHealth::consuming(std::uint32_t attempts, std::string_view endpoint) {
  {
    std::lock_guard lock(mutex_);
    if (count_ == consumers_) return;
    for (; count_ < consumers_; ++count_) metrics_->consumerConnected();
    if (!served_) {
      logger_->info("consuming '{}' with {} consumer(s), prefetch {}, on {}", queue_, count_,
                    prefetch_, endpoint);
    } else if (outage_) {
      const auto outage =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - outage_started_);
      logger_->info("consuming again after {} attempt(s), {} ms without full service, on {}",
                    attempts, outage.count(), endpoint);
    }
    served_ = true;
    outage_ = false;
  }
  changed_.notify_all();
}

void QueueHealth::failed(std::string_view failure, std::uint32_t attempt,
                         std::chrono::milliseconds delay, bool lost, bool misconfigured) {
  {
    std::lock_guard lock(mutex_);
    for (; count_ > 0; --count_) metrics_->consumerDisconnected();
    metrics_->connectionFailure();
    const bool first = !outage_;
    if (first) {
      outage_ = true;
      outage_started_ = Clock::now();
    }
    const bool speaks = first || powerOfTwo(attempt);
    const auto level = !speaks         ? spdlog::level::debug
                       : misconfigured ? spdlog::level::err
                                       : spdlog::level::warn;
    logger_->log(level, "{}{} (attempt {}); the {} consumer(s) retry in {} ms",
                 lost && !misconfigured ? "connection lost: " : "", failure, attempt, consumers_,
                 delay.count());
  }
  changed_.notify_all();
}

void QueueHealth::stopped() {
  {
    std::lock_guard lock(mutex_);
    if (count_ == 0) return;
    for (; count_ > 0; --count_) metrics_->consumerDisconnected();
  }
  changed_.notify_all();
}

int QueueHealth::consumersConsuming() const {
  std::lock_guard lock(mutex_);
  return count_;
}

bool QueueHealth::waitAllConsuming(Clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, deadline, [this] { return count_ == consumers_; });
}

}  // namespace warren
