// SPDX-License-Identifier: Apache-2.0
// The reply path: requests whose reply the broker refuses, and what that
// must not do to the queue that received them.
#include "daemon_harness.h"
#include "fifo_gate.h"
#include "http_scrape.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <amqp_tcp_socket.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <stdexcept>
#include <string>

namespace warren::test {
namespace {

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

// The broker decodes "amq.rabbitmq.reply-to.<PID>.<KEY>" with
// binary_to_term(base64:decode(PID)); when that fails it closes the
// publishing connection with 541 INTERNAL_ERROR.
// Not base64 of an Erlang term: warrend can tell before publishing.
constexpr const char* kUndecodableReplyTo = "amq.rabbitmq.reply-to.AAAA.BBBB";
// Starts like a pid term (131, 88) but is not one: only the broker can tell.
constexpr const char* kBrokenPidReplyTo = "amq.rabbitmq.reply-to.g1gA.BBBB";

// Publishes requests with any reply_to, on plain rabbitmq-c.
class RawPublisher {
 public:
  explicit RawPublisher(int port) : state_(amqp_new_connection()) {
    amqp_socket_t* socket = amqp_tcp_socket_new(state_);
    timeval timeout{5, 0};
    if (amqp_socket_open_noblock(socket, "127.0.0.1", port, &timeout) != AMQP_STATUS_OK) {
      amqp_destroy_connection(state_);
      throw std::runtime_error("raw publisher: cannot connect");
    }
    const amqp_rpc_reply_t login = amqp_login(state_, "/", 0, 131072, /*heartbeat=*/0,
                                              AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    amqp_channel_open(state_, 1);
    if (login.reply_type != AMQP_RESPONSE_NORMAL ||
        amqp_get_rpc_reply(state_).reply_type != AMQP_RESPONSE_NORMAL) {
      amqp_destroy_connection(state_);
      throw std::runtime_error("raw publisher: login or channel.open failed");
    }
  }
  ~RawPublisher() {
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(state_);
  }
  RawPublisher(const RawPublisher&) = delete;
  RawPublisher& operator=(const RawPublisher&) = delete;

  void send(const std::string& queue, const std::string& body, const std::string& reply_to,
            const std::string& correlation_id) {
    amqp_basic_properties_t properties{};
    properties._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG;
    properties.correlation_id = amqp_cstring_bytes(correlation_id.c_str());
    properties.reply_to = amqp_cstring_bytes(reply_to.c_str());
    if (amqp_basic_publish(state_, 1, amqp_empty_bytes, amqp_cstring_bytes(queue.c_str()),
                           /*mandatory=*/0, /*immediate=*/0, &properties,
                           amqp_cstring_bytes(body.c_str())) != AMQP_STATUS_OK) {
      throw std::runtime_error("raw publisher: publish failed");
    }
  }

 private:
  amqp_connection_state_t state_;
};

std::string sumQueue(const std::string& name, int consumers, const std::string& extra = "") {
  return "  - name: " + name + "\n    handler: sum\n    consumers: " + std::to_string(consumers) +
         "\n" + extra;
}

// ready, unacked, consumers
std::string settledWith(int consumers) { return "0 0 " + std::to_string(consumers); }

TEST(ReplyPath, RequestsWithARefusedReplyToDoNotTakeTheQueueOffline) {
  const std::string queue = "sum_forged";
  constexpr int kConsumers = 2;
  constexpr int kRounds = 10;
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue(queue, kConsumers)));
  TestClient client(broker().port());
  RawPublisher forger(broker().port());
  for (int i = 0; i < kRounds; ++i) {
    client.send(queue, "1," + std::to_string(i), "good-" + std::to_string(i));
    forger.send(queue, "2,2", kUndecodableReplyTo, "undecodable-" + std::to_string(i));
    forger.send(queue, "3,3", kBrokenPidReplyTo, "broken-pid-" + std::to_string(i));
  }
  std::set<std::string> answered;
  while (answered.size() < kRounds) {
    auto reply = client.receive(std::chrono::seconds(30));
    ASSERT_TRUE(reply) << "only " << answered.size() << " of " << kRounds << " good ones answered";
    const int i = std::stoi(reply->correlation_id.substr(5));
    EXPECT_EQ(reply->body, std::to_string(1 + i));
    answered.insert(reply->correlation_id);
  }
  for (int i = 0; i < kRounds; ++i) {
    for (const std::string kind : {"undecodable-", "broken-pid-"}) {
      ASSERT_TRUE(daemon.log().waitFor("(correlation_id '" + kind + std::to_string(i) + "')",
                                       std::chrono::seconds(30)))
          << kind << i << " was never refused";
    }
  }
  const QueueCounts counters = daemon.counters(queue);
  // An undecodable address is refused before the handler runs; a broken pid
  // costs one handler run and one reply publish (and the connection the
  // broker closes for it), then its redelivery is acked unanswered.
  EXPECT_GE(counters.reply_refused, 2u * kRounds);
  EXPECT_GE(counters.handled, 2u * kRounds);
  // The consumers share the queue's connection: the one the broker closes
  // also takes the acks the other consumer had just sent, and those
  // requests come back once more (at most one per consumer per close).
  const std::uint64_t repeated = counters.reply_refused + counters.handled - 4u * kRounds;
  EXPECT_LE(repeated, (kConsumers - 1) * counters.sessions_lost);
  EXPECT_GE(counters.sessions_lost, 1u);
  ASSERT_TRUE(daemon.supervisor().queue(queue).waitConsuming(std::chrono::steady_clock::now() +
                                                             std::chrono::seconds(30)));
  EXPECT_EQ(broker().queueState(queue), settledWith(kConsumers));
  daemon.stop();
}

TEST(ReplyPath, ARefusedRequestGoesToTheDeadLetterTargetWhenTheQueueHasOne) {
  const std::string queue = "sum_forged_dlx";
  const std::string dead = "sum_forged_dlx_dead";
  TestClient client(broker().port());
  client.declareQueue(dead);
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue(queue, 1,
                                                            "    arguments:\n"
                                                            "      x-dead-letter-exchange: \"\"\n"
                                                            "      x-dead-letter-routing-key: " +
                                                                dead + "\n")));
  RawPublisher forger(broker().port());
  forger.send(queue, "2,2", kUndecodableReplyTo, "to-dead-1");
  forger.send(queue, "3,3", kBrokenPidReplyTo, "to-dead-2");
  EXPECT_EQ(client.call(queue, "1,1").body, "2");
  ASSERT_TRUE(daemon.log().waitFor("(correlation_id 'to-dead-1')", std::chrono::seconds(30)));
  ASSERT_TRUE(daemon.log().waitFor("(correlation_id 'to-dead-2')", std::chrono::seconds(30)));
  EXPECT_TRUE(daemon.log().waitFor("dead-lettered", std::chrono::seconds(5)));
  ASSERT_TRUE(daemon.supervisor().queue(queue).waitConsuming(std::chrono::steady_clock::now() +
                                                             std::chrono::seconds(30)));
  EXPECT_EQ(broker().queueState(queue), settledWith(1));
  EXPECT_EQ(broker().queueState(dead), "2 0 0");
  daemon.stop();
  client.deleteQueue(dead);
}

