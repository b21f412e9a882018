// SPDX-License-Identifier: Apache-2.0
// Deferred replies (plugin ABI 1.1, docs/plugins.md#deferring-a-reply): the
// deferred fixture returns from handle() at once and completes each reply
// from its own thread after a delay, so one consumer with prefetch N holds
// N requests in flight. A reply completed after its deadline is dropped and
// counted; one whose connection was lost is dropped and the broker
// redelivers its request.
#include "daemon_harness.h"
#include "eventually.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

std::int64_t inMs(std::int64_t ms) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() +
         ms;
}

// One consumer serving the deferred fixture on `queue`.
std::string deferredDaemon(const std::string& queue, int prefetch, int delay_ms,
                           const std::string& extra = "") {
  return daemonYaml(
      broker().port(),
      "  - name: " + queue +
          "\n    handler: deferred\n    consumers: 1\n    prefetch: " + std::to_string(prefetch) +
          "\n" + extra + "    options:\n      delay_ms: " + std::to_string(delay_ms) + "\n",
      "", WARREN_FIXTURE_PLUGIN_DIR);
}

TestReply receiveOne(TestClient& client) {
  auto reply = client.receive(20s);
  if (!reply) throw std::runtime_error("no reply within 20 s");
  return *reply;
}

TEST(DeferredReplies, OneConsumerWithPrefetchFiftyHoldsFiftyRequestsInFlight) {
  constexpr int kRequests = 50;
  constexpr int kDelayMs = 3000;
  RunningDaemon daemon(deferredDaemon("deferred_fifty", kRequests, kDelayMs));
  TestClient client(broker().port());
  const auto sent = std::chrono::steady_clock::now();
  for (int i = 0; i < kRequests; ++i) {
    client.send("deferred_fifty", "body-" + std::to_string(i), "id-" + std::to_string(i));
  }
  // All of them deferred at once by the one consumer, none answered yet.
  EXPECT_TRUE(eventually(
      [&] { return daemon.counters("deferred_fifty").deferred_in_flight == kRequests; }, 10s))
      << daemon.counters("deferred_fifty").deferred_in_flight;
  std::set<std::string> answered;
  for (int i = 0; i < kRequests; ++i) {
    const TestReply reply = receiveOne(client);
    EXPECT_FALSE(reply.isError()) << reply.body;
    EXPECT_EQ(reply.body, "body-" + reply.correlation_id.substr(3));
    answered.insert(reply.correlation_id);
  }
  const auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(kRequests));
  // About one delay, not fifty (150 s) one after another.
  EXPECT_LT(took, 3 * std::chrono::milliseconds(kDelayMs));
  EXPECT_TRUE(
      eventually([&] { return daemon.counters("deferred_fifty").replied == kRequests; }, 10s));
  const QueueCounts counts = daemon.counters("deferred_fifty");
  EXPECT_EQ(counts.deferred_in_flight, 0);
  EXPECT_EQ(counts.handled, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(broker().queueState("deferred_fifty"), "0 0 1");
}

TEST(DeferredReplies, ACompletionAfterTheDeadlineIsDroppedAndCounted) {
  RunningDaemon daemon(deferredDaemon("deferred_late", 10, 100));
  TestClient client(broker().port());
  client.send("deferred_late", "slow", "late-1",
              {{"x-warren-deadline", inMs(300)}, {"x-delay-ms", std::string("1500")}});
  const TestReply late = receiveOne(client);
  EXPECT_EQ(late.correlation_id, "late-1");
  EXPECT_EQ(late.errorCode(), "deadline_exceeded") << late.body;
  EXPECT_NE(late.errorMessage().find("had not completed it"), std::string::npos)
      << late.errorMessage();
  // The plugin completes it later: dropped, counted, never a second reply.
  EXPECT_TRUE(eventually([&] { return daemon.counters("deferred_late").deferred_late == 1; }, 10s));
  const TestReply next = client.call("deferred_late", "after");
  EXPECT_EQ(next.body, "after");
  EXPECT_FALSE(client.receive(200ms).has_value());
  const QueueCounts counts = daemon.counters("deferred_late");
  EXPECT_EQ(counts.deadline_handling, 1u);
  EXPECT_EQ(counts.deferred_in_flight, 0);
  EXPECT_EQ(counts.deferred_lost, 0u);
  EXPECT_TRUE(daemon.log().waitFor("not completed by its deadline", 10s));
}

TEST(DeferredReplies, HandlerTimeoutBoundsADeferredRequestWithoutADeadline) {
  RunningDaemon daemon(
      deferredDaemon("deferred_timeout", 10, 1500, "    handler_timeout: 300ms\n"));
  TestClient client(broker().port());
  const TestReply reply = client.call("deferred_timeout", "untimed");
  EXPECT_EQ(reply.errorCode(), "deadline_exceeded") << reply.body;
  EXPECT_NE(reply.errorMessage().find("handler_timeout 300 ms"), std::string::npos)
      << reply.errorMessage();
}

