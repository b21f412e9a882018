// SPDX-License-Identifier: Apache-2.0
// The Python caller the project ships (examples/python/sum_client.py, on
// Debian's python3-pika) against warrend, as a Python team would run it.
#include "child_process.h"
#include "daemon_harness.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace warren::test {
namespace {

// The one broker of this executable (tools_test.cpp uses it too).
const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

const std::string kExample = std::string(WARREN_SOURCE_DIR) + "/examples/python";

struct ClientRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

ClientRun sumClient(std::vector<std::string> arguments, int port) {
  std::vector<std::string> argv{"/usr/bin/python3", kExample + "/sum_client.py", "--url",
                                "amqp://guest:guest@127.0.0.1:" + std::to_string(port) + "/%2f"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  ChildProcess client(argv);
  ClientRun run;
  run.code = client.waitExit(std::chrono::seconds(60)).value_or(-1);
  run.output = client.output();
  return run;
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(PythonExample, MakesTenSumsAtOnceAndPrintsThemInOrder) {
  RunningDaemon daemon(daemonYaml(broker().port(), "  - name: sum\n    handler: sum\n"));
  std::vector<std::string> bodies;
  std::string expected;
  for (int i = 0; i < 10; ++i) {
    bodies.push_back(std::to_string(i * 7) + "," + std::to_string(-i));
    expected += "sum(" + std::to_string(i * 7) + ", " + std::to_string(-i) +
                ")=" + std::to_string(i * 6) + "\n";
  }
  const ClientRun run = sumClient(bodies, broker().port());
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(run.output, expected);
  daemon.stop();  // counted after the ack: read once the consumers are gone
  EXPECT_EQ(daemon.counters("sum").replied, 10u);
}

TEST(PythonExample, WithoutBodiesMakesTheSeedsTenRandomCalls) {
  RunningDaemon daemon(daemonYaml(broker().port(), "  - name: sum\n    handler: sum\n"));
  const ClientRun run = sumClient({}, broker().port());
  EXPECT_EQ(run.code, 0) << run.output;
  int answers = 0;
  for (std::size_t at = run.output.find("sum("); at != std::string::npos;
       at = run.output.find("sum(", at + 1)) {
    long long x = 0, y = 0, sum = 0;
    ASSERT_EQ(std::sscanf(run.output.c_str() + at, "sum(%lld, %lld)=%lld", &x, &y, &sum), 3)
        << run.output;
    EXPECT_EQ(x + y, sum);
    ++answers;
  }
  EXPECT_EQ(answers, 10) << run.output;
}

// An error reply is told by its header: the other calls are still answered,
// and the exit code is warren-call's.
TEST(PythonExample, ReportsAnErrorReplyByItsCodeAndStillPrintsTheOthers) {
  RunningDaemon daemon(daemonYaml(broker().port(), "  - name: sum\n    handler: sum\n"));
  const ClientRun run = sumClient({"1,2", "1,x", "3,4"}, broker().port());
  EXPECT_EQ(run.code, 1) << run.output;
  EXPECT_TRUE(contains(run.output, "sum(1, 2)=3\n")) << run.output;
  EXPECT_TRUE(contains(run.output, "sum(3, 4)=7\n")) << run.output;
  EXPECT_TRUE(contains(run.output,
                       "sum_client: 1,x: error reply invalid_argument: second field "
                       "is not an integer: 'x'\n"))
      << run.output;
}

TEST(PythonExample, ReportsAMissingQueueAtOnceAndAnUnservedOneAtItsTimeout) {
  const ClientRun missing = sumClient({"--queue", "no_such_queue", "1,2"}, broker().port());
  EXPECT_EQ(missing.code, 5) << missing.output;
  EXPECT_TRUE(contains(missing.output, "1,2: no such queue: no queue 'no_such_queue'"))
      << missing.output;

  TestClient admin(broker().port());
  admin.declareQueue("unserved");
  const ClientRun unserved =
      sumClient({"--queue", "unserved", "--timeout", "0.5", "1,2"}, broker().port());
  EXPECT_EQ(unserved.code, 3) << unserved.output;
  EXPECT_TRUE(contains(unserved.output, "1,2: timeout: no reply within 0.5 s")) << unserved.output;
  admin.deleteQueue("unserved");
}

TEST(PythonExample, ReportsABrokerThatDoesNotAnswer) {
  const int port = freeLoopbackPort();
  const ClientRun run = sumClient({"1,2"}, port);
  EXPECT_EQ(run.code, 4) << run.output;
  EXPECT_TRUE(contains(run.output, "cannot connect, or the connection was lost")) << run.output;
}

}  // namespace
}  // namespace warren::test
