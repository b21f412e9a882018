// SPDX-License-Identifier: Apache-2.0
// A request that kills warrend every time it is handled (a crashing plugin):
// with a quorum queue's delivery_limit it ends in the dead-letter queue an
// operator can inspect, while a supervisor (systemd's Restart=on-failure,
// played here by a loop) keeps restarting warrend and the other requests
// keep being answered.
#include "child_process.h"
#include "config_file.h"
#include "daemon_harness.h"
#include "eventually.h"
#include "private_broker.h"

#include <gtest/gtest.h>
#include <warren/client.hpp>

#include <atomic>
#include <csignal>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

// Restarts warrend whenever it exits, until stopped; counts the crashes.
class RestartLoop {
 public:
  explicit RestartLoop(const ConfigFile& config) : config_(config) {
    thread_ = std::thread([this] { run(); });
  }
  ~RestartLoop() { stop(); }
  RestartLoop(const RestartLoop&) = delete;
  RestartLoop& operator=(const RestartLoop&) = delete;

  int crashes() const { return crashes_; }
  std::string output() const {
    std::lock_guard lock(mutex_);
    return outputs_ + (current_ ? current_->output() : "");
  }
  // Stops the loop and the running warrend (SIGTERM); its exit code.
  std::optional<int> stop() {
    if (!thread_.joinable()) return 0;
    stopping_ = true;
    {
      std::lock_guard lock(mutex_);
      if (current_) current_->signal(SIGTERM);
    }
    thread_.join();
    std::lock_guard lock(mutex_);
    return last_exit_;
  }

 private:
  void run() {
    while (!stopping_) {
      {
        std::lock_guard lock(mutex_);
        current_ = std::make_shared<ChildProcess>(
            std::vector<std::string>{WARREND_BINARY, "--config", config_.path()});
      }
      std::optional<int> code;
      while (!code) code = current_->waitExit(1s);
      std::lock_guard lock(mutex_);
      last_exit_ = code;
      outputs_ += current_->output();
      current_.reset();
      if (!stopping_) ++crashes_;
    }
  }

  const ConfigFile& config_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> crashes_{0};
  mutable std::mutex mutex_;
  std::shared_ptr<ChildProcess> current_;
  std::string outputs_;
  std::optional<int> last_exit_;
  std::thread thread_;
};

TEST(Poison, ARequestThatCrashesWarrendEndsInTheDeadLetterQueue) {
  // One consumer, prefetch 1: only the poisoned request is out when warrend
  // dies, so only it counts deliveries (docs/operations.md explains why).
  const ConfigFile config(
      "poison.yaml", daemonYaml(broker().port(),
                                "  - name: poisoned\n"
                                "    handler: poison\n"
                                "    consumers: 1\n"
                                "    type: quorum\n"
                                "    delivery_limit: 3\n"
                                "    dead_letter: {exchange: poisoned.dlx, queue: poisoned.dead}\n",
                                "", WARREN_FIXTURE_PLUGIN_DIR));
  RestartLoop warrend(config);

  ClientOptions options;
  options.broker_url = broker().url();
  options.default_timeout = 120s;
  Client client(options);
  // The first warrend declares the queues.
  ASSERT_TRUE(eventually([&] { return broker().queueState("poisoned").size() > 0; }, 30s));

  std::vector<std::future<Reply>> before;
  for (int i = 0; i < 10; ++i)
    before.push_back(client.callAsync("poisoned", std::to_string(i) + ",1"));
  auto poisoned = client.callAsync("poisoned", "poison");
  std::vector<std::future<Reply>> after;
  for (int i = 0; i < 10; ++i)
    after.push_back(client.callAsync("poisoned", std::to_string(i) + ",2"));

  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(before[static_cast<std::size_t>(i)].get().body, std::to_string(i + 1));
    EXPECT_EQ(after[static_cast<std::size_t>(i)].get().body, std::to_string(i + 2));
  }
  // Delivered delivery_limit + 1 times, each one fatal, then dead-lettered.
  ASSERT_TRUE(
      eventually([&] { return broker().queueState("poisoned.dead").starts_with("1 0"); }, 60s))
      << broker().queueState("poisoned.dead") << "\n"
      << warrend.output();
  EXPECT_EQ(warrend.crashes(), 4) << warrend.output();
  // The request itself is in the dead-letter queue, as sent.
  EXPECT_NE(broker().ctl("list_queues name messages --formatter json").find("poisoned.dead"),
            std::string::npos);
  // warrend keeps serving once the poison is gone.
  EXPECT_EQ(client.call("poisoned", "40,2").body, "42");
  EXPECT_EQ(warrend.stop(), 0) << warrend.output();
  // Nothing left behind (a quorum queue's counts lag by a moment).
  std::string state;
  EXPECT_TRUE(eventually(
      [&] { return (state = broker().queueState("poisoned")).starts_with("0 0 "); }, 30s))
      << state;
  // The caller of the poisoned request is never answered: it times out.
  EXPECT_EQ(poisoned.wait_for(0s), std::future_status::timeout);
}

}  // namespace
}  // namespace warren::test