TEST(DeferredReplies, ARequestAnsweredInlineIsNotDeferred) {
  RunningDaemon daemon(deferredDaemon("deferred_inline", 10, 100));
  TestClient client(broker().port());
  EXPECT_EQ(client.call("deferred_inline", "inline").body, "inline");
  EXPECT_EQ(client.call("deferred_inline", "deferred").body, "deferred");
  // Counted once its publish returned, which may follow the reply's arrival.
  EXPECT_TRUE(eventually([&] { return daemon.counters("deferred_inline").replied == 2; }, 10s));
}

// Completed before handle() returned, also when handle() runs on another
// thread than the connection's (two consumers, a handler slow enough to be
// handed off): the completion may reach the connection before the request
// is known to be deferred, and must still answer it.
TEST(DeferredReplies, ACompletionBeforeHandleReturnedAnswersTheRequest) {
  constexpr int kRequests = 20;
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: deferred_now\n    handler: deferred\n"
                                  "    consumers: 2\n    handler_timeout: 20s\n",
                                  "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  for (int i = 0; i < kRequests; ++i) {
    client.send("deferred_now", "now", "now-" + std::to_string(i));
  }
  for (int i = 0; i < kRequests; ++i) {
    auto reply = client.receive(5s);
    ASSERT_TRUE(reply) << i << " of " << kRequests << " answered";
    EXPECT_EQ(reply->body, "now") << reply->errorMessage();
  }
  const QueueCounts counts = daemon.counters("deferred_now");
  EXPECT_EQ(counts.deferred_lost + counts.deferred_late, 0u);
}

TEST(DeferredReplies, AStopWaitsForDeferredReplies) {
  constexpr int kRequests = 5;
  RunningDaemon daemon(deferredDaemon("deferred_drain", 10, 1000));
  TestClient client(broker().port());
  for (int i = 0; i < kRequests; ++i) {
    client.send("deferred_drain", "drain-" + std::to_string(i), "drain-" + std::to_string(i));
  }
  ASSERT_TRUE(eventually(
      [&] { return daemon.counters("deferred_drain").deferred_in_flight == kRequests; }, 10s));
  EXPECT_TRUE(daemon.stop());
  for (int i = 0; i < kRequests; ++i) {
    const TestReply reply = receiveOne(client);
    EXPECT_EQ(reply.body, reply.correlation_id);
  }
  EXPECT_EQ(broker().queueState("deferred_drain"), "0 0 0");
}

// The broker's process id of warrend's connection for `queue`.
std::string warrendConnection(const std::string& queue) {
  std::istringstream lines(broker().ctl("list_connections pid client_properties"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("warrend " + queue) == std::string::npos) continue;
    return line.substr(0, line.find('\t'));
  }
  return "";
}

TEST(DeferredReplies, ALostConnectionDropsDeferredRepliesAndTheRequestsAreAnsweredAgain) {
  constexpr int kRequests = 3;
  // Long enough for rabbitmqctl (a second or two) to close the connection
  // before the plugin completes.
  RunningDaemon daemon(deferredDaemon("deferred_lost", 10, 6000));
  TestClient client(broker().port());
  for (int i = 0; i < kRequests; ++i) {
    client.send("deferred_lost", "lost-" + std::to_string(i), "lost-" + std::to_string(i));
  }
  ASSERT_TRUE(eventually(
      [&] { return daemon.counters("deferred_lost").deferred_in_flight == kRequests; }, 10s));
  const std::string connection = warrendConnection("deferred_lost");
  ASSERT_FALSE(connection.empty()) << broker().ctl("list_connections pid client_properties");
  broker().ctl("close_connection \"" + connection + "\" \"deferred test\"");

  // Redelivered to the new connection, deferred again, answered once each.
  std::map<std::string, int> replies;
  for (int i = 0; i < kRequests; ++i) {
    const TestReply reply = receiveOne(client);
    EXPECT_EQ(reply.body, reply.correlation_id);
    ++replies[reply.correlation_id];
  }
  EXPECT_EQ(replies.size(), static_cast<std::size_t>(kRequests));
  EXPECT_FALSE(client.receive(500ms).has_value());
  EXPECT_TRUE(eventually(
      [&] {
        const QueueCounts now = daemon.counters("deferred_lost");
        return now.deferred_lost == kRequests && now.replied == kRequests;
      },
      10s));
  const QueueCounts counts = daemon.counters("deferred_lost");
  EXPECT_EQ(counts.lost, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(counts.replied, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(counts.deferred_in_flight, 0);
}

TEST(DeferredReplies, ADeferringPluginServesInAnIsolatedWorker) {
  RunningDaemon daemon(deferredDaemon("deferred_isolated", 1, 100, "    isolation: process\n"));
  TestClient client(broker().port());
  EXPECT_EQ(client.call("deferred_isolated", "one").body, "one");
  EXPECT_EQ(client.call("deferred_isolated", "two").body, "two");
  client.send("deferred_isolated", "slow", "slow-1",
              {{"x-warren-deadline", inMs(300)}, {"x-delay-ms", std::string("1500")}});
  const TestReply late = receiveOne(client);
  EXPECT_EQ(late.errorCode(), "deadline_exceeded") << late.body;
}

}  // namespace
}  // namespace warren::test
