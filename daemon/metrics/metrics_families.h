// SPDX-License-Identifier: Apache-2.0
// The registry behind Metrics: every warren_ family, and the per-queue series
// shared by the QueueMetrics handles of one queue.
//
// Per-queue series are reference counted: created at zero by the first
// acquire() of a (queue, handler), removed from their families by the last
// release(). Counting (rather than an explicit "remove queue") means a
// consumer thread still draining can never write to a removed series, and a
// queue that keeps its handler across a reload keeps its counters.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "metrics_outcome.h"
#include "readiness.h"

namespace warren {

// Pointers to the series one QueueMetrics updates. Valid while its
// acquire() is not released.
struct QueueSeries {
  // {queue, handler}
  prometheus::Counter* received = nullptr;
  std::array<prometheus::Counter*, kAllOutcomes.size()> finished{};
  prometheus::Histogram* handler_duration = nullptr;
  prometheus::Gauge* in_progress = nullptr;
  prometheus::Counter* redelivered = nullptr;
  prometheus::Counter* reply_publish_failures = nullptr;
  prometheus::Counter* replies_returned = nullptr;
  prometheus::Counter* replies_nacked = nullptr;
  prometheus::Counter* deadline_exceeded_queued = nullptr;    // {stage="queued"}
  prometheus::Counter* deadline_exceeded_handling = nullptr;  // {stage="handling"}
  prometheus::Counter* worker_restarts = nullptr;             // {event="restart"}
  prometheus::Counter* worker_crashes = nullptr;              // {event="crash"}
  prometheus::Counter* worker_kills = nullptr;                // {event="kill"}
  prometheus::Gauge* handlers_held = nullptr;
  prometheus::Gauge* deferred_in_flight = nullptr;
  prometheus::Counter* deferred_dropped_late = nullptr;  // {reason="deadline"}
  prometheus::Counter* deferred_dropped_lost = nullptr;  // {reason="connection_lost"}
  // {queue}
  prometheus::Gauge* consumers_connected = nullptr;
  prometheus::Gauge* consumers_configured = nullptr;
  prometheus::Counter* connection_attempts = nullptr;
  prometheus::Counter* connection_failures = nullptr;
  prometheus::Counter* sessions_lost = nullptr;
  prometheus::Counter* broker_blocked = nullptr;
};

class MetricsFamilies {
 public:
  // Registers every family and sets warren_build_info{version} to 1.
  explicit MetricsFamilies(const std::string& version);
  MetricsFamilies(const MetricsFamilies&) = delete;
  MetricsFamilies& operator=(const MetricsFamilies&) = delete;

  // The series of (queue, handler), created at zero unless another acquire()
  // of the same pair is still held. Each acquire() needs one release().
  QueueSeries acquire(const std::string& queue, const std::string& handler);
  void release(const std::string& queue, const std::string& handler);

  // One warren_plugin_info series per handler: set replaces the previous one.
  void setPluginInfo(const std::string& handler, const std::string& plugin,
                     const std::string& version, const std::string& abi);
  void removePluginInfo(const std::string& handler);

  void recordReload(bool ok);

  // Ready when at least one queue is registered and each registered queue
  // has as many consumers connected as configured.
  Readiness consumersReadiness() const;

  const std::shared_ptr<prometheus::Registry>& registry() const noexcept { return registry_; }

 private:
  struct QueueEntry {
    int users = 0;
    prometheus::Gauge* consumers_connected = nullptr;
    prometheus::Gauge* consumers_configured = nullptr;
    prometheus::Counter* connection_attempts = nullptr;
    prometheus::Counter* connection_failures = nullptr;
    prometheus::Counter* sessions_lost = nullptr;
    prometheus::Counter* broker_blocked = nullptr;
  };
  struct HandlerEntry {
    int users = 0;
    QueueSeries series;  // the {queue, handler} part
  };

  QueueEntry& acquireQueue(const std::string& queue);
  void releaseQueue(const std::string& queue);
  void removeHandlerSeries(const QueueSeries& series);

  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& finished_;
  prometheus::Family<prometheus::Histogram>& handler_duration_;
  prometheus::Family<prometheus::Gauge>& in_progress_;
  prometheus::Family<prometheus::Counter>& redelivered_;
  prometheus::Family<prometheus::Counter>& reply_publish_failures_;
  prometheus::Family<prometheus::Counter>& replies_returned_;
  prometheus::Family<prometheus::Counter>& replies_nacked_;
  prometheus::Family<prometheus::Counter>& deadline_exceeded_;
  prometheus::Family<prometheus::Counter>& worker_events_;
  prometheus::Family<prometheus::Gauge>& handlers_held_;
  prometheus::Family<prometheus::Gauge>& deferred_in_flight_;
  prometheus::Family<prometheus::Counter>& deferred_dropped_;
  prometheus::Family<prometheus::Gauge>& consumers_connected_;
  prometheus::Family<prometheus::Gauge>& consumers_configured_;
  prometheus::Family<prometheus::Counter>& connection_attempts_;
  prometheus::Family<prometheus::Counter>& connection_failures_;
  prometheus::Family<prometheus::Counter>& sessions_lost_;
  prometheus::Family<prometheus::Counter>& broker_blocked_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Family<prometheus::Gauge>& last_reload_success_;
  prometheus::Family<prometheus::Gauge>& last_reload_successful_;
  prometheus::Family<prometheus::Gauge>& plugin_info_;
  prometheus::Family<prometheus::Gauge>& build_info_;

  prometheus::Counter& reloads_succeeded_;
  prometheus::Counter& reloads_failed_;
  prometheus::Gauge& last_reload_success_time_;
  prometheus::Gauge& last_reload_ok_;

  mutable std::mutex mutex_;  // guards the maps below and Add/Remove pairs
  std::map<std::string, QueueEntry> queues_;
  std::map<std::pair<std::string, std::string>, HandlerEntry> handlers_;
  std::map<std::string, prometheus::Gauge*> plugin_infos_;  // by handler
};

}  // namespace warren
