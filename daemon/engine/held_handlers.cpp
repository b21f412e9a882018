// SPDX-License-Identifier: Apache-2.0
#include "held_handlers.h"

#include "log_escape.h"

namespace warren {
namespace {

long long millisecondsBetween(HeldHandlers::Clock::time_point from,
                              HeldHandlers::Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

}  // namespace

HeldHandlers::HeldHandlers(int consumers, std::chrono::milliseconds handler_timeout,
                           std::shared_ptr<spdlog::logger> logger,
                           std::shared_ptr<QueueMetrics> metrics)
    : handler_timeout_(handler_timeout),
      logger_(std::move(logger)),
      metrics_(std::move(metrics)),
      runs_(static_cast<std::size_t>(consumers)) {}

void HeldHandlers::started(int index, const std::string& correlation_id,
                           Clock::time_point since) noexcept {
  std::lock_guard lock(mutex_);
  Run& run = runs_[static_cast<std::size_t>(index)];
  run.running = true;
  run.held = false;
  run.logged = false;
  run.since = since;
  run.correlation_id = &correlation_id;
}

void HeldHandlers::finished(int index, Clock::time_point now) noexcept {
  std::lock_guard lock(mutex_);
  Run& run = runs_[static_cast<std::size_t>(index)];
  if (run.held) {
    held_.fetch_sub(1);
    metrics_->setHandlersHeld(held_.load());
    logger_->warn(
        "the handler held past handler_timeout returned after {} ms (correlation_id '{}')",
        millisecondsBetween(run.since, now), escapeForLog(*run.correlation_id));
  }
  run.running = false;
  run.held = false;
  run.logged = false;
  run.correlation_id = nullptr;
}

int HeldHandlers::check(Clock::time_point now) noexcept {
  std::lock_guard lock(mutex_);
  int newly = 0;
  for (Run& run : runs_) {
    if (!run.running || run.held || now - run.since <= handler_timeout_) continue;
    run.held = true;
    ++newly;
  }
  if (newly == 0) return held_.load();
  // Counted before it is logged: whoever reads the log line finds it counted.
  const int held = held_.load() + newly;
  held_.store(held);
  metrics_->setHandlersHeld(held);
  for (const Run& run : runs_) {
    if (!run.held || run.logged) continue;
    logger_->warn(
        "a handler has run {} ms on request (correlation_id '{}'), past handler_timeout ({} ms): "
        "it holds its consumer until it returns",
        millisecondsBetween(run.since, now), escapeForLog(*run.correlation_id),
        handler_timeout_.count());
  }
  for (Run& run : runs_) run.logged = run.held;
  if (held == consumers()) {
    logger_->error(
        "every consumer ({}) is held by a handler past handler_timeout: the queue serves nothing "
        "and is not ready",
        held);
  }
  return held;
}

}  // namespace warren
