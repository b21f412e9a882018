// SPDX-License-Identifier: Apache-2.0
// The delivery guarantee of replies: a request is acked only once the broker
// confirmed its reply, and the reply has the request's persistence, so that
// a caller with persistent requests and a durable reply queue gets an answer
// to every request the broker confirmed, across broker restarts.
#include "daemon_harness.h"
#include "private_broker.h"

#include <amqp_tcp_socket.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

namespace warren::test {
namespace {

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

using Clock = std::chrono::steady_clock;
constexpr amqp_channel_t kChannel = 1;

amqp_bytes_t bytesOf(const std::string& text) {
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}
std::string textOf(amqp_bytes_t bytes) {
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

// Waits until `done()` holds, checking every few milliseconds; false at
// the deadline. For a condition that has no event to wait on (a counter).
template <class Done>
bool waitUntil(Done done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

struct Reply {
  std::string correlation_id;
  std::string body;
  int delivery_mode = 0;  // 0: the property was absent
};

// A caller as careful as it can be, on plain rabbitmq-c: requests published
// with publisher confirms, persistent or not, replies read from a named
// queue (durable or bounded) that outlives the caller's connection.
class CarefulCaller {
 public:
  CarefulCaller(int port, std::string reply_queue, const amqp_table_t& reply_arguments,
                bool durable_replies)
      : state_(amqp_new_connection()), reply_queue_(std::move(reply_queue)) {
    amqp_socket_t* socket = amqp_tcp_socket_new(state_);
    timeval timeout{5, 0};
    if (amqp_socket_open_noblock(socket, "127.0.0.1", port, &timeout) != AMQP_STATUS_OK) {
      amqp_destroy_connection(state_);
      throw std::runtime_error("caller: cannot connect");
    }
    const amqp_rpc_reply_t login = amqp_login(state_, "/", 0, 131072, /*heartbeat=*/0,
                                              AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
      amqp_destroy_connection(state_);
      throw std::runtime_error("caller: login failed");
    }
    amqp_channel_open(state_, kChannel);
    check("channel.open");
    amqp_confirm_select(state_, kChannel);
    check("confirm.select");
    amqp_queue_declare(state_, kChannel, bytesOf(reply_queue_), /*passive=*/0,
                       durable_replies ? 1 : 0, /*exclusive=*/0, /*auto_delete=*/0,
                       reply_arguments);
    check("declare the reply queue");
  }
  ~CarefulCaller() {
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(state_);
  }
  CarefulCaller(const CarefulCaller&) = delete;
  CarefulCaller& operator=(const CarefulCaller&) = delete;

  void send(const std::string& queue, const std::string& body, const std::string& correlation_id,
            bool persistent, const std::string& reply_to = "") {
    amqp_basic_properties_t properties{};
    properties._flags =
        AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    properties.correlation_id = bytesOf(correlation_id);
    const std::string& to = reply_to.empty() ? reply_queue_ : reply_to;
    properties.reply_to = bytesOf(to);
    properties.delivery_mode = persistent ? 2 : 1;
    if (amqp_basic_publish(state_, kChannel, amqp_empty_bytes, bytesOf(queue), /*mandatory=*/0,
                           /*immediate=*/0, &properties, bytesOf(body)) != AMQP_STATUS_OK) {
      throw std::runtime_error("caller: publish failed");
    }
    ++published_;
  }

  // Waits until the broker confirmed every publish so far (basic.ack, not
  // nack); false at the deadline.
  bool waitConfirmed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (confirmed_ < published_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      timeval tv{static_cast<time_t>(left.count() / 1000000),
                 static_cast<suseconds_t>(left.count() % 1000000)};
      amqp_frame_t frame;
      const int status = amqp_simple_wait_frame_noblock(state_, &frame, &tv);
      if (status == AMQP_STATUS_TIMEOUT) return false;
      if (status != AMQP_STATUS_OK) throw std::runtime_error("caller: connection lost");
      if (frame.frame_type != AMQP_FRAME_METHOD) continue;
      if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        throw std::runtime_error("caller: the broker refused a request");
      }
      if (frame.payload.method.id != AMQP_BASIC_ACK_METHOD) continue;
      const auto* ack = static_cast<const amqp_basic_ack_t*>(frame.payload.method.decoded);
      confirmed_ = ack->multiple ? ack->delivery_tag : confirmed_ + 1;
    }
    return true;
  }

  // Starts reading the reply queue (no-ack: only called when no restart follows).
  void consumeReplies() {
    amqp_basic_consume(state_, kChannel, bytesOf(reply_queue_), amqp_empty_bytes, 0,
                       /*no_ack=*/1, /*exclusive=*/0, amqp_empty_table);
    check("consume the reply queue");
  }

  std::optional<Reply> receive(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      timeval tv{static_cast<time_t>(left.count() / 1000000),
                 static_cast<suseconds_t>(left.count() % 1000000)};
      amqp_envelope_t envelope;
      amqp_maybe_release_buffers(state_);
      const amqp_rpc_reply_t result = amqp_consume_message(state_, &envelope, &tv, 0);
      if (result.reply_type == AMQP_RESPONSE_NORMAL) {
        Reply reply;
        const amqp_basic_properties_t& p = envelope.message.properties;
        if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
          reply.correlation_id = textOf(p.correlation_id);
        }
        if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) reply.delivery_mode = p.delivery_mode;
        reply.body = textOf(envelope.message.body);
        amqp_destroy_envelope(&envelope);
        return reply;
      }
      if (result.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          result.library_error == AMQP_STATUS_TIMEOUT) {
        return std::nullopt;
      }
      if (result.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          result.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        amqp_frame_t frame;  // a late confirm: nothing to do with it here
        if (amqp_simple_wait_frame(state_, &frame) != AMQP_STATUS_OK) {
          throw std::runtime_error("caller: connection lost");
        }
        continue;
      }
      throw std::runtime_error("caller: consume failed");
    }
  }

  void deleteQueue(const std::string& name) {
    amqp_queue_delete(state_, kChannel, bytesOf(name), 0, 0);
    check("queue.delete");
  }

 private:
  void check(const char* what) {
    if (amqp_get_rpc_reply(state_).reply_type != AMQP_RESPONSE_NORMAL) {
      throw std::runtime_error(std::string("caller: ") + what + " failed");
    }
  }

  amqp_connection_state_t state_;
  std::string reply_queue_;
  std::uint64_t published_ = 0;
  std::uint64_t confirmed_ = 0;
};

