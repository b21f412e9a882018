// SPDX-License-Identifier: Apache-2.0
// Operating warrend in-process against a real broker: metrics that move with
// the traffic, readiness that follows the broker, and reloads under load that
// lose no request and answer none twice.
#include "daemon_harness.h"
#include "http_scrape.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <warren/client.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

std::string queue(const std::string& name, const std::string& handler, int consumers) {
  return "  - name: " + name + "\n    handler: " + handler +
         "\n    consumers: " + std::to_string(consumers) + "\n";
}

std::string brokerUrl() {
  return "amqp://guest:guest@127.0.0.1:" + std::to_string(broker().port()) + "/%2f";
}

// What the handlers answer: the sum of "a,b", or "vN:" + body.
bool rightAnswer(const std::string& handler_kind, const std::string& body,
                 const std::string& reply) {
  if (handler_kind == "sum") {
    const auto comma = body.find(',');
    return reply ==
           std::to_string(std::stoll(body.substr(0, comma)) + std::stoll(body.substr(comma + 1)));
  }
  return (reply.rfind("v1:", 0) == 0 || reply.rfind("v2:", 0) == 0) && reply.substr(3) == body;
}

// Calls the given queues from one thread each, one call in flight per
// thread, checking every answer, until stopped.
class Load {
 public:
  // `queues`: name -> "sum" or "versioned".
  explicit Load(std::map<std::string, std::string> queues)
      : client_(options()), queues_(std::move(queues)) {
    for (const auto& [name, kind] : queues_) {
      threads_.emplace_back([this, name = name, kind = kind] { drive(name, kind); });
    }
  }
  ~Load() { stop(); }

  static ClientOptions options() {
    ClientOptions options;
    options.broker_url = brokerUrl();
    options.default_timeout = 20s;
    return options;
  }

