// SPDX-License-Identifier: Apache-2.0
// An idle warrend, and an idle client, cost next to no CPU: every thread
// blocks in poll() until input, a stop request or its heartbeat tick.
//
// The bound separates a spin from idle, it is not a timing threshold: one
// spinning thread costs ~100 % of a core (a 3 s window: ~3 CPU-seconds,
// the five consumers of a queue together both cores), an idle process a few
// milliseconds. Both run in this process, against a real RabbitMQ.
#include "daemon_harness.h"
#include "private_broker.h"

#include <warren/client.hpp>

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <thread>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

// A tenth of one core over the window: idle is ~0, one spinning thread ~1.
constexpr double kIdleCoreShare = 0.1;
constexpr auto kWindow = 3s;

double processCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// CPU-seconds this process uses while nothing happens for kWindow. The
// window is a measurement, not a wait for an event: nothing is to happen.
double cpuWhileIdle() {
  const double before = processCpuSeconds();
  std::this_thread::sleep_for(kWindow);
  return processCpuSeconds() - before;
}

TEST(Idle, ADaemonWithFiveConsumersAndNoTrafficUsesNoCpu) {
  // Heartbeat 2 s: every consumer wakes up a few times in the window.
  RunningDaemon daemon(daemonYaml(broker().port(),
                                  "  - name: idle_sum\n    handler: sum\n    consumers: 5\n",
                                  "  heartbeat: 2s\n"));
  const double used = cpuWhileIdle();
  EXPECT_LT(used, kIdleCoreShare * std::chrono::duration<double>(kWindow).count())
      << "an idle daemon with 5 consumers used " << used << " CPU-seconds in "
      << std::chrono::duration<double>(kWindow).count() << " s: a consumer is busy-waiting";
  // Still serving after the quiet spell: the idle wait wakes up for input.
  ASSERT_TRUE(daemon.supervisor().readiness().ready);
  ClientOptions options;
  options.broker_url = broker().url();
  Client client(options);
  EXPECT_EQ(client.call("idle_sum", "20,22").body, "42");
  EXPECT_TRUE(daemon.stop());
}

TEST(Idle, AConnectedClientWithNoCallsUsesNoCpu) {
  ClientOptions options;
  options.broker_url = broker().url();
  options.heartbeat = 2s;
  Client client(options);
  const double used = cpuWhileIdle();
  EXPECT_LT(used, kIdleCoreShare * std::chrono::duration<double>(kWindow).count())
      << "an idle client used " << used << " CPU-seconds in "
      << std::chrono::duration<double>(kWindow).count() << " s: its I/O thread is busy-waiting";
  EXPECT_EQ(client.stats().connects, 1u);
}

}  // namespace
}  // namespace warren::test