// Replies the handler returns but the broker could not take, or the queue
// does not allow: each is answered once, with an internal error.
TEST(ReplyPath, AReplyTheBrokerCannotTakeBecomesAnInternalError) {
  const std::string queue = "reply_shape";
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: " + queue +
                                      "\n    handler: reply_shape\n    consumers: 1\n"
                                      "    max_reply_bytes: 1024\n",
                                  "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  const TestReply long_type = client.call(queue, "content_type:256");
  EXPECT_EQ(long_type.errorCode(), "internal");
  EXPECT_EQ(long_type.errorMessage(),
            "the handler's reply content_type of 256 bytes exceeds AMQP's limit of 255 bytes");
  const TestReply large = client.call(queue, "body:1025");
  EXPECT_EQ(large.errorCode(), "internal");
  EXPECT_EQ(large.errorMessage(),
            "the handler's reply of 1025 bytes exceeds max_reply_bytes (1024)");
  // At the limits, replies go out as they are.
  EXPECT_EQ(client.call(queue, "content_type:255").content_type, std::string(255, 't'));
  EXPECT_EQ(client.call(queue, "body:1024").body, std::string(1024, 'b'));
  const QueueCounts counters = daemon.counters(queue);
  EXPECT_EQ(counters.handled, 4u);
  EXPECT_EQ(counters.sessions_lost, 0u);
  daemon.stop();
  EXPECT_EQ(broker().queueState(queue), "0 0 0");
}

