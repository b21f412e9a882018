// SPDX-License-Identifier: Apache-2.0
// warrend's engine, in-process, against a real RabbitMQ started for this
// executable. Every test uses its own queue names and ends by checking the
// broker holds no unacked or stranded message for them.
#include "daemon_harness.h"
#include "fifo_gate.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace warren::test {
namespace {

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

std::string sumQueue(const std::string& name, int consumers = 5, const std::string& extra = "") {
  return "  - name: " + name + "\n    handler: sum\n    consumers: " + std::to_string(consumers) +
         "\n" + extra;
}

// After a test: nothing ready, nothing unacked for `queue`.
void expectQueueSettled(const std::string& queue) {
  const std::string state = broker().queueState(queue);
  ASSERT_FALSE(state.empty()) << "queue " << queue << " does not exist";
  EXPECT_EQ(state.substr(0, 3), "0 0") << "ready/unacked/consumers of " << queue << ": " << state;
}

TEST(Daemon, AnswersAThousandRandomCallsAcrossFiveConsumers) {
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue("sum_1000")));
  TestClient client(broker().port());
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::int64_t> operand(-1'000'000'000'000, 1'000'000'000'000);
  std::map<std::string, std::int64_t> expected;
  for (int i = 0; i < 1000; ++i) {
    const std::int64_t a = operand(random), b = operand(random);
    // Built by appending: GCC 12 at -O3 (Release) gives a false -Wrestrict
    // inside libstdc++ for "r" + std::to_string(i) (GCC bug 105651).
    std::string id = "r";
    id += std::to_string(i);
    expected[id] = a + b;
    client.send("sum_1000", std::to_string(a) + "," + std::to_string(b), id);
  }
  std::size_t answered = 0;
  while (answered < expected.size()) {
    auto reply = client.receive(std::chrono::seconds(30));
    ASSERT_TRUE(reply) << "only " << answered << " of 1000 answered";
    ASSERT_EQ(expected.count(reply->correlation_id), 1u) << reply->correlation_id;
    EXPECT_FALSE(reply->isError()) << reply->body;
    EXPECT_EQ(reply->body, std::to_string(expected[reply->correlation_id]));
    EXPECT_EQ(reply->content_type, "text/plain");
    expected[reply->correlation_id] = 0;
    ++answered;
  }
  EXPECT_EQ(broker().queueState("sum_1000"), "0 0 5");
  daemon.stop();
  // Counted after the ack: read once the consumers are gone.
  EXPECT_EQ(daemon.counters("sum_1000").replied, 1000u);
  expectQueueSettled("sum_1000");
}

TEST(Daemon, AnswersMalformedBodiesWithErrorsWhileServingValidOnes) {
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue("sum_bad")));
  TestClient client(broker().port());
  const std::map<std::string, std::string> bodies = {
      {"ok1", "1,2"},       {"empty", ""},
      {"one", "5"},         {"three", "1,2,3"},
      {"word", "x,1"},      {"ok2", "-7, 3"},
      {"float", "1.5,2"},   {"huge", "99999999999999999999,1"},
      {"ok3", " 40 , +2 "}, {"overflow", "9223372036854775807,1"}};
  for (const auto& [id, body] : bodies) client.send("sum_bad", body, id);
  std::map<std::string, TestReply> replies;
  while (replies.size() < bodies.size()) {
    auto reply = client.receive(std::chrono::seconds(20));
    ASSERT_TRUE(reply);
    replies[reply->correlation_id] = *reply;
  }
  EXPECT_EQ(replies["ok1"].body, "3");
  EXPECT_EQ(replies["ok2"].body, "-4");
  EXPECT_EQ(replies["ok3"].body, "42");
  for (const char* id : {"empty", "one", "three", "word", "float"}) {
    EXPECT_EQ(replies[id].errorCode(), "invalid_argument") << id;
    EXPECT_FALSE(replies[id].errorMessage().empty()) << id;
    EXPECT_EQ(replies[id].body, "error: invalid_argument: " + replies[id].errorMessage()) << id;
  }
  EXPECT_NE(replies["empty"].errorMessage().find("empty body"), std::string::npos);
  EXPECT_NE(replies["word"].errorMessage().find("'x'"), std::string::npos);
  EXPECT_EQ(replies["huge"].errorCode(), "out_of_range");
  EXPECT_EQ(replies["overflow"].errorCode(), "out_of_range");
  daemon.stop();
  EXPECT_EQ(daemon.counters("sum_bad").replied_error, 7u);
  expectQueueSettled("sum_bad");
}

