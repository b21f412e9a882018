// SPDX-License-Identifier: Apache-2.0
// What the threads serving one queue share: its configuration, broker
// settings, handler, logger, metrics, health and stop signal. Held by
// shared_ptr from each of them, so that a thread left running past the drain
// deadline (a handler that never returns) still finds it alive.
#pragma once

#include "amqp_connection.h"
#include "backoff.h"
#include "broker_url.h"
#include "config.h"
#include "handler.h"
#include "held_handlers.h"
#include "metrics_queue.h"
#include "queue_health.h"
#include "request_policy.h"
#include "stop_signal.h"

#include <spdlog/logger.h>

#include <cstddef>
#include <memory>
#include <vector>

namespace warren {

struct BrokerSettings {
  // The nodes of one broker (cluster), credentials applied.
  std::vector<BrokerAddress> addresses;
  // Where the queue's connection opens first (modulo the number of
  // addresses): each queue a different one, so connections spread.
  std::size_t first_address = 0;
  ConnectionOptions connection;
  ReconnectConfig reconnect;
};

struct QueueRuntime {
  QueueRuntime(QueueConfig queue_config, BrokerSettings broker_settings,
               std::shared_ptr<const Handler> handler_instance,
               std::shared_ptr<spdlog::logger> queue_logger,
               std::shared_ptr<QueueMetrics> queue_metrics)
      : queue(std::move(queue_config)),
        broker(std::move(broker_settings)),
        handler(std::move(handler_instance)),
        logger(std::move(queue_logger)),
        metrics(std::move(queue_metrics)),
        health(queue.name, queue.consumers, queue.prefetch, logger, metrics),
        held(queue.consumers, queue.handler_timeout, logger, metrics),
        dead_letter(queue.arguments.count("x-dead-letter-exchange") != 0) {}

  const QueueConfig queue;
  const BrokerSettings broker;
  const std::shared_ptr<const Handler> handler;
  const std::shared_ptr<spdlog::logger> logger;
  const std::shared_ptr<QueueMetrics> metrics;
  QueueHealth health;
  HeldHandlers held;
  StopSignal stop;
  // Requests refused a reply must go somewhere other than back to the queue.
  const bool dead_letter;
  RefusedReplies replies;
};

}  // namespace warren
