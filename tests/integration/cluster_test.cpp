// SPDX-License-Identifier: Apache-2.0
// warrend and libwarren-client on a real 3-node RabbitMQ cluster on
// loopback (scripts/rabbitmq-cluster), with a quorum queue, under load, while
// nodes are killed with SIGKILL: every call is accounted for (sent, answered,
// wrong, duplicate, failed by status), nothing is left on the queue.
#include "daemon_harness.h"
#include "eventually.h"
#include "private_broker.h"
#include "rpc_client.h"
#include "steady_load.h"

#include <gtest/gtest.h>
#include <warren/client.hpp>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace warren::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 3;
constexpr int kInFlight = 32;
constexpr int kConsumers = 4;

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new PrivateCluster(); }
  static void TearDownTestSuite() {
    if (cluster_ != nullptr && ::testing::UnitTest::GetInstance()->failed_test_count() > 0) {
      std::fprintf(stderr, "\n--- RabbitMQ logs (a test failed) ---\n%s\n",
                   cluster_->log().c_str());
    }
    delete cluster_;
    cluster_ = nullptr;
  }
  void TearDown() override {
    // Each test starts with every node up.
    for (int node = 1; node <= kNodes; ++node) {
      if (!cluster_->running(node)) cluster_->restart(node);
    }
  }

  static PrivateCluster& cluster() { return *cluster_; }

  // warrend serving `queue` (quorum) with every node listed.
  static std::string yaml(const std::string& queue) {
    std::string text =
        daemonYaml(cluster().port(1), "  - name: " + queue + "\n    handler: sum\n    consumers: " +
                                          std::to_string(kConsumers) + "\n    type: quorum\n");
    const auto at = text.find("  url: ");
    std::string urls = "  url:\n";
    for (int node = 1; node <= kNodes; ++node) urls += "    - " + cluster().url(node) + "\n";
    text.replace(at, text.find('\n', at) + 1 - at, urls);
    return text;
  }

  // The node (1..3) of the last "on amqp://127.0.0.1:PORT" in warrend's log.
  static int consumersNode(const RunningDaemon& daemon) {
    const std::string log = daemon.log().text();
    const std::string marker = " on amqp://127.0.0.1:";
    const auto at = log.rfind(marker);
    if (at == std::string::npos) return 0;
    const int port = std::stoi(log.substr(at + marker.size()));
    for (int node = 1; node <= kNodes; ++node) {
      if (cluster().port(node) == port) return node;
    }
    return 0;
  }

  // The node (1..3) the client's connection is on (its connection_name).
  // list_connections lists the whole cluster's, each with its node.
  static int clientNode() {
    for (int node = 1; node <= kNodes; ++node) {
      if (!cluster().running(node)) continue;
      std::istringstream lines(
          cluster().ctl(node, "list_connections -q --no-table-headers pid client_properties"));
      for (std::string line; std::getline(lines, line);) {
        if (line.find("warren client") == std::string::npos) continue;
        // The pid names its node: <warren5672@localhost.1668.1234.0>
        const auto at = line.find('@');
        const auto open = line.find('<');
        if (at == std::string::npos || open == std::string::npos) return 0;
        return cluster().nodeIndex(line.substr(open + 1, line.find('.', at) - open - 1));
      }
      return 0;
    }
    return 0;
  }

  // A client connected to the nodes listed (space-separated URLs).
  static std::unique_ptr<Client> clientOf(const std::vector<int>& nodes) {
    ClientOptions options;
    for (const int node : nodes) options.broker_url += cluster().url(node) + " ";
    options.default_timeout = 30s;
    return std::make_unique<Client>(options);
  }

  static std::vector<int> nodesBut(int excluded) {
    std::vector<int> nodes;
    for (int node = 1; node <= kNodes; ++node) {
      if (node != excluded) nodes.push_back(node);
    }
    return nodes;
  }

  // Nothing ready, nothing unacked: every request of the run was settled.
  static void expectNothingStranded(const std::string& queue) {
    std::string state;
    EXPECT_TRUE(eventually(
        [&] {
          state = cluster().queueState(queue);
          return state.starts_with("0 0 ");
        },
        30s))
        << queue << ": " << state;
  }

  static void expectEveryCallAccountedFor(const LoadTally& tally) {
    std::fprintf(stderr, "tally: %s\n", tally.describe().c_str());
    EXPECT_EQ(tally.wrong, 0U) << tally.describe();
    EXPECT_EQ(tally.duplicate, 0U) << tally.describe();
    EXPECT_EQ(tally.unfinished, 0U) << tally.describe();
    EXPECT_EQ(tally.answered + tally.failedTotal(), tally.sent) << tally.describe();
  }

  static PrivateCluster* cluster_;
};

PrivateCluster* ClusterTest::cluster_ = nullptr;

TEST_F(ClusterTest, ConnectionsSpreadOverTheNodes) {
  // Three queues on three nodes: consecutive queues open on consecutive nodes.
  std::string queues;
  for (const char* name : {"spread_a", "spread_b", "spread_c"}) {
    queues += "  - name: " + std::string(name) + "\n    handler: sum\n    type: quorum\n";
  }
  std::string text = yaml("spread_unused");
  text.replace(text.find("queues:\n"), std::string::npos, "queues:\n" + queues);
  RunningDaemon daemon(text);
  const std::string log = daemon.log().text();
  for (int node = 1; node <= kNodes; ++node) {
    EXPECT_NE(log.find(" on amqp://127.0.0.1:" + std::to_string(cluster().port(node))),
              std::string::npos)
        << "no queue on node " << node << "\n"
        << log;
  }
}