// The consumers of a queue share one connection, and a handler runs on the
// thread that read its request: one that runs long must hand the connection
// to another thread, so that the other consumers go on answering, up to
// `consumers` handlers at once; and a stop drains what they still hold.
TEST(Daemon, AHeldHandlerLeavesTheQueuesOtherConsumersServingAndDrains) {
  Gate gate;
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: held_others\n    handler: gate\n"
                                  "    consumers: 3\n" +
                                      gate.options(),
                                  "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  TestClient held_client(broker().port());
  held_client.send("held_others", "held-1", "held-1");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10)));
  EXPECT_EQ(client.call("held_others", "echo:a").body, "echo:a");
  held_client.send("held_others", "held-2", "held-2");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10))) << "a second handler never ran";
  EXPECT_EQ(client.call("held_others", "echo:b").body, "echo:b");

  // Stopping: both held handlers still answer within the drain timeout.
  bool clean = false;
  std::thread stopper([&daemon, &clean] { clean = daemon.stop(); });
  EXPECT_TRUE(
      daemon.log().waitFor("draining: no new requests, 2 in progress", std::chrono::seconds(10)));
  gate.open();
  gate.open();
  std::set<std::string> answered;
  for (int i = 0; i < 2; ++i) {
    auto reply = held_client.receive(std::chrono::seconds(10));
    ASSERT_TRUE(reply) << "a held request was not answered";
    EXPECT_EQ(reply->body, reply->correlation_id);
    answered.insert(reply->correlation_id);
  }
  stopper.join();
  EXPECT_TRUE(clean) << "the drain did not end cleanly";
  EXPECT_EQ(answered, (std::set<std::string>{"held-1", "held-2"}));
  EXPECT_EQ(daemon.counters("held_others").handled, 4u);
  expectQueueSettled("held_others");
}

// A handler that takes a few milliseconds (below the hand-off time) is not
// run inline once it has been seen to be slow: the queue's consumers run it
// in parallel, as many at once as there are consumers and never more.
TEST(Daemon, SlowHandlersRunOnAllTheQueuesConsumersAtOnce) {
  Gate gate;
  constexpr int kConsumers = 4;
  constexpr int kCalls = 40;
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: slow_parallel\n    handler: gate\n"
                                  "    consumers: " +
                                      std::to_string(kConsumers) + "\n" + gate.options(),
                                  "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  for (int i = 0; i < kCalls; ++i) client.send("slow_parallel", "work:5", "w-" + std::to_string(i));
  int most = 0;
  for (int i = 0; i < kCalls; ++i) {
    auto reply = client.receive(std::chrono::seconds(30));
    ASSERT_TRUE(reply) << "only " << i << " of " << kCalls << " answered";
    most = std::max(most, std::stoi(reply->body.substr(4)));
  }
  EXPECT_EQ(most, kConsumers) << "handlers seen running at once";
  daemon.stop();
  EXPECT_EQ(daemon.counters("slow_parallel").replied, static_cast<std::uint64_t>(kCalls));
  expectQueueSettled("slow_parallel");
}

TEST(Daemon, AHandlerOverrunningTheDrainTimeoutIsAbandonedAndItsRequestRedelivered) {
  Gate gate;
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: slow_drain\n    handler: gate\n"
                                  "    consumers: 1\n" +
                                      gate.options(),
                                  "", WARREN_FIXTURE_PLUGIN_DIR) +
                       "shutdown:\n  drain_timeout: 200ms\n");
  TestClient client(broker().port());
  client.send("slow_drain", "held", "drain-1");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10)));
  EXPECT_FALSE(daemon.stop()) << "reported a clean drain with a handler still running";
  EXPECT_NE(daemon.log().text().find("1 handler(s) still running after the drain timeout"),
            std::string::npos);
  // Its connection was closed: the broker holds the request again, ready.
  EXPECT_EQ(broker().queueState("slow_drain"), "1 0 0");
  gate.open();
  EXPECT_TRUE(daemon.log().waitFor("a handler abandoned at the drain deadline returned",
                                   std::chrono::seconds(10)));
  client.deleteQueue("slow_drain");
}

TEST(Daemon, AcksAndCountsARequestWithoutReplyTo) {
  // One consumer, prefetch 1: the call after it is handled after it.
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue("sum_noreply", 1)));
  TestClient client(broker().port());
  client.send("sum_noreply", "1,1", "lost", /*with_reply_to=*/false);
  EXPECT_EQ(client.call("sum_noreply", "2,2").body, "4");
  EXPECT_EQ(daemon.counters("sum_noreply").missing_reply_to, 1u);
  EXPECT_TRUE(daemon.log().waitFor("request without reply_to (correlation_id 'lost'",
                                   std::chrono::seconds(1)));
  daemon.stop();
  expectQueueSettled("sum_noreply");
}

