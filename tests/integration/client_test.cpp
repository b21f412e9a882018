// SPDX-License-Identifier: Apache-2.0
// libwarren-client against warrend and a real RabbitMQ started for this
// executable.
#include "daemon_harness.h"
#include "eventually.h"
#include "fifo_gate.h"
#include "private_broker.h"
#include "rpc_client.h"
#include "tcp_proxy.h"

#include <warren/client.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <random>
#include <thread>

namespace warren::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

ClientOptions optionsFor(ReplyMode mode = ReplyMode::kExclusiveQueue) {
  ClientOptions options;
  options.broker_url = broker().url();
  options.reply_mode = mode;
  options.default_timeout = 20s;
  return options;
}

CallOptions within(std::chrono::milliseconds timeout) {
  CallOptions options;
  options.timeout = timeout;
  return options;
}

std::string sumDaemon(const std::string& queue, int consumers = 5) {
  return daemonYaml(broker().port(), "  - name: " + queue + "\n    handler: sum\n    consumers: " +
                                         std::to_string(consumers) + "\n");
}

TEST(Client, AnswersTenThousandCallsFromEightThreadsAtSixtyFourInFlight) {
  RunningDaemon daemon(sumDaemon("client_10k"));
  Client client(optionsFor());
  constexpr int kThreads = 8, kPerThread = 1250, kWindow = 8;  // 8 x 8 = 64 in flight
  std::atomic<int> correct{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 random(static_cast<std::uint64_t>(t));
      std::uniform_int_distribution<std::int64_t> operand(-1'000'000'000, 1'000'000'000);
      for (int done = 0; done < kPerThread; done += kWindow) {
        std::vector<std::pair<std::future<Reply>, std::int64_t>> window;
        for (int i = 0; i < std::min(kWindow, kPerThread - done); ++i) {
          const std::int64_t a = operand(random), b = operand(random);
          window.emplace_back(
              client.callAsync("client_10k", std::to_string(a) + "," + std::to_string(b)), a + b);
        }
        for (auto& [future, expected] : window) {
          if (future.get().body == std::to_string(expected)) ++correct;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(correct.load(), kThreads * kPerThread);
  const ClientStats stats = client.stats();
  EXPECT_EQ(stats.ok, 10'000u);
  EXPECT_EQ(stats.connects, 1u) << "all calls must share one connection";
  EXPECT_EQ(stats.late_replies, 0u);
}

TEST(Client, WorksWithDirectReplyTo) {
  RunningDaemon daemon(sumDaemon("client_direct"));
  Client client(optionsFor(ReplyMode::kDirectReplyTo));
  std::vector<std::future<Reply>> replies;
  for (int i = 0; i < 200; ++i)
    replies.push_back(client.callAsync("client_direct", "1," + std::to_string(i)));
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(replies[static_cast<std::size_t>(i)].get().body, std::to_string(1 + i));
}

TEST(Client, SurfacesAnErrorReplyAsATypedError) {
  RunningDaemon daemon(sumDaemon("client_errors"));
  Client client(optionsFor());
  try {
    client.call("client_errors", "1,x");
    FAIL() << "no error";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kRemoteError);
    EXPECT_EQ(e.errorCode(), "invalid_argument");
    EXPECT_EQ(std::string(e.what()), "second field is not an integer: 'x'");
  }
  EXPECT_EQ(client.call("client_errors", "2,3").body, "5");
}

TEST(Client, FailsAtOnceForAQueueThatDoesNotExist) {
  Client client(optionsFor());
  const auto started = Clock::now();
  try {
    client.call("no_such_queue", "1,2", within(20s));
    FAIL() << "no error";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kNoRoute);
    EXPECT_NE(std::string(e.what()).find("no queue 'no_such_queue'"), std::string::npos)
        << e.what();
  }
  // Long before the 20 s timeout: the broker returned the request.
  EXPECT_LT(Clock::now() - started, 10s);
}

TEST(Client, PublishesARefusedRequestAgainUntilTheBrokerTakesItOrItsDeadline) {
  // A full queue that rejects new messages: the broker nacks requests.
  // Without publisher confirms they vanished until their timeout.
  TestClient admin(broker().port());
  admin.declareQueue("client_full", {{"x-max-length", std::int64_t{1}},
                                     {"x-overflow", std::string("reject-publish")}});
  Client client(optionsFor());
  std::future<Reply> queued = client.callAsync("client_full", "1,2", within(20s));
  try {
    client.call("client_full", "3,4", within(1500ms));
    FAIL() << "no error";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kRejected) << e.what();
    EXPECT_NE(std::string(e.what()).find("the broker refused the request for queue 'client_full'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(client.stats().rejected, 1u);
  EXPECT_GE(client.stats().republished, 1u);

  // Refused again and again while the queue is full; taken once a consumer
  // makes room, and answered.
  std::future<Reply> later = client.callAsync("client_full", "5,6", within(20s));
  ASSERT_TRUE(eventually([&] { return client.stats().republished >= 3; }, 10s));
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: client_full\n    handler: sum\n    consumers: 1\n"
                                  "    arguments:\n      x-max-length: 1\n"
                                  "      x-overflow: reject-publish\n"));
  EXPECT_EQ(queued.get().body, "3");
  EXPECT_EQ(later.get().body, "11");
  EXPECT_EQ(client.stats().rejected, 1u);
  admin.deleteQueue("client_full");
}

TEST(Client, TimesOutACallNobodyAnswersAndTheBrokerDropsTheRequest) {
  TestClient admin(broker().port());
  admin.declareQueue("client_idle");
  Client client(optionsFor());
  const auto started = Clock::now();
  try {
    client.call("client_idle", "1,2", within(500ms));
    FAIL() << "no timeout";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kTimeout);
  }
  const auto waited = Clock::now() - started;
  EXPECT_GE(waited, 500ms);
  EXPECT_LT(waited, 5s) << "the timeout fired far too late";
  EXPECT_EQ(client.stats().timeouts, 1u);
  // The request carried expiration = its timeout: a consumer arriving now
  // never sees it.
  RunningDaemon daemon(sumDaemon("client_idle", 1));
  EXPECT_EQ(client.call("client_idle", "2,2").body, "4");
  EXPECT_EQ(daemon.counters("client_idle").received, 1u) << "the expired request was delivered";
  admin.deleteQueue("client_idle");
}

TEST(Client, DropsAndCountsAReplyThatArrivesAfterItsTimeout) {
  Gate gate;
  RunningDaemon daemon(
      daemonYaml(broker().port(),
                 "  - name: client_late\n    handler: gate\n    consumers: 1\n" + gate.options(),
                 "", WARREN_FIXTURE_PLUGIN_DIR));
  Client client(optionsFor());
  auto late = client.callAsync("client_late", "slow", within(300ms));
  ASSERT_TRUE(gate.waitEntered(10s));
  try {
    late.get();
    FAIL() << "no timeout";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kTimeout);
  }
  gate.open();
  // The next call's reply comes after the late one on the same reply queue.
  EXPECT_EQ(client.call("client_late", "echo:next").body, "echo:next");
  EXPECT_EQ(client.stats().late_replies, 1u);
}

