// SPDX-License-Identifier: Apache-2.0
// warrend behind a broker path that stops reading and writing (TcpProxy
// paused): no wait may last forever. rabbitmq-c's sends have no timeout, so
// each case here hung before the daemon bounded them.
#include "daemon_harness.h"
#include "fifo_gate.h"
#include "private_broker.h"
#include "rpc_client.h"
#include "tcp_proxy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>

namespace warren::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

// Larger than every socket buffer between the consumer and the broker
// (the daemon's send buffer grows to 4 MiB): its publish blocks once the
// proxy stops reading.
constexpr std::size_t kBlockingReply = 12 * 1024 * 1024;

// A daemon whose broker connections go through `proxy`; one gate consumer.
std::string gateBehind(const TcpProxy& proxy, const Gate& gate, const std::string& queue,
                       const std::string& extra_broker = "") {
  return daemonYaml(proxy.port(),
                    "  - name: " + queue +
                        "\n    handler: gate\n    consumers: 1\n    max_body_bytes: 16777216\n" +
                        gate.options(),
                    extra_broker, WARREN_FIXTURE_PLUGIN_DIR) +
         "shutdown:\n  drain_timeout: 2s\n";
}

// Sends a request the gate echoes (kBlockingReply bytes), waits until the
// handler holds it, stops the proxy, and lets the handler reply into it.
void blockAReply(TcpProxy& proxy, Gate& gate, TestClient& client, const std::string& queue) {
  client.send(queue, std::string(kBlockingReply, 'r'), "blocked-reply");
  ASSERT_TRUE(gate.waitEntered(30s)) << "the request never reached the handler";
  proxy.pause();
  gate.open();
}

// Runs `step` on another thread; false when it did not finish by `limit`
// (the proxy is then cut, which frees whatever waits on it).
template <class Step>
bool finishesWithin(TcpProxy& proxy, std::chrono::milliseconds limit, Step step) {
  auto done = std::async(std::launch::async, step);
  if (done.wait_for(limit) == std::future_status::ready) return true;
  proxy.cut();
  proxy.resume();
  done.wait();
  return false;
}

TEST(StuckPeer, ShutdownEndsAtTheDrainDeadlineWhileAReplyIsBlocked) {
  TcpProxy proxy(broker().port());
  Gate gate;
  auto daemon = std::make_unique<RunningDaemon>(gateBehind(proxy, gate, "stuck_stop"));
  TestClient client(broker().port());
  blockAReply(proxy, gate, client, "stuck_stop");
  const auto started = Clock::now();
  // drain_timeout 2s; the rest is margin for a loaded machine.
  EXPECT_TRUE(finishesWithin(proxy, 15s, [&] { daemon->stop(); }))
      << "stop waited on a publish the broker does not read";
  EXPECT_LT(Clock::now() - started, 10s);
  daemon.reset();
  proxy.resume();
  // Never acked: the broker gives the request to the next consumer.
  RunningDaemon next(daemonYaml(broker().port(),
                                "  - name: stuck_stop\n    handler: gate\n    consumers: 1\n"
                                "    max_body_bytes: 16777216\n" +
                                    gate.options(),
                                "", WARREN_FIXTURE_PLUGIN_DIR));
  gate.open();
  const auto reply = client.receive(30s);
  ASSERT_TRUE(reply) << "the request was lost";
  EXPECT_EQ(reply->body.size(), kBlockingReply);
}

TEST(StuckPeer, AReloadRetiresAQueueOnTimeWhileItsReplyIsBlocked) {
  TcpProxy proxy(broker().port());
  Gate gate;
  const std::string yaml = gateBehind(proxy, gate, "stuck_reload");
  RunningDaemon daemon(yaml);
  TestClient client(broker().port());
  blockAReply(proxy, gate, client, "stuck_reload");
  // The same daemon, its queue renamed: stuck_reload retires.
  std::string renamed = yaml;
  renamed.replace(renamed.find("stuck_reload"), 12, "stuck_other1");
  const auto started = Clock::now();
  daemon.supervisor().reload(parseConfig(renamed, "test.yaml"));
  EXPECT_TRUE(finishesWithin(proxy, 15s, [&] {
    // The main loop's tick, as warrend runs it (its reap() is what waited).
    while (daemon.supervisor().reap() > 0) {
      if (!daemon.log().waitFor("[stuck_reload] [info] stopped", 100ms)) continue;
    }
  })) << "the retired queue waited on a publish the broker does not read";
  EXPECT_LT(Clock::now() - started, 10s);
  proxy.resume();
  daemon.stop();
}

TEST(StuckPeer, AConsumerBehindAPausedPeerIsDeclaredDeadAndComesBack) {
  TcpProxy proxy(broker().port());
  RunningDaemon daemon(daemonYaml(proxy.port(),
                                  "  - name: stuck_idle\n    handler: sum\n    consumers: 1\n",
                                  "  heartbeat: 1s\n"));
  TestClient client(broker().port());
  EXPECT_EQ(client.call("stuck_idle", "1,2").body, "3");
  proxy.pause();
  const auto paused = Clock::now();
  ASSERT_TRUE(daemon.log().waitFor("no heartbeat from the broker", 20s));
  // Two heartbeats of silence, judged at the next heartbeat/4 tick.
  EXPECT_LE(Clock::now() - paused, 3s) << "2 x heartbeat + 1 s";
  proxy.resume();
  ASSERT_TRUE(daemon.log().waitFor("consuming again after", 30s));
  EXPECT_EQ(client.call("stuck_idle", "2,2").body, "4");
  daemon.stop();
}

// The consumer is inside basic.publish, which rabbitmq-c never times out:
// the queue's keeper cuts the connection once the broker has taken no byte
// for twice the heartbeat. The consumer reconnects and answers the
// redelivered request once the path is back.
TEST(StuckPeer, APublishTheBrokerStopsReadingLosesTheConnectionAndIsAnsweredAgain) {
  TcpProxy proxy(broker().port());
  Gate gate;
  RunningDaemon daemon(gateBehind(proxy, gate, "stuck_publish", "  heartbeat: 1s\n"));
  TestClient client(broker().port());
  blockAReply(proxy, gate, client, "stuck_publish");
  const auto paused = Clock::now();
  ASSERT_TRUE(daemon.log().waitFor("basic.publish", 20s)) << "the blocked publish never failed";
  EXPECT_LE(Clock::now() - paused, 5s) << "2 x heartbeat, plus a keeper tick, plus margin";
  proxy.resume();
  gate.open();  // for the redelivery
  const auto reply = client.receive(30s);
  ASSERT_TRUE(reply) << "the request was lost";
  EXPECT_EQ(reply->body.size(), kBlockingReply);
  EXPECT_EQ(daemon.counters("stuck_publish").sessions_lost, 1u);
  daemon.stop();
}

}  // namespace
}  // namespace warren::test