TEST(Daemon, RefusesABodyOverTheLimitWithoutHandlingIt) {
  RunningDaemon daemon(
      daemonYaml(broker().port(), sumQueue("sum_large", 2, "    max_body_bytes: 1024\n")));
  TestClient client(broker().port());
  const std::string big(300 * 1024, '7');  // spans several frames
  const TestReply refused = client.call("sum_large", big);
  EXPECT_EQ(refused.errorCode(), "too_large");
  EXPECT_EQ(refused.errorMessage(), "request body of 307200 bytes exceeds the limit of 1024 bytes");
  EXPECT_EQ(client.call("sum_large", "20,22").body, "42");
  // Two consumers: the refusal is counted once its publish returns, which
  // may be after the other consumer answered. Read once they are gone.
  daemon.stop();
  EXPECT_EQ(daemon.counters("sum_large").too_large, 1u);
  expectQueueSettled("sum_large");
}

TEST(Daemon, ASlowHandlerOutlastingThreeHeartbeatsIsAnsweredExactlyOnce) {
  Gate gate;
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: slow_heartbeat\n    handler: gate\n"
                                  "    consumers: 1\n" +
                                      gate.options(),
                                  "  heartbeat: 1s\n", WARREN_FIXTURE_PLUGIN_DIR),
                       true);
  TestClient client(broker().port());
  client.send("slow_heartbeat", "held", "slow-1");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10)));
  // The condition under test is time itself: the handler must stay busy for
  // well over three heartbeat intervals (1 s each) while the connection lives.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  gate.open();
  auto reply = client.receive(std::chrono::seconds(10));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "held");
  EXPECT_EQ(reply->correlation_id, "slow-1");
  const QueueCounts counters = daemon.counters("slow_heartbeat");
  EXPECT_EQ(counters.received, 1u) << "the request was redelivered";
  EXPECT_EQ(counters.sessions_lost, 0u) << "the connection was dropped";
  EXPECT_EQ(counters.replied, 1u);
  daemon.stop();
  expectQueueSettled("slow_heartbeat");
  EXPECT_EQ(broker().log().find("missed heartbeats"), std::string::npos);
}

TEST(Daemon, ResumesConsumingWhenItsQueueIsDeletedAndDeclaredAgain) {
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue("sum_deleted", 3)));
  TestClient client(broker().port());
  EXPECT_EQ(client.call("sum_deleted", "1,2").body, "3");
  client.deleteQueue("sum_deleted");
  ASSERT_TRUE(daemon.log().waitFor("cancelled the consumer", std::chrono::seconds(10)));
  client.declareQueue("sum_deleted");
  EXPECT_EQ(client.call("sum_deleted", "3,4").body, "7");
  EXPECT_TRUE(daemon.supervisor().waitConsuming(std::chrono::steady_clock::now() +
                                                std::chrono::seconds(10)));
  EXPECT_GE(daemon.counters("sum_deleted").sessions_lost, 1u);
  daemon.stop();
  expectQueueSettled("sum_deleted");
}

TEST(Daemon, ReportsAQueueDeclaredWithOtherArgumentsWhileOtherQueuesServe) {
  TestClient client(broker().port());
  client.declareQueue("conflicting", {{"x-max-length", std::int64_t{10}}});
  RunningDaemon daemon(
      daemonYaml(broker().port(), "  - name: conflicting\n    handler: sum\n    consumers: 2\n" +
                                      sumQueue("sum_beside_conflict", 2)),
      /*wait_consuming=*/false);
  ASSERT_TRUE(daemon.supervisor()
                  .queue("sum_beside_conflict")
                  .waitConsuming(std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  EXPECT_EQ(client.call("sum_beside_conflict", "5,6").body, "11");
  ASSERT_TRUE(daemon.log().waitFor("inequivalent arg 'x-max-length'", std::chrono::seconds(10)));
  const std::string log = daemon.log().text();
  EXPECT_NE(log.find("[conflicting] [error] queue.declare of 'conflicting' refused by the broker: "
                     "406 PRECONDITION_FAILED"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("make queues[0] (durable, auto_delete, arguments) match"), std::string::npos);
  // Retried with growing delays, never consuming, never touching the other queue.
  ASSERT_TRUE(daemon.log().waitFor("(attempt 2)", std::chrono::seconds(10)));
  EXPECT_FALSE(
      daemon.supervisor().queue("conflicting").waitConsuming(std::chrono::steady_clock::now()));
  EXPECT_EQ(client.call("sum_beside_conflict", "1,1").body, "2");
  daemon.stop();
  expectQueueSettled("sum_beside_conflict");
  client.deleteQueue("conflicting");
}

}  // namespace
}  // namespace warren::test