std::string sumQueue(const std::string& name, int consumers, const std::string& extra = "") {
  return "  - name: " + name + "\n    handler: sum\n    consumers: " + std::to_string(consumers) +
         "\n" + extra;
}

// Whatever a test does, the next one finds the broker running.
struct BrokerBackOnExit {
  ~BrokerBackOnExit() {
    if (!broker().running()) broker().start();
  }
};

TEST(Delivery, AReplyHasThePersistenceOfItsRequest) {
  const std::string queue = "sum_modes";
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue(queue, 1)));
  CarefulCaller caller(broker().port(), "modes_replies", amqp_empty_table, /*durable=*/false);
  caller.send(queue, "1,1", "persistent", /*persistent=*/true);
  caller.send(queue, "2,2", "transient", /*persistent=*/false);
  ASSERT_TRUE(caller.waitConfirmed(std::chrono::seconds(10)));
  caller.consumeReplies();
  std::map<std::string, int> modes;
  while (modes.size() < 2) {
    const auto reply = caller.receive(std::chrono::seconds(20));
    ASSERT_TRUE(reply) << modes.size() << " of 2 replies";
    modes[reply->correlation_id] = reply->delivery_mode;
  }
  EXPECT_EQ(modes.at("persistent"), 2);
  EXPECT_EQ(modes.at("transient"), 1);
  daemon.stop();
  caller.deleteQueue("modes_replies");
}

