// SPDX-License-Identifier: Apache-2.0
// The broker goes away under a serving daemon, politely and not.
#include "daemon_harness.h"
#include "fifo_gate.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

namespace warren::test {
namespace {

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

std::string restartQueue(const std::string& name) {
  return "  - name: " + name + "\n    handler: sum\n    consumers: 5\n";
}

// Sends `count` sums and checks every answer.
void expectAllAnswered(const std::string& queue, int count) {
  TestClient client(broker().port());
  for (int i = 0; i < count; ++i) {
    client.send(queue, std::to_string(i) + "," + std::to_string(1000 * i),
                "after-" + std::to_string(i));
  }
  for (int answered = 0; answered < count; ++answered) {
    auto reply = client.receive(std::chrono::seconds(30));
    ASSERT_TRUE(reply) << "only " << answered << " of " << count << " answered";
    const int i = std::stoi(reply->correlation_id.substr(6));
    EXPECT_EQ(reply->body, std::to_string(1001 * i));
  }
}

// Puts requests in flight, then takes the broker away with `outage`.
// Whatever a test does, the next one finds the broker running.
struct BrokerBackOnExit {
  ~BrokerBackOnExit() {
    if (!broker().running()) broker().start();
  }
};

template <class Outage>
void restartMidTraffic(const std::string& queue, Outage outage, const std::string& loss_log) {
  const BrokerBackOnExit guard;
  RunningDaemon daemon(daemonYaml(broker().port(), restartQueue(queue)));
  {
    auto client = std::make_unique<TestClient>(broker().port());
    for (int i = 0; i < 300; ++i)
      client->send(queue, "1," + std::to_string(i), "before-" + std::to_string(i));
    ASSERT_TRUE(client->receive(std::chrono::seconds(10))) << "traffic never started";
    outage();
  }
  ASSERT_TRUE(daemon.log().waitFor(loss_log, std::chrono::seconds(20)));
  broker().start();
  ASSERT_TRUE(daemon.log().waitFor("consuming again after", std::chrono::seconds(30)));
  // The 5 consumers share the queue's one connection, which was lost once.
  EXPECT_EQ(daemon.counters(queue).sessions_lost, 1u);
  expectAllAnswered(queue, 300);
  daemon.stop();
  const std::string state = broker().queueState(queue);
  EXPECT_EQ(state.substr(0, 3), "0 0") << state;
}

TEST(Faults, KeepsServingAcrossABrokerStopAndStart) {
  restartMidTraffic(
      "sum_broker_stop", [] { broker().stop(); }, "connection lost");
}

TEST(Faults, KeepsServingAfterTheBrokerIsKilled) {
  restartMidTraffic(
      "sum_broker_kill", [] { broker().kill(); }, "connection lost");
}

// An outage longer than the first backoff steps: with the default backoff the
// consumers must not still be sleeping long after the broker is back. The
// daemon uses the shipped reconnect defaults, not the harness's short ones.
// The broker stays down through 8 backoff delays of a consumer (5-9 s with
// the default 2 s cap; with a 30 s cap the next delay would be 13-26 s).
TEST(Faults, ConsumesAgainWithinFiveSecondsOfTheBrokersReturnAfterALongOutage) {
  const BrokerBackOnExit guard;
  std::string yaml = daemonYaml(broker().port(), restartQueue("sum_back_soon"));
  const std::string harness_backoff = "  reconnect:\n    initial_delay: 50ms\n    max_delay: 1s\n";
  ASSERT_NE(yaml.find(harness_backoff), std::string::npos);
  yaml.erase(yaml.find(harness_backoff), harness_backoff.size());
  RunningDaemon daemon(yaml);
  broker().stop();
  ASSERT_TRUE(daemon.log().waitFor("connection lost", std::chrono::seconds(20)));
  ASSERT_TRUE(daemon.log().waitFor("(attempt 9); the", std::chrono::seconds(60)))
      << "no consumer failed its 9th attempt";
  broker().start();  // returns once the node accepts AMQP connections
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(daemon.log().waitFor("consuming again after", std::chrono::seconds(60)));
  EXPECT_LE(std::chrono::steady_clock::now() - back, std::chrono::seconds(5))
      << "the consumers slept through the broker's return";
  expectAllAnswered("sum_back_soon", 10);
  daemon.stop();
}

// A memory alarm blocks publishing; the broker says so on the connection
// (capability connection.blocked) once warrend publishes.
TEST(Faults, ReportsABlockedConnectionAndRepliesOnceUnblocked) {
  struct AlarmOffOnExit {
    ~AlarmOffOnExit() { broker().ctl("set_vm_memory_high_watermark 0.4"); }
  } alarm_off;
  Gate gate;
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: slow_blocked\n    handler: gate\n"
                                  "    consumers: 1\n" +
                                      gate.options(),
                                  "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  client.send("slow_blocked", "held", "blocked-1");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10)));
  broker().ctl("set_vm_memory_high_watermark 0");
  gate.open();
  ASSERT_TRUE(daemon.log().waitFor("the broker blocks publishing", std::chrono::seconds(30)));
  EXPECT_EQ(daemon.counters("slow_blocked").blocked, 1u);
  broker().ctl("set_vm_memory_high_watermark 0.4");
  auto reply = client.receive(std::chrono::seconds(30));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "held");
  EXPECT_TRUE(daemon.log().waitFor("unblocked publishing", std::chrono::seconds(10)));
  EXPECT_EQ(daemon.counters("slow_blocked").sessions_lost, 0u);
  daemon.stop();
  const std::string state = broker().queueState("slow_blocked");
  EXPECT_EQ(state.substr(0, 3), "0 0") << state;
}

}  // namespace
}  // namespace warren::test
