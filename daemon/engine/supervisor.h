// SPDX-License-Identifier: Apache-2.0
// The daemon: from a validated Config to serving queues, through reloads,
// and back down.
#pragma once

#include "config.h"
#include "json_log_sink.h"
#include "metrics.h"
#include "plugin_catalog.h"
#include "queue_service.h"
#include "worker_process.h"

#include <spdlog/sinks/sink.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace warren {

// What a reload changed, for the log and the tests.
struct ReloadSummary {
  int added = 0;      // queues that were not served before
  int removed = 0;    // queues drained and stopped
  int replaced = 0;   // queues whose settings or plugin file changed
  int unchanged = 0;  // queues left serving untouched
};

class Supervisor {
 public:
  // Loads every plugin and creates every handler instance. Problems with a
  // plugin file or its options throw ConfigError pointing at the line of
  // the queue's `handler` or `options`. Logs go to `sink`. `worker_program`
  // is what `isolation: process` queues start as their workers, with
  // `--handler-worker`: warrend itself (another warrend binary when the
  // supervisor runs inside a test).
  Supervisor(Config config, std::shared_ptr<spdlog::sinks::sink> sink,
             std::filesystem::path worker_program = "/proc/self/exe");
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the metrics endpoint (throws std::runtime_error when it cannot
  // listen) and every queue's consumers. Connecting happens in the
  // background: an unreachable broker is retried, never fatal.
  void start();

  // Applies a new configuration (SIGHUP). The whole new state is built and
  // validated first (plugins loaded, options accepted, metrics address
  // bound); any failure throws ConfigError or std::runtime_error and the
  // running state stays as it was. Then: new queues start, removed ones
  // drain and stop, changed ones (settings, or a plugin file replaced on
  // disk) start anew beside the old consumers, which then drain; unchanged
  // queues keep serving untouched. New queues start before the running list
  // is touched: one that cannot start (no threads left) is stopped again and
  // the reload throws with nothing changed. Returns without waiting for the
  // retired queues to drain: reap() collects them. Call from one thread (the
  // one that waits for signals), like reap() and drained().
  ReloadSummary reload(Config next);
  // Joins the retired queues that have drained (or passed their drain
  // deadline) without waiting for the others; returns how many are left.
  std::size_t reap();

  // Safe from any thread (not from a signal handler: call it from the
  // thread that waits for signals).
  void requestStop() noexcept;
  // After requestStop(), for a loop that must keep answering signals and
  // the watchdog: true once every queue (retired ones too) has stopped;
  // never waits for a drain.
  bool drained();
  // Waits until every queue has drained and closed. Returns true when all
  // in-flight requests were answered, false when a drain timeout, at this
  // stop or at any reload before, cut handlers off (their requests are
  // redelivered by the broker; their threads may still run plugin code).
  bool wait();

  // Ready while every queue has all its consumers consuming. Thread-safe.
  Readiness readiness() const;
  // False when a consumer thread is stuck (for the systemd watchdog).
  bool makingProgress() const;
  // "2 queues, 10/10 consumers", for systemd's STATUS=.
  std::string status() const;

  // For tests and the shutdown summary.
  QueueService& queue(const std::string& name);
  // True once every queue is consuming, false at the deadline.
  bool waitConsuming(std::chrono::steady_clock::time_point deadline) const;
  Metrics& metrics() { return metrics_; }
  spdlog::logger& logger() { return *logger_; }

 private:
  struct ServedQueue {
    QueueConfig config;
    std::shared_ptr<const PluginLibrary> library;  // null for handler: exec
    std::shared_ptr<spdlog::logger> logger;
    std::shared_ptr<QueueMetrics> metrics;
    std::unique_ptr<QueueService> service;
  };

  ServedQueue build(const Config& config, const QueueConfig& queue, const BrokerSettings& broker);
  // The worker pool of an isolated or exec queue; ConfigError at the
  // queue's handler line when its workers cannot start.
  std::shared_ptr<const Handler> startWorkers(const Config& config, const QueueConfig& queue,
                                              const ServedQueue& served, WorkerCommand command,
                                              std::string init_bytes);
  // A logger on sink_; with logging.format json, its records carry
  // `fields` (a queue's name and plugin).
  std::shared_ptr<spdlog::logger> makeLogger(const std::string& name, const std::string& level,
                                             LogFields fields = {}) const;
  void serveMetrics(const MetricsConfig& config);
  // The services now serving, for waits that must not hold queues_mutex_.
  std::vector<QueueService*> services() const;
  // warren_plugin_info for the handlers now serving, and no other.
  void publishPluginInfo();
  // Logs the choice of broker.tls.verify: false.
  void warnOfUnverifiedTls(const BrokerConfig& broker) const;

  Config config_;
  std::shared_ptr<spdlog::sinks::sink> sink_;
  // logging.format as the daemon started (a reload does not change it).
  std::string log_format_;
  std::filesystem::path worker_program_;
  std::shared_ptr<spdlog::logger> logger_;
  Metrics metrics_;
  PluginCatalog catalog_;
  BrokerSettings broker_;
  // The first_address of the next queue built: consecutive queues open on
  // consecutive nodes of a cluster.
  std::size_t next_first_address_;
  mutable std::mutex queues_mutex_;  // guards both lists, for readers on other threads
  std::vector<ServedQueue> queues_;
  std::vector<ServedQueue> retiring_;  // stopped by a reload, draining
  int abandoned_by_reloads_ = 0;       // retired queues that left handlers running
  std::vector<std::string> plugin_info_handlers_;
};

}  // namespace warren