  void stop() {
    stopping_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // Waits until every queue got `more` answers beyond what it had.
  bool waitForAnswers(int more, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::map<std::string, int> target;
    for (const auto& [name, kind] : queues_) target[name] = answered_[name] + more;
    return answered_changed_.wait_for(lock, timeout, [&] {
      for (const auto& [name, count] : target) {
        if (answered_[name] < count) return false;
      }
      return true;
    });
  }

  int answered(const std::string& queue) {
    std::lock_guard lock(mutex_);
    return answered_[queue];
  }
  std::vector<std::string> failures() {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  std::vector<std::string> replies(const std::string& queue) {
    std::lock_guard lock(mutex_);
    return replies_[queue];
  }
  ClientStats stats() const { return client_.stats(); }

 private:
  void drive(const std::string& name, const std::string& kind) {
    for (int i = 0; !stopping_; ++i) {
      const std::string body = std::to_string(i) + "," + std::to_string(3 * i);
      try {
        const Reply reply = client_.call(name, body);
        std::lock_guard lock(mutex_);
        if (!rightAnswer(kind, body, reply.body)) {
          failures_.push_back(name + ": '" + body + "' answered '" + reply.body + "'");
        }
        ++answered_[name];
        replies_[name].push_back(reply.body.substr(0, 2));
      } catch (const CallError& e) {
        std::lock_guard lock(mutex_);
        failures_.push_back(name + ": '" + body + "' failed: " + e.what());
      }
      answered_changed_.notify_all();
    }
  }

  Client client_;
  std::map<std::string, std::string> queues_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable answered_changed_;
  std::map<std::string, int> answered_;
  std::map<std::string, std::vector<std::string>> replies_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

// A plugin folder of the test's own, so that files can be replaced in it.
class PluginDir {
 public:
  PluginDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "warren-plugins-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~PluginDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  // Installs `source` as `name` the way packages do: copy beside, rename
  // over (a new file, never the loaded one rewritten).
  void install(const std::string& source, const std::string& name) const {
    const auto staged = std::filesystem::path(path_) / ("." + name + ".new");
    std::filesystem::copy_file(source, staged, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(staged, std::filesystem::path(path_) / name);
  }

 private:
  std::string path_;
};

void expectSettled(const std::string& queue, int consumers = 0) {
  EXPECT_EQ(broker().queueState(queue), "0 0 " + std::to_string(consumers)) << queue;
}

TEST(Metrics, SeriesStartAtZeroAndMoveWithTheCalls) {
  const int port = freePort();
  RunningDaemon daemon(withMetrics(daemonYaml(broker().port(), queue("m_sum", "sum", 2)), port));
  const std::map<std::string, std::string> series{{"queue", "m_sum"}, {"handler", "sum"}};
  {
    const Scrape scrape = Scrape::of(port);
    EXPECT_EQ(scrape.value("warren_requests_received_total", series), 0);
    for (const char* outcome : {"ok", "invalid_argument", "out_of_range", "too_large", "internal",
                                "unavailable", "no_reply_to"}) {
      auto labels = series;
      labels["outcome"] = outcome;
      EXPECT_EQ(scrape.value("warren_requests_finished_total", labels), 0) << outcome;
    }
    EXPECT_EQ(scrape.value("warren_consumers_connected", {{"queue", "m_sum"}}), 2);
    EXPECT_EQ(scrape.value("warren_consumers_configured", {{"queue", "m_sum"}}), 2);
    EXPECT_EQ(scrape.value("warren_build_info", {{"version", WARREN_VERSION}}), 1);
    EXPECT_EQ(scrape.value("warren_plugin_info", {{"handler", "sum"}, {"plugin", "sum"}}), 1);
    EXPECT_EQ(scrape.value("warren_handler_duration_seconds_count", series), 0);
  }
  TestClient client(broker().port());
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(client.call("m_sum", "2," + std::to_string(i)).body, std::to_string(2 + i));
  EXPECT_EQ(client.call("m_sum", "two,3").errorCode(), "invalid_argument");

  // Counted after the ack, which follows the reply the client saw: read once
  // the consumers are gone (the endpoint lives as long as the Supervisor).
  daemon.stop();
  auto ok = series;
  ok["outcome"] = "ok";
  auto invalid = series;
  invalid["outcome"] = "invalid_argument";
  const Scrape after = Scrape::of(port);
  EXPECT_EQ(after.value("warren_requests_finished_total", ok), 5);
  EXPECT_EQ(after.value("warren_requests_finished_total", invalid), 1);
  EXPECT_EQ(after.value("warren_requests_received_total", series), 6);
  EXPECT_EQ(after.value("warren_handler_duration_seconds_count", series), 6);
  EXPECT_EQ(after.value("warren_requests_in_progress", series), 0);
  EXPECT_EQ(after.value("warren_consumers_connected", {{"queue", "m_sum"}}), 0);
  // Its 2 consumers share one connection.
  EXPECT_EQ(after.value("warren_broker_connection_attempts_total", {{"queue", "m_sum"}}), 1);
  expectSettled("m_sum");
}

struct BrokerBackOnExit {
  ~BrokerBackOnExit() {
    if (!broker().running()) broker().start();
  }
};

TEST(Readiness, IsTrueOnlyWhileEveryConsumerConsumes) {
  const BrokerBackOnExit guard;
  const int port = freePort();
  RunningDaemon daemon(
      withMetrics(daemonYaml(broker().port(), queue("ready_sum", "sum", 3)), port));
  EXPECT_EQ(httpGet(port, "/ready").status, 200);
  broker().stop();
  // Logged by the queue once a consumer has counted itself out.
  ASSERT_TRUE(daemon.log().waitFor("connection lost", 20s));
  const HttpResponse response = httpGet(port, "/ready");
  EXPECT_EQ(response.status, 503);
  EXPECT_NE(response.body.find("queue 'ready_sum'"), std::string::npos) << response.body;
  broker().start();
  ASSERT_TRUE(daemon.supervisor().waitConsuming(std::chrono::steady_clock::now() + 30s));
  EXPECT_EQ(httpGet(port, "/ready").status, 200);
  daemon.stop();
}

TEST(Reload, AddsRemovesResizesAndSwapsAPluginUnderLoadWithEveryAnswerChecked) {
  PluginDir plugins;
  plugins.install(std::string(WARREN_PLUGIN_DIR) + "/sum.so", "sum.so");
  plugins.install(std::string(WARREN_FIXTURE_PLUGIN_DIR) + "/versioned_v1.so", "versioned.so");
  const std::string before = queue("r_keep", "sum", 2) + queue("r_resize", "sum", 2) +
                             queue("r_remove", "sum", 1) + queue("r_swap", "versioned", 2);
  const std::string after = queue("r_keep", "sum", 2) + queue("r_resize", "sum", 4) +
                            queue("r_swap", "versioned", 2) + queue("r_added", "sum", 2);
  const int port = freePort();
  RunningDaemon daemon(withMetrics(daemonYaml(broker().port(), before, "", plugins.path()), port));
  QueueService* const kept = &daemon.supervisor().queue("r_keep");
  TestClient client(broker().port());
  EXPECT_EQ(client.call("r_remove", "1,1").body, "2");

  Load load({{"r_keep", "sum"}, {"r_resize", "sum"}, {"r_swap", "versioned"}});
  ASSERT_TRUE(load.waitForAnswers(50, 30s));
  plugins.install(std::string(WARREN_FIXTURE_PLUGIN_DIR) + "/versioned_v2.so", "versioned.so");
  const ReloadSummary summary = daemon.supervisor().reload(
      parseConfig(withMetrics(daemonYaml(broker().port(), after, "", plugins.path()), port),
                  std::filesystem::path(plugins.path()) / "warren.yaml"));
  EXPECT_EQ(summary.added, 1);
  EXPECT_EQ(summary.removed, 1);
  EXPECT_EQ(summary.replaced, 2);
  EXPECT_EQ(summary.unchanged, 1);
  ASSERT_TRUE(load.waitForAnswers(50, 30s));
  load.stop();

  EXPECT_TRUE(load.failures().empty()) << load.failures().front();
  EXPECT_EQ(load.stats().late_replies, 0u) << "a request was answered twice";
  EXPECT_EQ(load.stats().timeouts, 0u);
  // The same QueueService, never stopped: its counters ran on.
  EXPECT_EQ(&daemon.supervisor().queue("r_keep"), kept);
  // The swapped plugin answered from its first build, then from its second.
  const auto swapped = load.replies("r_swap");
  ASSERT_FALSE(swapped.empty());
  EXPECT_EQ(swapped.front(), "v1");
  EXPECT_EQ(swapped.back(), "v2");
  ASSERT_TRUE(
      daemon.supervisor().queue("r_resize").waitConsuming(std::chrono::steady_clock::now() + 30s));
  EXPECT_EQ(Scrape::of(port).value("warren_consumers_connected", {{"queue", "r_resize"}}), 4);
  // Started by the reload; it declares its queue once connected.
  ASSERT_TRUE(
      daemon.supervisor().queue("r_added").waitConsuming(std::chrono::steady_clock::now() + 30s));
  EXPECT_EQ(client.call("r_added", "20,22").body, "42");
  // The removed queue is no longer consumed: a request waits for a server.
  client.send("r_remove", "2,2", "after-removal");
  daemon.stop();
  for (const char* name : {"r_keep", "r_resize", "r_swap", "r_added"}) expectSettled(name);
  EXPECT_EQ(broker().queueState("r_remove"), "1 0 0");
  for (const char* name : {"r_keep", "r_resize", "r_swap", "r_added", "r_remove"}) {
    client.deleteQueue(name);
  }
}

TEST(Reload, RejectsABrokenConfigurationAndKeepsServing) {
  RunningDaemon daemon(daemonYaml(broker().port(), queue("r_stays", "sum", 2)));
  QueueService* const serving = &daemon.supervisor().queue("r_stays");
  Load load(std::map<std::string, std::string>{{"r_stays", "sum"}});
  ASSERT_TRUE(load.waitForAnswers(20, 30s));
  // The resized queue is built before the missing plugin is found: all of
  // it must be thrown away, and nothing running touched.
  const std::string broken =
      daemonYaml(broker().port(), queue("r_stays", "sum", 3) + queue("r_new", "no_such_plugin", 1));
  EXPECT_THROW(daemon.supervisor().reload(parseConfig(broken, "/tmp/broken.yaml")), ConfigError);
  ASSERT_TRUE(load.waitForAnswers(20, 30s));
  load.stop();
  EXPECT_TRUE(load.failures().empty()) << load.failures().front();
  EXPECT_EQ(&daemon.supervisor().queue("r_stays"), serving);
  EXPECT_EQ(daemon.supervisor().queue("r_stays").consumersConsuming(), 2);
  EXPECT_THROW(daemon.supervisor().queue("r_new"), std::out_of_range);
  EXPECT_EQ(daemon.log().text().find("draining"), std::string::npos) << "something was stopped";
  daemon.stop();
  expectSettled("r_stays");
}

}  // namespace
}  // namespace warren::test
