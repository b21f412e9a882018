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
      consuming_(static_cast<std::size_t>(consumers), false) {}

void QueueHealth::consuming(int index, std::uint32_t attempts) {
  {
    std::lock_guard lock(mutex_);
    char& slot = consuming_[static_cast<std::size_t>(index)];
    if (slot) return;
    slot = true;
    ++count_;
    metrics_->consumerConnected();
    if (count_ == consumersConfigured()) {
      if (!served_) {
        logger_->info("consuming '{}' with {} consumer(s), prefetch {}", queue_, count_, prefetch_);
      } else if (outage_) {
        const auto outage =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - outage_started_);
        logger_->info("consuming again after {} attempt(s), {} ms without full service", attempts,
                      outage.count());
      }
      served_ = true;
      outage_ = false;
    }
  }
  changed_.notify_all();
}

void QueueHealth::failed(int index, std::string_view failure, std::uint32_t attempt,
                         std::chrono::milliseconds delay, bool lost, bool misconfigured) {
  std::lock_guard lock(mutex_);
  char& slot = consuming_[static_cast<std::size_t>(index)];
  if (slot) {
    slot = false;
    --count_;
    metrics_->consumerDisconnected();
  }
  metrics_->connectionFailure();
  const bool first = !outage_;
  if (first) {
    outage_ = true;
    outage_started_ = Clock::now();
  }
  const bool speaks = first || (index == lowestDown() && powerOfTwo(attempt));
  const auto level = !speaks         ? spdlog::level::debug
                     : misconfigured ? spdlog::level::err
                                     : spdlog::level::warn;
  logger_->log(level, "{}{} (attempt {}); consumer {} retries in {} ms",
               lost && !misconfigured ? "connection lost: " : "", failure, attempt, index + 1,
               delay.count());
}

void QueueHealth::stopped(int index) {
  {
    std::lock_guard lock(mutex_);
    char& slot = consuming_[static_cast<std::size_t>(index)];
    if (!slot) return;
    slot = false;
    --count_;
    metrics_->consumerDisconnected();
  }
  changed_.notify_all();
}

int QueueHealth::consumersConsuming() const {
  std::lock_guard lock(mutex_);
  return count_;
}

bool QueueHealth::waitAllConsuming(Clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, deadline, [this] { return count_ == consumersConfigured(); });
}

int QueueHealth::lowestDown() const {
  for (std::size_t i = 0; i < consuming_.size(); ++i) {
    if (!consuming_[i]) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace warren
