// SPDX-License-Identifier: Apache-2.0
// isolation: process (docs/exec-handlers.md#isolation-process): a plugin that
// segfaults, aborts, exits or hangs on a request costs that request only,
// answered handler_crashed (or deadline_exceeded), while the queue's other
// requests and the daemon's other queues are served. The misbehave fixture
// does each on a marked body and sums "a,b" otherwise.
#include "daemon_harness.h"
#include "private_broker.h"
#include "process_census.h"
#include "rpc_client.h"
#include "steady_load.h"

#include <warren/client.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

// An x-warren-deadline `ms` from now.
std::int64_t inMs(std::int64_t ms) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() +
         ms;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

std::string isolatedQueue(const std::string& name, int consumers, const std::string& extra = "") {
  return "  - name: " + name + "\n    handler: misbehave\n    isolation: process\n" +
         "    consumers: " + std::to_string(consumers) + "\n" + extra;
}

TEST(Isolation, EachMarkedRequestGetsItsErrorEveryOtherItsAnswerAndTheOtherQueueServes) {
  RunningDaemon daemon(
      daemonYaml(broker().port(),
                 isolatedQueue("isolated", 2, "    worker_restart_backoff_max: 50ms\n") +
                     "  - name: steady\n    handler: misbehave\n    consumers: 2\n",
                 "", WARREN_FIXTURE_PLUGIN_DIR));
  // The other queue under load all along, through warren's client.
  ClientOptions options;
  options.broker_url = broker().url();
  Client client(options);
  SteadyLoad load(client, "steady", 8, 20s);
  ASSERT_TRUE(load.waitAnswered(200, 30s)) << load.tally().describe();

  TestClient caller(broker().port());
  const std::vector<std::pair<std::string, std::string>> kinds = {{"segv", "handler_crashed"},
                                                                  {"abort", "handler_crashed"},
                                                                  {"exit:3", "handler_crashed"},
                                                                  {"exit:0", "handler_crashed"},
                                                                  {"hang", "deadline_exceeded"}};
  std::map<std::string, std::pair<std::string, std::string>> expected;  // id -> (code, body)
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    for (const auto& [body, code] : kinds) {
      const std::string id = body + "-" + std::to_string(round);
      // "hang" with a deadline of its own: killed at it, or answered
      // unrun if it expired in the queue. The others have the default
      // handler_timeout (1 min), ample for a worker started again, even
      // a sanitized one, which takes long to start.
      if (body == "hang") {
        caller.send("isolated", body, id, {{"x-warren-deadline", inMs(1500)}});
      } else {
        caller.send("isolated", body, id);
      }
      expected[id] = {code, ""};
      for (int good = 0; good < 3; ++good) {
        const std::string sum_id = id + "-good-" + std::to_string(good);
        caller.send("isolated", std::to_string(round) + "," + std::to_string(good), sum_id);
        expected[sum_id] = {"", std::to_string(round + good)};
      }
    }
  }
  std::map<std::string, TestReply> replies;
  while (replies.size() < expected.size()) {
    auto reply = caller.receive(60s);
    ASSERT_TRUE(reply) << replies.size() << " of " << expected.size() << " replies";
    EXPECT_TRUE(replies.emplace(reply->correlation_id, *reply).second) << reply->correlation_id;
  }
  for (const auto& [id, want] : expected) {
    const TestReply& reply = replies.at(id);
    EXPECT_EQ(reply.errorCode(), want.first) << id << ": " << reply.body;
    if (want.first.empty()) {
      EXPECT_EQ(reply.body, want.second) << id;
    }
  }
  // Under a sanitizer the worker's SEGV is its report and an abort, and
  // its exit runs the leak check, which may change the status.
  if (!kSanitized) {
    EXPECT_NE(replies.at("segv-0").errorMessage().find("killed by signal 11"), std::string::npos)
        << replies.at("segv-0").errorMessage();
    EXPECT_NE(replies.at("exit:3-0").errorMessage().find("exited with status 3"), std::string::npos)
        << replies.at("exit:3-0").errorMessage();
  }

  const LoadTally tally = load.stop();
  EXPECT_EQ(tally.failedTotal(), 0u) << tally.describe();
  EXPECT_EQ(tally.wrong, 0u) << tally.describe();
  EXPECT_EQ(tally.unfinished, 0u) << tally.describe();

  const QueueCounts isolated = daemon.counters("isolated");
  EXPECT_EQ(isolated.worker_crashes, 4u * kRounds);
  // Which: how long each "hang" waited in the queue, long under a sanitizer
  // (workers are slow to start again). The kill itself is asserted by
  // HandlerTimeoutKillsAWorkerHoldingARequestWithoutADeadline.
  EXPECT_EQ(isolated.worker_kills + isolated.deadline_queued, 1u * kRounds);
  EXPECT_EQ(isolated.deadline_handling, isolated.worker_kills);
  // Restarted lazily, on a worker's next request: the last failure of
  // each of the 2 workers may not have been followed by one.
  const std::uint64_t failures = isolated.worker_crashes + isolated.worker_kills;
  EXPECT_LE(isolated.worker_restarts, failures);
  EXPECT_GE(isolated.worker_restarts, failures - 2);
  EXPECT_EQ(daemon.counters("steady").sessions_lost, 0u);
  EXPECT_EQ(broker().queueState("isolated"), "0 0 2");  // nothing left unacked
  EXPECT_TRUE(daemon.log().waitFor("answered handler_crashed", 10s));
  EXPECT_TRUE(daemon.stop());
}