// A reply over the broker's max_message_size: the broker closes the channel
// (406 PRECONDITION_FAILED) on the publish. Not a queue misconfiguration,
// and not a reason to run the request again and again.
TEST(ReplyPath, AReplyTheBrokerClosesTheChannelOnIsNotRetried) {
  struct LimitBackOnExit {
    ~LimitBackOnExit() {
      broker().ctl("eval 'application:set_env(rabbit, max_message_size, 134217728).'");
    }
  } limit_back;
  broker().ctl("eval 'application:set_env(rabbit, max_message_size, 4096).'");
  const std::string queue = "reply_shape_406";
  RunningDaemon daemon(daemonYaml(
      broker().port(), "  - name: " + queue + "\n    handler: reply_shape\n    consumers: 1\n", "",
      WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  client.send(queue, "body:8192", "over-broker-limit");
  ASSERT_TRUE(
      daemon.log().waitFor("(correlation_id 'over-broker-limit')", std::chrono::seconds(30)));
  EXPECT_EQ(client.call(queue, "after").body, "after");
  const QueueCounts counters = daemon.counters(queue);
  EXPECT_EQ(counters.reply_refused, 1u);
  EXPECT_EQ(counters.handled, 2u);
  EXPECT_EQ(counters.sessions_lost, 1u);
  EXPECT_EQ(daemon.log().text().find("the queue exists with other settings"), std::string::npos)
      << daemon.log().text();
  daemon.stop();
  EXPECT_EQ(broker().queueState(queue), "0 0 0");
}

// Every received request ends in one outcome, `lost` included: here a
// handler abandoned at the drain deadline, whose connection was closed
// under it, so its reply can never be sent.
TEST(ReplyPath, ARequestAbandonedAtTheDrainDeadlineCountsAsLost) {
  const std::string queue = "slow_lost";
  Gate gate;
  RunningDaemon daemon(
      daemonYaml(broker().port(),
                 "  - name: " + queue + "\n    handler: gate\n    consumers: 1\n" + gate.options(),
                 "", WARREN_FIXTURE_PLUGIN_DIR) +
      "shutdown:\n  drain_timeout: 200ms\n");
  // A handle of our own keeps the queue's series alive past its service.
  const auto held = daemon.supervisor().metrics().addQueue(queue, "gate", 1);
  TestClient client(broker().port());
  EXPECT_EQ(client.call(queue, "echo:answered").body, "echo:answered");
  client.send(queue, "held", "lost-1");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10)));
  EXPECT_FALSE(daemon.stop());
  gate.open();  // the handler returns after the drain deadline
  ASSERT_TRUE(daemon.log().waitFor("a handler abandoned at the drain deadline returned",
                                   std::chrono::seconds(10)));
  const Scrape scrape(daemon.supervisor().metrics().exposition());
  const std::map<std::string, std::string> labels = {{"queue", queue}, {"handler", "gate"}};
  const auto outcome = [&](const std::string& name) {
    auto with = labels;
    with["outcome"] = name;
    return scrape.value("warren_requests_finished_total", with).value_or(-1);
  };
  EXPECT_EQ(scrape.value("warren_requests_received_total", labels), 2);
  EXPECT_EQ(scrape.value("warren_requests_in_progress", labels), 0);
  EXPECT_EQ(outcome("ok"), 1);
  EXPECT_EQ(outcome("lost"), 1);
  double finished = 0;
  for (const Sample& sample : scrape.samples()) {
    if (sample.name == "warren_requests_finished_total" && sample.labels.at("queue") == queue) {
      finished += sample.value;
    }
  }
  EXPECT_EQ(finished, 2);
  client.deleteQueue(queue);
}

}  // namespace
}  // namespace warren::test