TEST(Client, FailsCallsInFlightWhenTheBrokerGoesAndSucceedsAfterItReturns) {
  struct BrokerBack {
    ~BrokerBack() {
      if (!broker().running()) broker().start();
    }
  } broker_back;
  Gate gate;
  RunningDaemon daemon(
      daemonYaml(broker().port(),
                 "  - name: client_restart\n    handler: gate\n    consumers: 1\n" + gate.options(),
                 "", WARREN_FIXTURE_PLUGIN_DIR));
  Client client(optionsFor());
  auto in_flight = client.callAsync("client_restart", "held");
  ASSERT_TRUE(gate.waitEntered(10s));
  broker().kill();
  try {
    in_flight.get();
    FAIL() << "the call in flight did not fail";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kConnectionLost) << e.what();
  }
  gate.open();  // the handler finishes; its reply belongs to a dead session
  try {
    client.call("client_restart", "echo:down");
    FAIL() << "a call without a broker succeeded";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kNotConnected) << e.what();
  }
  broker().start();
  ASSERT_TRUE(daemon.log().waitFor("consuming again after", 30s));
  EXPECT_EQ(client.call("client_restart", "echo:back").body, "echo:back");
  EXPECT_EQ(client.stats().connects, 2u);
}

// A memory alarm: the broker sends connection.blocked and reads nothing more
// from the connection. The client holds requests instead of writing them
// into a socket nobody reads, times them out on time, keeps the connection,
// and sends again once unblocked.
TEST(Client, HoldsRequestsWhileTheBrokerBlocksPublishingAndTimesThemOutOnTime) {
  struct AlarmOffOnExit {
    ~AlarmOffOnExit() { broker().ctl("set_vm_memory_high_watermark 0.4"); }
  } alarm_off;
  RunningDaemon daemon(sumDaemon("client_blocked", 1));
  Client client(optionsFor());
  EXPECT_EQ(client.call("client_blocked", "1,2").body, "3");
  broker().ctl("set_vm_memory_high_watermark 0");
  // The broker blocks the connection when it next publishes; answered or
  // not, this call brings the notification.
  try {
    client.call("client_blocked", "2,3", within(1s));
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kTimeout) << e.what();
  }
  // Larger than every socket buffer on the way: written into the socket it
  // would block the client's I/O thread.
  const std::string large(32 * 1024 * 1024, '7');
  const auto started = Clock::now();
  try {
    client.call("client_blocked", large, within(1500ms));
    FAIL() << "a call went through a blocked connection";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kTimeout) << e.what();
    EXPECT_NE(std::string(e.what()).find("the broker blocks publishing"), std::string::npos)
        << e.what();
  }
  EXPECT_LT(Clock::now() - started, 5s) << "the timeout fired far too late";
  broker().ctl("set_vm_memory_high_watermark 0.4");
  EXPECT_EQ(client.call("client_blocked", "2,2", within(20s)).body, "4");
  EXPECT_EQ(client.stats().connects, 1u) << "the blocked connection was given up";
  EXPECT_EQ(client.stats().stalled_sends_cut, 0u) << "a held request was written and cut";
}

