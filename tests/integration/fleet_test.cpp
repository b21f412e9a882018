// SPDX-License-Identifier: Apache-2.0
// Several warrend processes serving the same queues, as a team runs them
// behind one broker: a rolling restart under steady load loses nothing.
#include "child_process.h"
#include "config_file.h"
#include "daemon_harness.h"
#include "private_broker.h"
#include "steady_load.h"

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

std::unique_ptr<ChildProcess> startWarrend(const ConfigFile& config) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{WARREND_BINARY, "--config", config.path()});
}

TEST(Fleet, ARollingRestartUnderLoadFailsNoCall) {
  constexpr int kInstances = 3;
  const ConfigFile config(
      "fleet.yaml",
      daemonYaml(broker().port(), "  - name: fleet\n    handler: sum\n    consumers: 2\n"));
  std::vector<std::unique_ptr<ChildProcess>> instances;
  for (int i = 0; i < kInstances; ++i) {
    instances.push_back(startWarrend(config));
    ASSERT_TRUE(instances.back()->waitForOutput("consuming 'fleet'", 30s))
        << instances.back()->output();
  }

  ClientOptions options;
  options.broker_url = broker().url();
  Client client(options);
  SteadyLoad load(client, "fleet", 32, 20s);
  std::uint64_t answered = 0;
  ASSERT_TRUE(load.waitAnswered(answered += 500, 30s)) << load.tally().describe();

  for (int i = 0; i < kInstances; ++i) {
    SCOPED_TRACE("instance " + std::to_string(i));
    instances[i]->signal(SIGTERM);
    EXPECT_EQ(instances[i]->waitExit(60s), 0) << instances[i]->output();
    // The others carry the load meanwhile.
    ASSERT_TRUE(load.waitAnswered(load.tally().answered + 300, 30s)) << load.tally().describe();
    instances[i] = startWarrend(config);
    ASSERT_TRUE(instances[i]->waitForOutput("consuming 'fleet'", 30s)) << instances[i]->output();
    ASSERT_TRUE(load.waitAnswered(load.tally().answered + 300, 30s)) << load.tally().describe();
  }

  const LoadTally tally = load.stop();
  EXPECT_EQ(tally.failedTotal(), 0U) << tally.describe();
  EXPECT_EQ(tally.wrong, 0U) << tally.describe();
  EXPECT_EQ(tally.duplicate, 0U) << tally.describe();
  EXPECT_EQ(tally.unfinished, 0U) << tally.describe();
  EXPECT_EQ(tally.answered, tally.sent) << tally.describe();
  for (auto& instance : instances) {
    instance->signal(SIGTERM);
    EXPECT_EQ(instance->waitExit(60s), 0) << instance->output();
  }
  EXPECT_EQ(broker().queueState("fleet"), "0 0 0");
}

}  // namespace
}  // namespace warren::test