// The broker refuses the reply to a persistent request (basic.nack: the
// caller's queue is full and rejects publishes), or returns it (no such
// queue): the request is answered at most once, then goes to the
// dead-letter target, never back to the queue, and the consumer stays
// connected.
TEST(Delivery, ARefusedOrReturnedReplySendsItsRequestToTheDeadLetterTarget) {
  const std::string queue = "sum_nacked";
  const std::string dead = "sum_nacked_dead";
  CarefulCaller caller(broker().port(), dead, amqp_empty_table, /*durable=*/false);
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue(queue, 1,
                                                            "    arguments:\n"
                                                            "      x-dead-letter-exchange: \"\"\n"
                                                            "      x-dead-letter-routing-key: " +
                                                                dead + "\n")));
  // A reply queue that takes nothing: every publish to it is nacked.
  std::array<amqp_table_entry_t, 2> full{};
  full[0].key = amqp_cstring_bytes("x-max-length");
  full[0].value.kind = AMQP_FIELD_KIND_I64;
  full[0].value.value.i64 = 0;
  full[1].key = amqp_cstring_bytes("x-overflow");
  full[1].value.kind = AMQP_FIELD_KIND_UTF8;
  full[1].value.value.bytes = amqp_cstring_bytes("reject-publish");
  CarefulCaller full_caller(broker().port(), "full_replies",
                            amqp_table_t{static_cast<int>(full.size()), full.data()},
                            /*durable=*/false);
  full_caller.send(queue, "1,1", "nacked", /*persistent=*/true);
  ASSERT_TRUE(full_caller.waitConfirmed(std::chrono::seconds(10)));
  caller.send(queue, "2,2", "returned", /*persistent=*/true, "no_such_reply_queue");
  ASSERT_TRUE(caller.waitConfirmed(std::chrono::seconds(10)));
  ASSERT_TRUE(daemon.log().waitFor("refused (basic.nack) a reply", std::chrono::seconds(20)));
  ASSERT_TRUE(
      daemon.log().waitFor("(correlation_id 'returned') was not routed", std::chrono::seconds(20)));
  // The dead-letter queue is the test caller's reply queue: both requests,
  // each handled once, end up there.
  caller.consumeReplies();
  std::set<std::string> dead_lettered;
  while (dead_lettered.size() < 2) {
    const auto message = caller.receive(std::chrono::seconds(20));
    ASSERT_TRUE(message) << "dead-lettered: " << dead_lettered.size() << " of 2";
    dead_lettered.insert(message->correlation_id);
  }
  EXPECT_EQ(dead_lettered, (std::set<std::string>{"nacked", "returned"}));
  const QueueCounts counters = daemon.counters(queue);
  EXPECT_EQ(counters.handled, 2u);
  EXPECT_EQ(counters.nacked, 1u);
  EXPECT_EQ(counters.returned, 1u);
  EXPECT_EQ(counters.sessions_lost, 0u);
  EXPECT_EQ(broker().queueState(queue), "0 0 1");
  daemon.stop();
  full_caller.deleteQueue("full_replies");
  caller.deleteQueue(dead);
}

// With more than one broker url (a cluster) a transient request's reply is
// confirmed before the request is acked: on a cluster the ack and the reply
// take different paths, and a node lost between them could keep the ack and
// lose the reply (cluster_test.cpp). Seen here on one node named twice: the
// reply to a queue that rejects publishes is nacked, which only a confirmed
// publish can tell (unconfirmed, it would vanish and its request be acked).
TEST(Delivery, OnAClusterATransientReplyIsConfirmedBeforeItsRequestIsAcked) {
  const std::string queue = "sum_cluster_transient";
  std::string yaml = daemonYaml(broker().port(), sumQueue(queue, 1));
  const auto at = yaml.find("  url: ");
  yaml.replace(at, yaml.find('\n', at) + 1 - at,
               "  url:\n    - " + broker().url() + "\n    - " + broker().url() + "\n");
  RunningDaemon daemon(yaml);
  std::array<amqp_table_entry_t, 2> full{};
  full[0].key = amqp_cstring_bytes("x-max-length");
  full[0].value.kind = AMQP_FIELD_KIND_I64;
  full[0].value.value.i64 = 0;
  full[1].key = amqp_cstring_bytes("x-overflow");
  full[1].value.kind = AMQP_FIELD_KIND_UTF8;
  full[1].value.value.bytes = amqp_cstring_bytes("reject-publish");
  CarefulCaller full_caller(broker().port(), "full_transient_replies",
                            amqp_table_t{static_cast<int>(full.size()), full.data()},
                            /*durable=*/false);
  full_caller.send(queue, "1,1", "transient", /*persistent=*/false);
  ASSERT_TRUE(full_caller.waitConfirmed(std::chrono::seconds(10)));
  ASSERT_TRUE(daemon.log().waitFor("refused (basic.nack) a reply", std::chrono::seconds(20)));
  EXPECT_EQ(daemon.counters(queue).nacked, 1u);
  EXPECT_EQ(daemon.counters(queue).handled, 1u);
  EXPECT_TRUE(waitUntil([&] { return broker().queueState(queue) == "0 0 1"; },
                        std::chrono::seconds(10)))
      << broker().queueState(queue);
  daemon.stop();
  full_caller.deleteQueue("full_transient_replies");
}

// Suspends a queue's Erlang process: the broker can route to it but not
// confirm what it routed there until resume() (or destruction).
class SuspendedQueue {
 public:
  explicit SuspendedQueue(std::string queue) : queue_(std::move(queue)) { call("suspend"); }
  ~SuspendedQueue() { resume(); }
  SuspendedQueue(const SuspendedQueue&) = delete;
  SuspendedQueue& operator=(const SuspendedQueue&) = delete;
  void resume() {
    if (suspended_) call("resume");
    suspended_ = false;
  }

