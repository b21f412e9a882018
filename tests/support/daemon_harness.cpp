// SPDX-License-Identifier: Apache-2.0
#include "daemon_harness.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace warren::test {

std::string CapturingSink::text() const {
  std::lock_guard lock(text_mutex_);
  return text_;
}

bool CapturingSink::waitFor(const std::string& needle, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(text_mutex_);
  return grew_.wait_for(lock, timeout, [&] { return text_.find(needle) != std::string::npos; });
}

void CapturingSink::sink_it_(const spdlog::details::log_msg& message) {
  spdlog::memory_buf_t formatted;
  formatter_->format(message, formatted);
  const std::string line(formatted.data(), formatted.size());
  std::fputs(line.c_str(), stderr);
  {
    std::lock_guard lock(text_mutex_);
    text_ += line;
  }
  grew_.notify_all();
}

std::string daemonYaml(int port, const std::string& queues, const std::string& broker,
                       const std::string& plugin_dir) {
  return "broker:\n"
         "  url: amqp://guest:guest@127.0.0.1:" +
         std::to_string(port) +
         "/%2f\n"
         "  reconnect:\n"
         "    initial_delay: 50ms\n"
         "    max_delay: 1s\n" +
         broker +
         "plugins:\n"
         "  dir: " +
         plugin_dir +
         "\n"
         "logging:\n"
         "  level: debug\n"
         "metrics:\n"
         "  enabled: false\n"
         "queues:\n" +
         queues;
}

RunningDaemon::RunningDaemon(const std::string& yaml, bool wait_consuming)
    : sink_(std::make_shared<CapturingSink>()) {
  sink_->set_pattern("%H:%M:%S.%e [%n] [%l] %v");
  Config config = parseConfig(yaml, "test.yaml");
  supervisor_ = std::make_unique<Supervisor>(std::move(config), sink_, WARREND_BINARY);
  supervisor_->start();
  if (wait_consuming) {
    EXPECT_TRUE(
        supervisor_->waitConsuming(std::chrono::steady_clock::now() + std::chrono::seconds(30)))
        << "the daemon did not start consuming within 30 s";
  }
}

std::string withMetrics(std::string yaml, int port) {
  const std::string off = "metrics:\n  enabled: false\n";
  const auto at = yaml.find(off);
  if (at == std::string::npos) throw std::invalid_argument("not a daemonYaml() text");
  return yaml.replace(at, off.size(),
                      "metrics:\n  listen: 127.0.0.1:" + std::to_string(port) + "\n");
}

RunningDaemon::~RunningDaemon() { stop(); }

bool RunningDaemon::stop() {
  if (stopped_) return true;
  stopped_ = true;
  supervisor_->requestStop();
  return supervisor_->wait();
}

}  // namespace warren::test