TEST(Isolation, WorkersAreOtherProcessesAndAPluginsStdoutGoesToTheLog) {
  RunningDaemon daemon(
      daemonYaml(broker().port(), isolatedQueue("isolated_pid", 1), "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  const std::string pid = client.call("isolated_pid", "pid").body;
  EXPECT_NE(pid, std::to_string(getpid()));
  EXPECT_EQ(client.call("isolated_pid", "stdout").body, "printed");
  EXPECT_TRUE(daemon.log().waitFor("worker: a line a plugin printed on stdout", 10s));
  EXPECT_EQ(client.call("isolated_pid", "stderr:said on stderr").body, "logged");
  EXPECT_TRUE(daemon.log().waitFor("worker: said on stderr", 10s));
  EXPECT_EQ(client.call("isolated_pid", "pid").body, pid);  // the same worker throughout
}

TEST(Isolation, HandlerTimeoutKillsAWorkerHoldingARequestWithoutADeadline) {
  RunningDaemon daemon(daemonYaml(
      broker().port(), isolatedQueue("isolated_timeout", 1, "    handler_timeout: 300ms\n"), "",
      WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  const TestReply reply = client.call("isolated_timeout", "hang");
  EXPECT_EQ(reply.errorCode(), "deadline_exceeded") << reply.body;
  EXPECT_NE(reply.errorMessage().find("its worker was killed"), std::string::npos)
      << reply.errorMessage();
  // Its own deadline: a worker started again (slow under a sanitizer) must
  // not meet the 300 ms of handler_timeout.
  client.send("isolated_timeout", "2,3", "after", {{"x-warren-deadline", inMs(30000)}});
  const auto after = client.receive(std::chrono::seconds(30));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "5") << after->errorMessage();
  EXPECT_EQ(daemon.counters("isolated_timeout").worker_kills, 1u);
}

TEST(Isolation, CrashesInARowLeakNoDescriptorsAndNoZombies) {
  RunningDaemon daemon(daemonYaml(
      broker().port(), isolatedQueue("isolated_leak", 1, "    worker_restart_backoff_max: 0s\n"),
      "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  // abort(): no sanitizer report to write, so the loop is as quick under one.
  ASSERT_EQ(client.call("isolated_leak", "abort").errorCode(), "handler_crashed");
  ASSERT_EQ(client.call("isolated_leak", "1,1").body, "2");  // a worker running again
  const int fds = openFds();
  constexpr int kCrashes = 200;
  for (int i = 0; i < kCrashes; ++i) {
    ASSERT_EQ(client.call("isolated_leak", "abort").errorCode(), "handler_crashed") << i;
  }
  ASSERT_EQ(client.call("isolated_leak", "1,1").body, "2");
  EXPECT_EQ(openFds(), fds);
  EXPECT_EQ(children().zombies, 0);
  EXPECT_EQ(daemon.counters("isolated_leak").worker_crashes, kCrashes + 1u);
}

TEST(Isolation, TheWorkersEndWithTheDaemon) {
  auto daemon = std::make_unique<RunningDaemon>(daemonYaml(
      broker().port(), isolatedQueue("isolated_stop", 2), "", WARREN_FIXTURE_PLUGIN_DIR));
  TestClient client(broker().port());
  const pid_t worker = std::stoi(client.call("isolated_stop", "pid").body);
  EXPECT_TRUE(daemon->stop());
  daemon.reset();
  EXPECT_EQ(kill(worker, 0), -1);  // ended and reaped
  EXPECT_EQ(children().zombies, 0);
}

}  // namespace
}  // namespace warren::test