// A broker path that stops reading (TcpProxy paused): the send of a large
// request would wait forever in rabbitmq-c. It is cut at the call's
// deadline: the call fails on time, and the next one reconnects.
TEST(Client, FailsACallOnTimeWhenThePeerStopsReadingItsRequest) {
  RunningDaemon daemon(sumDaemon("client_stuck", 1));
  TcpProxy proxy(broker().port());
  ClientOptions options = optionsFor();
  options.broker_url = "amqp://guest:guest@127.0.0.1:" + std::to_string(proxy.port()) + "/%2f";
  Client client(options);
  EXPECT_EQ(client.call("client_stuck", "1,2").body, "3");
  proxy.pause();
  const std::string large(32 * 1024 * 1024, '7');
  const auto started = Clock::now();
  auto stuck = client.callAsync("client_stuck", large, within(1s));
  if (stuck.wait_for(20s) != std::future_status::ready) {
    proxy.cut();  // frees the I/O thread, so that the client can be destroyed
    FAIL() << "the call did not fail while its request could not be sent";
  }
  try {
    stuck.get();
    FAIL() << "a call succeeded through a stopped peer";
  } catch (const CallError& e) {
    EXPECT_EQ(e.status(), CallStatus::kTimeout) << e.what();
  }
  EXPECT_LT(Clock::now() - started, 5s) << "the call failed far too late";
  EXPECT_EQ(client.stats().stalled_sends_cut, 1u);
  proxy.resume();
  EXPECT_EQ(client.call("client_stuck", "2,2", within(20s)).body, "4");
  EXPECT_EQ(client.stats().connects, 2u);
}

// A callback that takes longer than two heartbeats: the client keeps sending
// heartbeats meanwhile (or the broker drops the connection), what the broker
// sent meanwhile counts as heard (or the client judges it silent), and the
// next call is answered on the same connection.
TEST(Client, ACallbackLongerThanTwoHeartbeatsFailsNoCallInFlight) {
  RunningDaemon daemon(sumDaemon("client_long_callback", 1));
  ClientOptions options = optionsFor();
  options.heartbeat = 1s;
  Client client(options);
  std::promise<void> slow_done;
  client.callAsync("client_long_callback", "1,1", within(20s), [&](CallOutcome&& outcome) {
    EXPECT_TRUE(outcome.ok()) << outcome.message;
    // The workload under test, not a wait for an event: a callback that
    // keeps the I/O thread busy for three heartbeat intervals.
    std::this_thread::sleep_for(3s);
    slow_done.set_value();
  });
  slow_done.get_future().wait();
  EXPECT_EQ(client.call("client_long_callback", "2,3", within(20s)).body, "5");
  EXPECT_EQ(client.stats().connects, 1u) << "the connection was dropped as silent";
  EXPECT_EQ(client.stats().connection_failures, 0u);
  // Half-heartbeat spacing over 3 s, after the first tick: 4 or 5.
  EXPECT_GE(client.stats().callback_heartbeats, 3u) << "the watcher kept no heartbeat going";
}

// Callbacks of calls failed while the client closes may submit more calls;
// those get their answer too, before the destructor returns.
TEST(Client, CallsSubmittedByCallbacksWhileClosingAreAnswered) {
  TestClient admin(broker().port());
  admin.declareQueue("client_closing");  // no consumer: the call waits
  std::atomic<int> answered{0};
  {
    // Declared before the client: the callbacks run while it is destroyed.
    std::function<void(CallOutcome &&)> chain;
    Client client(optionsFor());
    chain = [&](CallOutcome&& outcome) {
      EXPECT_EQ(outcome.status, CallStatus::kConnectionLost) << outcome.message;
      if (++answered < 3) client.callAsync("client_closing", "1,1", within(20s), chain);
    };
    client.callAsync("client_closing", "1,1", within(20s), chain);
  }
  EXPECT_EQ(answered.load(), 3);
  admin.deleteQueue("client_closing");
}

}  // namespace
}  // namespace warren::test
