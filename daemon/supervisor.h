// The daemon: from a validated Config to serving queues, and back down.
#pragma once

#include "config.h"
#include "plugin_library.h"
#include "queue_service.h"

#include <spdlog/sinks/sink.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace warren {

class Supervisor {
 public:
  // Loads every plugin and creates every handler instance. Problems with a
  // plugin file or its options throw ConfigError pointing at the line of
  // the queue's `handler` or `options`. Logs go to `sink`.
  Supervisor(Config config, std::shared_ptr<spdlog::sinks::sink> sink);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts every queue's I/O thread. Connecting happens in the background:
  // an unreachable broker is retried, never fatal.
  void start();
  // Safe from any thread (not from a signal handler: call it from the
  // thread that waits for signals).
  void requestStop() noexcept;
  // Waits until every queue has drained and closed. Returns true when all
  // in-flight requests were answered, false when the drain timeout cut
  // handlers off (their requests are redelivered by the broker).
  bool wait();

  // For tests and the shutdown summary.
  QueueService& queue(const std::string& name);
  // True once every queue is consuming, false at the deadline.
  bool waitConsuming(std::chrono::steady_clock::time_point deadline) const;
  spdlog::logger& logger() { return *logger_; }

 private:
  std::shared_ptr<spdlog::logger> makeLogger(const std::string& name) const;

  Config config_;
  std::shared_ptr<spdlog::sinks::sink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  std::vector<std::unique_ptr<QueueService>> queues_;
};

}  // namespace warren
