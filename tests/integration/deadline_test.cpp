// SPDX-License-Identifier: Apache-2.0
// Deadlines (docs/protocol.md#deadlines): a request whose caller has given up
// is answered deadline_exceeded, and its handler is not run. The gate fixture
// counts its handle() calls ("calls"), so each test asks the handler itself
// whether it ran.
#include "daemon_harness.h"
#include "fifo_gate.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <warren/client.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace warren::test {
namespace {

using namespace std::chrono_literals;
using SystemClock = std::chrono::system_clock;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

std::int64_t epochMs(SystemClock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

// One consumer serving the gate fixture on `queue`.
std::string gateDaemon(const std::string& queue, const Gate& gate, const std::string& extra = "") {
  return daemonYaml(
      broker().port(),
      "  - name: " + queue + "\n    handler: gate\n    consumers: 1\n" + extra + gate.options(), "",
      WARREN_FIXTURE_PLUGIN_DIR);
}

// The handler's count of its calls so far (this request not included).
int handlerCalls(TestClient& client, const std::string& queue) {
  return std::stoi(client.call(queue, "calls").body);
}

TestReply receiveOne(TestClient& client) {
  auto reply = client.receive(20s);
  if (!reply) throw std::runtime_error("no reply within 20 s");
  return *reply;
}

TEST(Deadlines, ARequestPastItsDeadlineIsAnsweredWithoutRunningTheHandler) {
  Gate gate;
  RunningDaemon daemon(gateDaemon("deadline_past", gate));
  TestClient client(broker().port());
  ASSERT_EQ(handlerCalls(client, "deadline_past"), 0);

  client.send("deadline_past", "echo:late", "late-1",
              {{"x-warren-deadline", epochMs(SystemClock::now() - 1s)}});
  const TestReply reply = receiveOne(client);
  EXPECT_EQ(reply.correlation_id, "late-1");
  EXPECT_EQ(reply.errorCode(), "deadline_exceeded") << reply.body;
  EXPECT_NE(reply.errorMessage().find("before the request was delivered"), std::string::npos)
      << reply.errorMessage();

  EXPECT_EQ(handlerCalls(client, "deadline_past"), 1);  // the first "calls" only
  EXPECT_EQ(daemon.counters("deadline_past").deadline_queued, 1u);
  EXPECT_EQ(daemon.counters("deadline_past").deadline_handling, 0u);
  EXPECT_TRUE(
      daemon.log().waitFor("after its deadline: deadline_exceeded reply, handler not run", 10s));
}

TEST(Deadlines, ARequestThatExpiresQueuedBehindAHeldHandlerIsNotRun) {
  Gate gate;
  RunningDaemon daemon(gateDaemon("deadline_queued", gate));
  TestClient client(broker().port());
  client.send("deadline_queued", "held", "held-1");
  ASSERT_TRUE(gate.waitEntered(10s));

  // Queued behind the held request (one consumer, prefetch 1) until after
  // its deadline: waiting for that deadline is the event itself.
  const auto deadline = SystemClock::now() + 300ms;
  client.send("deadline_queued", "echo:queued", "queued-1",
              {{"x-warren-deadline", epochMs(deadline)}});
  std::this_thread::sleep_until(deadline + 50ms);
  gate.open();

  const TestReply held = receiveOne(client);
  EXPECT_EQ(held.correlation_id, "held-1");
  EXPECT_EQ(held.body, "held");
  const TestReply queued = receiveOne(client);
  EXPECT_EQ(queued.correlation_id, "queued-1");
  EXPECT_EQ(queued.errorCode(), "deadline_exceeded") << queued.body;
  EXPECT_EQ(handlerCalls(client, "deadline_queued"), 1);  // "held" only
  EXPECT_EQ(daemon.counters("deadline_queued").deadline_queued, 1u);
}

TEST(Deadlines, AReplyReadyAfterTheDeadlineIsReplaced) {
  Gate gate;
  RunningDaemon daemon(gateDaemon("deadline_handling", gate));
  TestClient client(broker().port());
  const auto deadline = SystemClock::now() + 300ms;
  client.send("deadline_handling", "held", "slow-1", {{"x-warren-deadline", epochMs(deadline)}});
  ASSERT_TRUE(gate.waitEntered(10s));
  std::this_thread::sleep_until(deadline + 50ms);
  gate.open();

  const TestReply reply = receiveOne(client);
  EXPECT_EQ(reply.correlation_id, "slow-1");
  EXPECT_EQ(reply.errorCode(), "deadline_exceeded") << reply.body;
  EXPECT_NE(reply.errorMessage().find("after the deadline"), std::string::npos)
      << reply.errorMessage();
  EXPECT_EQ(daemon.counters("deadline_handling").deadline_handling, 1u);
  EXPECT_EQ(daemon.counters("deadline_handling").deadline_queued, 0u);
}

TEST(Deadlines, HandlerTimeoutBoundsARequestWithoutADeadline) {
  Gate gate;
  RunningDaemon daemon(gateDaemon("deadline_timeout", gate, "    handler_timeout: 200ms\n"));
  TestClient client(broker().port());
  const auto sent = SystemClock::now();
  client.send("deadline_timeout", "held", "untimed-1");
  ASSERT_TRUE(gate.waitEntered(10s));
  std::this_thread::sleep_until(sent + 250ms);
  gate.open();
  const TestReply reply = receiveOne(client);
  EXPECT_EQ(reply.errorCode(), "deadline_exceeded") << reply.body;
  EXPECT_NE(reply.errorMessage().find("handler_timeout 200 ms"), std::string::npos)
      << reply.errorMessage();
}

TEST(Deadlines, EveryConsumerHeldPastHandlerTimeoutMakesTheQueueNotReady) {
  Gate gate;
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: held_all\n    handler: gate\n    consumers: 2\n"
                                  "    handler_timeout: 300ms\n" +
                                      gate.options(),
                                  "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  ASSERT_TRUE(daemon.supervisor().readiness().ready);

  // One consumer of two held: logged with its request, still ready.
  client.send("held_all", "held", "held-a");
  ASSERT_TRUE(gate.waitEntered(10s));
  ASSERT_TRUE(daemon.log().waitFor("(correlation_id 'held-a'), past handler_timeout (300 ms)", 10s))
      << daemon.log().text();
  EXPECT_TRUE(daemon.supervisor().readiness().ready);
  EXPECT_EQ(daemon.counters("held_all").handlers_held, 1);

  // Both held: the queue serves nothing, and says so.
  client.send("held_all", "held", "held-b");
  ASSERT_TRUE(gate.waitEntered(10s));
  ASSERT_TRUE(daemon.log().waitFor("every consumer (2) is held", 10s)) << daemon.log().text();
  const Readiness stuck = daemon.supervisor().readiness();
  EXPECT_FALSE(stuck.ready);
  EXPECT_NE(stuck.detail.find("queue 'held_all': all 2 consumers held by handlers running past "
                              "handler_timeout (300 ms)"),
            std::string::npos)
      << stuck.detail;
  EXPECT_EQ(daemon.counters("held_all").handlers_held, 2);

  // Let go: answered (late), and ready again at once.
  gate.open();
  gate.open();
  EXPECT_EQ(receiveOne(client).errorCode(), "deadline_exceeded");
  EXPECT_EQ(receiveOne(client).errorCode(), "deadline_exceeded");
  EXPECT_TRUE(daemon.supervisor().readiness().ready);
  EXPECT_EQ(daemon.counters("held_all").handlers_held, 0);
  EXPECT_TRUE(daemon.log().waitFor("returned after", 10s));
}

TEST(Deadlines, AMalformedDeadlineIsAnInvalidArgumentAndNotRun) {
  Gate gate;
  RunningDaemon daemon(gateDaemon("deadline_malformed", gate));
  TestClient client(broker().port());
  client.send("deadline_malformed", "echo:x", "bad-1",
              {{"x-warren-deadline", std::string("soon")}});
  const TestReply reply = receiveOne(client);
  EXPECT_EQ(reply.errorCode(), "invalid_argument") << reply.body;
  EXPECT_NE(reply.errorMessage().find("x-warren-deadline"), std::string::npos);
  EXPECT_EQ(handlerCalls(client, "deadline_malformed"), 0);
}

// ABI 1.1: the handler sees the correlation_id, the deadline and the
// delivery count; the client library stamps the deadline header.
TEST(Deadlines, TheHandlerSeesTheRequestsDeadlineAndCorrelationId) {
  Gate gate;
  RunningDaemon daemon(gateDaemon("deadline_info", gate, "    handler_timeout: 7s\n"));
  TestClient client(broker().port());

  const std::int64_t stamped = epochMs(SystemClock::now() + 5s);
  client.send("deadline_info", "info", "info-1", {{"x-warren-deadline", stamped}});
  EXPECT_EQ(receiveOne(client).body,
            "correlation_id=info-1;deadline_ms=" + std::to_string(stamped) + ";delivery_count=0");

  // No header: arrival plus handler_timeout.
  const std::int64_t before = epochMs(SystemClock::now());
  const std::string untimed = client.call("deadline_info", "info").body;
  const std::int64_t after = epochMs(SystemClock::now());
  const auto at = untimed.find("deadline_ms=");
  ASSERT_NE(at, std::string::npos) << untimed;
  const std::int64_t deadline = std::stoll(untimed.substr(at + 12));
  EXPECT_GE(deadline, before + 7000) << untimed;
  EXPECT_LE(deadline, after + 7000) << untimed;

  // warren's client: its call's timeout becomes the header.
  ClientOptions options;
  options.broker_url = broker().url();
  Client warren_client(options);
  CallOptions within;
  within.timeout = 9s;
  const std::int64_t call_start = epochMs(SystemClock::now());
  const std::string seen = warren_client.call("deadline_info", "info", within).body;
  const std::int64_t call_end = epochMs(SystemClock::now());
  const auto client_at = seen.find("deadline_ms=");
  ASSERT_NE(client_at, std::string::npos) << seen;
  const std::int64_t client_deadline = std::stoll(seen.substr(client_at + 12));
  EXPECT_GE(client_deadline, call_start + 9000 - 1) << seen;
  EXPECT_LE(client_deadline, call_end + 9000 + 1) << seen;
}

// A plugin built against the ABI 1.0 headers knows nothing of the 1.1
// request fields: it loads and serves all the same.
TEST(PluginAbi, APluginBuiltForAbi10StillLoadsAndServes) {
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: sum_abi_1_0\n    handler: sum_abi_1_0\n"
                                  "    consumers: 2\n",
                                  "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  EXPECT_EQ(client.call("sum_abi_1_0", "2,3").body, "5");
  EXPECT_EQ(client.call("sum_abi_1_0", "1,x").errorCode(), "invalid_argument");
  client.send("sum_abi_1_0", "4,5", "late-1",
              {{"x-warren-deadline", epochMs(SystemClock::now() - 1s)}});
  EXPECT_EQ(receiveOne(client).errorCode(), "deadline_exceeded");
}

}  // namespace
}  // namespace warren::test