 private:
  void call(const std::string& what) {
    broker().ctl("eval '{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"" +
                 queue_ + "\">>)), sys:" + what + "(amqqueue:get_pid(Q)).'");
  }
  std::string queue_;
  bool suspended_ = true;
};

// "[ready,unacked,consumers]" of one queue, asking only that queue's
// process (list_queues would wait for a suspended one).
std::string queueCounts(const std::string& queue) {
  std::string out = broker().ctl(
      "eval '{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"" + queue +
      "\">>)), [V || {_, V} <- rabbit_amqqueue:info(Q, [messages_ready, "
      "messages_unacknowledged, consumers])].'");
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// The request stays unacked while its reply waits for the broker's confirm,
// and is acked once the confirm comes.
TEST(Delivery, APersistentRequestIsAckedOnlyOnceItsReplyIsConfirmed) {
  const std::string queue = "sum_unconfirmed";
  const std::string replies = "sum_unconfirmed_replies";
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue(queue, 1, "    durable: true\n")));
  CarefulCaller caller(broker().port(), replies, amqp_empty_table, /*durable=*/true);
  SuspendedQueue suspended(replies);
  caller.send(queue, "20,22", "held", /*persistent=*/true);
  ASSERT_TRUE(caller.waitConfirmed(std::chrono::seconds(10)));
  ASSERT_TRUE(
      waitUntil([&] { return daemon.counters(queue).replied == 1; }, std::chrono::seconds(10)));
  // Published, not confirmed: the request is still the broker's, unacked.
  EXPECT_EQ(queueCounts(queue), "[0,1,1]");
  suspended.resume();
  caller.consumeReplies();
  const auto reply = caller.receive(std::chrono::seconds(10));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->correlation_id, "held");
  EXPECT_EQ(reply->body, "42");
  EXPECT_TRUE(waitUntil([&] { return queueCounts(queue) == "[0,0,1]"; }, std::chrono::seconds(10)))
      << queueCounts(queue);
  EXPECT_EQ(daemon.counters(queue).sessions_lost, 0u);
  daemon.stop();
  caller.deleteQueue(replies);
  caller.deleteQueue(queue);
}

// With prefetch above 1 several replies wait for their confirms at once,
// and the broker confirms them several at a time (`multiple`): each
// request is acked once, after its own reply, and answered exactly once.
TEST(Delivery, WithPrefetchAboveOneEveryPersistentRequestIsAnsweredOnceAndAcked) {
  const std::string queue = "sum_prefetch";
  const std::string replies = "sum_prefetch_replies";
  constexpr int kCalls = 600;
  RunningDaemon daemon(
      daemonYaml(broker().port(), sumQueue(queue, 2, "    durable: true\n    prefetch: 25\n")));
  CarefulCaller caller(broker().port(), replies, amqp_empty_table, /*durable=*/true);
  caller.consumeReplies();
  for (int i = 0; i < kCalls; ++i) {
    caller.send(queue, std::to_string(i) + ",1", std::to_string(i), /*persistent=*/true);
  }
  std::map<std::string, int> received;
  while (received.size() < static_cast<std::size_t>(kCalls)) {
    const auto reply = caller.receive(std::chrono::seconds(20));
    ASSERT_TRUE(reply) << received.size() << " of " << kCalls << " answered";
    EXPECT_EQ(reply->body, std::to_string(std::stoi(reply->correlation_id) + 1));
    ++received[reply->correlation_id];
  }
  EXPECT_TRUE(waitUntil([&] { return queueCounts(queue) == "[0,0,2]"; }, std::chrono::seconds(20)))
      << queueCounts(queue);
  for (const auto& [id, count] : received) EXPECT_EQ(count, 1) << id;
  // No session lost, so no request delivered twice: no reply can follow.
  EXPECT_EQ(daemon.counters(queue).sessions_lost, 0u);
  EXPECT_EQ(daemon.counters(queue).handled, static_cast<std::uint64_t>(kCalls));
  daemon.stop();
  caller.deleteQueue(replies);
  caller.deleteQueue(queue);
}

