// SPDX-License-Identifier: Apache-2.0
// Runs the real warrend engine in-process against the test broker, with a
// log sink the test can wait on.
#pragma once

#include "supervisor.h"

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace warren::test {

// Keeps every formatted line (and echoes it to stderr for ctest's output).
class CapturingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string text() const;
  // Waits until the log contains `needle`; false at the deadline.
  bool waitFor(const std::string& needle, std::chrono::milliseconds timeout) const;

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override;
  void flush_() override {}

 private:
  mutable std::mutex text_mutex_;
  mutable std::condition_variable grew_;
  std::string text_;
};

// The YAML of a daemon talking to the broker on `port`: `queues` is the
// YAML of the queue list (each item starting with "  - name: ..."), `broker`
// extra lines under `broker:` (indented by two spaces), `plugin_dir` where
// the handlers are (the real plugins by default).
std::string daemonYaml(int port, const std::string& queues, const std::string& broker = "",
                       const std::string& plugin_dir = WARREN_PLUGIN_DIR);

// `yaml` from daemonYaml() with the metrics endpoint on 127.0.0.1:`port`
// (daemonYaml() leaves it off, so that daemons never contend for a port).
std::string withMetrics(std::string yaml, int port);

class RunningDaemon {
 public:
  // Parses `yaml`, builds the Supervisor, starts it and waits until every
  // queue consumes (fails the test after 30 s).
  explicit RunningDaemon(const std::string& yaml, bool wait_consuming = true);
  ~RunningDaemon();
  RunningDaemon(const RunningDaemon&) = delete;
  RunningDaemon& operator=(const RunningDaemon&) = delete;

  Supervisor& supervisor() { return *supervisor_; }
  // The queue's metrics series, read now (QueueMetrics::counts()).
  QueueCounts counters(const std::string& queue) { return supervisor_->queue(queue).counts(); }
  const CapturingSink& log() const { return *sink_; }
  // Stops and waits; returns Supervisor::wait()'s answer.
  bool stop();

 private:
  std::shared_ptr<CapturingSink> sink_;
  std::unique_ptr<Supervisor> supervisor_;
  bool stopped_ = false;
};

}  // namespace warren::test