TEST_F(ClusterTest, KillingTheConsumersNodeLosesNoRequest) {
  RunningDaemon daemon(yaml("cq_consumers"));
  const int victim = consumersNode(daemon);
  ASSERT_NE(victim, 0) << daemon.log().text();
  auto client = clientOf(nodesBut(victim));  // the caller's node survives
  SteadyLoad load(*client, "cq_consumers", kInFlight, 30s);
  ASSERT_TRUE(load.waitAnswered(500, 30s)) << load.tally().describe();

  const auto killed_at = Clock::now();
  cluster().kill(victim);
  ASSERT_TRUE(daemon.log().waitFor("consuming again after", 10s)) << daemon.log().text();
  EXPECT_LE(Clock::now() - killed_at, 10s);
  const int survivor = consumersNode(daemon);
  EXPECT_NE(survivor, victim);
  EXPECT_NE(survivor, 0);
  ASSERT_TRUE(load.waitAnswered(load.tally().answered + 500, 30s)) << load.tally().describe();

  cluster().restart(victim);
  ASSERT_TRUE(load.waitAnswered(load.tally().answered + 200, 30s)) << load.tally().describe();
  const LoadTally tally = load.stop();
  expectEveryCallAccountedFor(tally);
  // The caller's node stayed up: every request was answered.
  EXPECT_EQ(tally.failedTotal(), 0U) << tally.describe();
  expectNothingStranded("cq_consumers");
}

TEST_F(ClusterTest, KillingTheQueueLeaderLosesNoRequest) {
  RunningDaemon daemon(yaml("cq_leader"));
  const std::string leader = cluster().leaderOf("cq_leader");
  const int victim = cluster().nodeIndex(leader);
  ASSERT_NE(victim, 0) << leader;
  auto client = clientOf(nodesBut(victim));
  SteadyLoad load(*client, "cq_leader", kInFlight, 30s);
  ASSERT_TRUE(load.waitAnswered(500, 30s)) << load.tally().describe();

  cluster().kill(victim);
  // A new leader is elected among the two survivors, and calls go on.
  std::string now_leader;
  EXPECT_TRUE(eventually(
      [&] {
        now_leader = cluster().leaderOf("cq_leader");
        return !now_leader.empty() && now_leader != leader;
      },
      30s))
      << now_leader;
  ASSERT_TRUE(load.waitAnswered(load.tally().answered + 500, 30s)) << load.tally().describe();
  if (consumersNode(daemon) == victim) {
    FAIL() << "warrend still names the killed node\n" << daemon.log().text();
  }

  cluster().restart(victim);
  ASSERT_TRUE(load.waitAnswered(load.tally().answered + 200, 30s)) << load.tally().describe();
  const LoadTally tally = load.stop();
  expectEveryCallAccountedFor(tally);
  EXPECT_EQ(tally.failedTotal(), 0U) << tally.describe();
  expectNothingStranded("cq_leader");
}

TEST_F(ClusterTest, TheClientFailsOverToAnotherNode) {
  auto client = clientOf({1, 2, 3});
  const int victim = clientNode();
  ASSERT_NE(victim, 0);
  // The hardest case: the client's node also leads the quorum queue, so
  // the kill takes its connection and the queue's leader at once. A quorum
  // queue's leader starts on the node that declared it.
  TestClient(cluster().port(victim))
      .declareQueue("cq_client", {{"x-queue-type", std::string("quorum")}}, /*durable=*/true);
  std::string leader;
  ASSERT_TRUE(eventually(
      [&] {
        leader = cluster().leaderOf("cq_client");
        return !leader.empty();
      },
      30s));
  ASSERT_EQ(cluster().nodeIndex(leader), victim) << leader;
  RunningDaemon daemon(yaml("cq_client"));
  SteadyLoad load(*client, "cq_client", kInFlight, 30s);
  ASSERT_TRUE(load.waitAnswered(300, 30s)) << load.tally().describe();

  cluster().kill(victim);
  // The calls in flight fail with a clear error; the next ones reconnect to
  // a surviving node and are answered, also when the killed node led the
  // quorum queue: the client publishes with confirms, so what it sends
  // while a new leader is elected is resent to it, not lost.
  ASSERT_TRUE(load.waitAnswered(load.tally().answered + 500, 30s)) << load.tally().describe();
  EXPECT_NE(clientNode(), victim);
  EXPECT_EQ(client->stats().connects, 2U);

  cluster().restart(victim);
  const LoadTally tally = load.stop();
  expectEveryCallAccountedFor(tally);
  // Every failure is one the caller can act on at once: the connection was
  // lost with the call in flight, at most one window of calls. None timed
  // out (a lost request would).
  for (const auto& [status, count] : tally.failed) {
    EXPECT_TRUE(status == CallStatus::kConnectionLost || status == CallStatus::kNotConnected)
        << tally.describe();
  }
  EXPECT_LE(tally.failedTotal(), static_cast<std::uint64_t>(kInFlight)) << tally.describe();
  expectNothingStranded("cq_client");
}

}  // namespace
}  // namespace warren::test