// A confirm that never comes is not waited for forever: after the broker-call
// timeout (10 s) the consumer gives up its connection, the broker
// redelivers the request, and it is answered once the reply queue takes
// replies again (a duplicate reply or more: at least once).
TEST(Delivery, AReplyNeverConfirmedGivesUpTheConnectionAndTheRequestIsAnsweredAgain) {
  const std::string queue = "sum_never_confirmed";
  const std::string replies = "sum_never_confirmed_replies";
  RunningDaemon daemon(daemonYaml(broker().port(), sumQueue(queue, 1, "    durable: true\n")));
  CarefulCaller caller(broker().port(), replies, amqp_empty_table, /*durable=*/true);
  {
    SuspendedQueue suspended(replies);
    caller.send(queue, "1,2", "late", /*persistent=*/true);
    ASSERT_TRUE(caller.waitConfirmed(std::chrono::seconds(10)));
    ASSERT_TRUE(daemon.log().waitFor("the broker confirmed none of 1 reply publish(es) within",
                                     std::chrono::seconds(30)));
  }
  caller.consumeReplies();
  const auto reply = caller.receive(std::chrono::seconds(20));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->correlation_id, "late");
  EXPECT_EQ(reply->body, "3");
  EXPECT_TRUE(waitUntil([&] { return queueCounts(queue) == "[0,0,1]"; }, std::chrono::seconds(20)))
      << queueCounts(queue);
  EXPECT_GE(daemon.counters(queue).sessions_lost, 1u);
  daemon.stop();
  caller.deleteQueue(replies);
  caller.deleteQueue(queue);
}

// Persistent requests on a durable queue, each confirmed by the broker, a
// durable reply queue, and graceful broker restarts while warrend answers:
// every confirmed request is answered (duplicates are allowed: at least
// once). The caller reads its replies only after the last restart, so the
// accounting is exact.
TEST(Delivery, EveryConfirmedRequestIsAnsweredAcrossBrokerRestarts) {
  const BrokerBackOnExit guard;
  const std::string queue = "sum_durable";
  const std::string replies = "sum_durable_replies";
  constexpr int kRestarts = 3;
  constexpr int kPerRound = 1000;
  constexpr int kConsumers = 5;
  RunningDaemon daemon(
      daemonYaml(broker().port(), sumQueue(queue, kConsumers, "    durable: true\n")));
  std::set<std::string> sent;
  for (int round = 0; round < kRestarts; ++round) {
    {
      CarefulCaller caller(broker().port(), replies, amqp_empty_table, /*durable=*/true);
      for (int i = 0; i < kPerRound; ++i) {
        const std::string id = std::to_string(round) + "-" + std::to_string(i);
        caller.send(queue, std::to_string(i) + "," + std::to_string(round), id,
                    /*persistent=*/true);
      }
      ASSERT_TRUE(caller.waitConfirmed(std::chrono::seconds(30))) << "round " << round;
      for (int i = 0; i < kPerRound; ++i)
        sent.insert(std::to_string(round) + "-" + std::to_string(i));
    }
    // Mid-load: warrend is answering this round's requests.
    const std::uint64_t before = daemon.counters(queue).replied;
    ASSERT_TRUE(waitUntil([&] { return daemon.counters(queue).replied >= before + 20; },
                          std::chrono::seconds(20)))
        << "round " << round << ": warrend answers nothing";
    std::printf("round %d: broker stopped with %llu of %zu requests answered\n", round,
                static_cast<unsigned long long>(daemon.counters(queue).replied), sent.size());
    broker().stop();
    broker().start();
    ASSERT_TRUE(
        daemon.supervisor().queue(queue).waitConsuming(Clock::now() + std::chrono::seconds(30)));
  }
  CarefulCaller caller(broker().port(), replies, amqp_empty_table, /*durable=*/true);
  caller.consumeReplies();
  std::map<std::string, int> received;
  int unexpected = 0;
  int wrong = 0;
  std::size_t answered = 0;
  while (answered < sent.size()) {
    const auto reply = caller.receive(std::chrono::seconds(15));
    if (!reply) break;
    if (sent.count(reply->correlation_id) == 0) {
      ++unexpected;
      continue;
    }
    const std::string& id = reply->correlation_id;
    const int round = std::stoi(id.substr(0, id.find('-')));
    const int i = std::stoi(id.substr(id.find('-') + 1));
    if (reply->body != std::to_string(round + i)) ++wrong;
    if (received[id]++ == 0) ++answered;
  }
  int duplicates = 0;
  for (const auto& [id, count] : received) duplicates += count - 1;
  const std::size_t unanswered = sent.size() - answered;
  std::printf("sent %zu, answered %zu, duplicate %d, unanswered %zu\n", sent.size(), answered,
              duplicates, unanswered);
  EXPECT_EQ(unanswered, 0u) << "sent " << sent.size() << ", answered " << answered << ", duplicate "
                            << duplicates;
  EXPECT_EQ(unexpected, 0);
  EXPECT_EQ(wrong, 0);
  daemon.stop();
  caller.deleteQueue(replies);
  caller.deleteQueue(queue);
}

}  // namespace
}  // namespace warren::test
