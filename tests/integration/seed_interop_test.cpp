// SPDX-License-Identifier: Apache-2.0
// The seed's Python client (../shared/seed/python/client.py), unchanged,
// against warrend, and its server against warren-call. The client is fixed
// to localhost:5672, so this executable's broker takes that port.
//
// The seed lives beside the clone, not in it: a clone without it skips these
// tests (naming what is missing), unless CI=true, where it must be there.
#include "child_process.h"
#include "daemon_harness.h"
#include "private_broker.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace warren::test {
namespace {

constexpr int kSeedPort = 5672;
const std::string kSeedDir = std::string(WARREN_SOURCE_DIR) + "/../shared/seed/python";

bool seedPresent() {
  return std::filesystem::exists(kSeedDir + "/client.py") &&
         std::filesystem::exists(kSeedDir + "/server.py");
}

bool inCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Skips the test without the seed (fails it under CI=true).
#define REQUIRE_SEED()                                                       \
  do {                                                                       \
    if (!seedPresent()) {                                                    \
      if (inCi()) FAIL() << "CI=true and the seed is missing: " << kSeedDir; \
      GTEST_SKIP() << "the seed is not beside this clone: " << kSeedDir      \
                   << "/{client,server}.py not found";                       \
    }                                                                        \
  } while (false)

class SeedEnvironment : public BrokerEnvironment {
 public:
  SeedEnvironment() : BrokerEnvironment(kSeedPort) {}
  void SetUp() override {
    if (!seedPresent()) return;  // no broker: every test skips (or fails)
    if (portInUse(kSeedPort)) {
      GTEST_FAIL() << "port 5672 is taken by another broker; the seed client only talks to "
                      "localhost:5672, so stop that broker to run this test";
    }
    BrokerEnvironment::SetUp();
  }
};

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new SeedEnvironment());

// Runs the seed's client unchanged against a warrend serving `sum`: its 10
// calls each answered with the right sum.
void expectTheSeedClientsTenSums(RunningDaemon& daemon, const std::string& served_by) {
  const auto started = std::chrono::steady_clock::now();
  ChildProcess client({"/usr/bin/python3", "client.py"}, kSeedDir);
  const auto code = client.waitExit(std::chrono::seconds(60));
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  ASSERT_EQ(code, 0) << client.output();
  // Each call prints "[x] [TID=n] sum(x, y)=result" (threads may interleave
  // lines, never the characters of one print).
  const std::string output = client.output();
  int answers = 0;
  for (std::size_t at = output.find("sum("); at != std::string::npos;
       at = output.find("sum(", at + 1)) {
    long long x = 0, y = 0, sum = 0;
    int consumed = 0;
    if (std::sscanf(output.c_str() + at, "sum(%lld, %lld)=%lld%n", &x, &y, &sum, &consumed) != 3) {
      continue;  // the line announcing the call, without its result
    }
    EXPECT_EQ(x + y, sum) << output.substr(at, static_cast<std::size_t>(consumed));
    ++answers;
  }
  EXPECT_EQ(answers, 10) << output;
  std::printf("seed client: 10 calls answered by %s in %lld ms (python start-up included)\n",
              served_by.c_str(), static_cast<long long>(elapsed.count()));
  daemon.stop();  // counted after the ack: read once the consumers are gone
  EXPECT_EQ(daemon.counters("sum").replied, 10u);
}

TEST(SeedInterop, TheSeedClientGetsItsTenSumsFromWarrend) {
  REQUIRE_SEED();
  RunningDaemon daemon(daemonYaml(kSeedPort, "  - name: sum\n    handler: sum\n"));
  expectTheSeedClientsTenSums(daemon, "the sum plugin");
}

// The same client, served by the Python exec handler of examples/exec-python
// (docs/exec-handlers.md) through warrend: the handler protocol carries the
// seed's sum protocol unchanged.
TEST(SeedInterop, TheSeedClientGetsItsTenSumsFromThePythonExecExample) {
  REQUIRE_SEED();
  const std::string example = std::string(WARREN_SOURCE_DIR) + "/examples/exec-python";
  RunningDaemon daemon(daemonYaml(kSeedPort,
                                  "  - name: sum\n    handler: exec\n"
                                  "    command: [python3, sum_handler.py]\n"
                                  "    working_directory: " +
                                      example + "\n    consumers: 2\n"));
  expectTheSeedClientsTenSums(daemon, "examples/exec-python/sum_handler.py");
  EXPECT_EQ(daemon.counters("sum").worker_crashes, 0u);
}

// The other direction: warren's client against the seed's server.py,
// unchanged. Its 5 threads each sleep 2 s per request, so 10 calls at once
// take two rounds: about 4 s.
TEST(SeedInterop, WarrenCallGetsTenSumsFromTheSeedServer) {
  REQUIRE_SEED();
  ChildProcess server({"/usr/bin/python3", "-u", "server.py"}, kSeedDir);
  // Each of its 5 threads prints this once it consumes.
  ASSERT_TRUE(server.waitForOutput("Awaiting RPC requests", std::chrono::seconds(30), 5))
      << server.output();
  std::vector<std::string> argv{
      WARREN_CALL_BINARY, "--broker", "amqp://guest:guest@127.0.0.1:5672/%2f",
      "--parallel",       "10",       "sum"};
  std::vector<long long> expected;
  for (int i = 0; i < 10; ++i) {
    argv.push_back(std::to_string(i * 7) + "," + std::to_string(100 - i));
    expected.push_back(i * 7 + 100 - i);
  }
  const auto started = std::chrono::steady_clock::now();
  ChildProcess call(argv);
  const auto code = call.waitExit(std::chrono::seconds(60));
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  ASSERT_EQ(code, 0) << call.output();
  std::string expected_output;
  for (long long sum : expected) expected_output += std::to_string(sum) + "\n";
  EXPECT_EQ(call.output(), expected_output);
  std::printf("warren-call --parallel 10 against the seed server: %lld ms\n",
              static_cast<long long>(elapsed.count()));
  server.signal(SIGTERM);
  server.waitExit(std::chrono::seconds(10));
}

}  // namespace
}  // namespace warren::test
