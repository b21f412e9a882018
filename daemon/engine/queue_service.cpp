// SPDX-License-Identifier: Apache-2.0
#include "queue_service.h"

namespace warren {

QueueService::QueueService(QueueConfig queue, BrokerSettings broker,
                           std::chrono::milliseconds drain_timeout,
                           std::shared_ptr<const Handler> handler,
                           std::shared_ptr<spdlog::logger> logger,
                           std::shared_ptr<QueueMetrics> metrics)
    : drain_timeout_(drain_timeout),
      runtime_(std::make_shared<QueueRuntime>(std::move(queue), std::move(broker),
                                              std::move(handler), std::move(logger),
                                              std::move(metrics))),
      connection_(std::make_shared<QueueConnection>(runtime_)) {}

QueueService::~QueueService() {
  requestStop();
  join();
}

void QueueService::start() {
  std::lock_guard lock(stop_mutex_);
  started_ = true;
  connection_->start();
}

void QueueService::requestStop() noexcept {
  std::lock_guard lock(stop_mutex_);
  if (runtime_->stop.requested()) return;
  drain_deadline_ = std::chrono::steady_clock::now() + drain_timeout_;
  runtime_->stop.request();
  if (!started_) return;  // built for a reload that was then rejected: nothing to say
  const int busy = connection_->handlersRunning();
  runtime_->logger->info("draining: no new requests, {} in progress (up to {} ms)", busy,
                         drain_timeout_.count());
}

void QueueService::setDrainTimeout(std::chrono::milliseconds timeout) {
  std::lock_guard lock(stop_mutex_);
  drain_timeout_ = timeout;
}

void QueueService::join() {
  std::chrono::steady_clock::time_point deadline;
  {
    std::lock_guard lock(stop_mutex_);
    if (joined_ || !started_) return;
    joined_ = true;
    deadline = drain_deadline_;
  }
  const int abandoned = connection_->join(deadline);
  if (abandoned > 0 && !abandoned_.exchange(true)) {
    runtime_->logger->warn(
        "{} handler(s) still running after the drain timeout ({} ms); closed the queue's "
        "connection, the broker redelivers their requests",
        abandoned, drain_timeout_.count());
  }
  runtime_->logger->info("stopped");
}

bool QueueService::tryJoin() {
  {
    std::lock_guard lock(stop_mutex_);
    if (joined_ || !started_) return true;
    if (std::chrono::steady_clock::now() < drain_deadline_ && !connection_->done()) {
      return false;
    }
  }
  join();
  return true;
}

int QueueService::stalledConsumers() const {
  return connection_->stalled(std::chrono::steady_clock::now()) ? 1 : 0;
}

bool QueueService::waitConsuming(std::chrono::steady_clock::time_point deadline) const {
  return runtime_->health.waitAllConsuming(deadline);
}

}  // namespace warren
