// SPDX-License-Identifier: Apache-2.0
// warren-bench as a user runs it: the rate it reports is that of correct
// answers, and a run in which every call fails reports none.
#include "child_process.h"
#include "daemon_harness.h"
#include "private_broker.h"

#include <gtest/gtest.h>

#include <regex>

namespace warren::test {
namespace {

struct ToolRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

ToolRun warrenBench(std::vector<std::string> arguments) {
  std::vector<std::string> argv{WARREN_BENCH_BINARY, "--broker",
                                "amqp://guest:guest@127.0.0.1:" +
                                    std::to_string(BrokerEnvironment::broker().port()) + "/%2f"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  ChildProcess bench(argv);
  ToolRun run;
  run.code = bench.waitExit(std::chrono::seconds(60)).value_or(-1);
  run.output = bench.output();
  return run;
}

// 10 calls to a queue nobody declared fail at once (the broker returns
// them): no "calls/s 20379.6" for them.
TEST(WarrenBench, ReportsNoRateWhenNoCallIsAnswered) {
  const ToolRun table = warrenBench({"--queue", "no_such_queue", "--calls", "10", "--warmup", "0"});
  EXPECT_EQ(table.code, 1) << table.output;
  EXPECT_NE(table.output.find("10 in "), std::string::npos) << table.output;
  EXPECT_NE(table.output.find(": 0 answered correctly, 10 failed"), std::string::npos)
      << table.output;
  EXPECT_NE(table.output.find("calls/s          none: no call was answered correctly"),
            std::string::npos)
      << table.output;
  EXPECT_EQ(table.output.find("latency (us)"), std::string::npos) << table.output;

  const ToolRun json =
      warrenBench({"--queue", "no_such_queue", "--calls", "10", "--warmup", "0", "--json"});
  EXPECT_EQ(json.code, 1) << json.output;
  EXPECT_NE(json.output.find("\"calls\":10,\"ok\":0,"), std::string::npos) << json.output;
  EXPECT_NE(json.output.find("\"calls_per_second\":null,"), std::string::npos) << json.output;
  EXPECT_NE(json.output.find("\"errors\":10,"), std::string::npos) << json.output;
}

TEST(WarrenBench, CountsTheRateOfCorrectAnswers) {
  RunningDaemon daemon(
      daemonYaml(BrokerEnvironment::broker().port(), "  - name: sum\n    handler: sum\n"));
  const ToolRun run =
      warrenBench({"--calls", "300", "--warmup", "20", "--concurrency", "8", "--json"});
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("\"calls\":300,\"ok\":300,"), std::string::npos) << run.output;
  std::smatch rate;
  ASSERT_TRUE(
      std::regex_search(run.output, rate, std::regex("\"calls_per_second\":([0-9]+\\.[0-9]),")))
      << run.output;
  EXPECT_GT(std::stod(rate[1]), 0.0);
  EXPECT_NE(run.output.find("\"errors\":0,\"timeouts\":0,\"wrong\":0,"), std::string::npos)
      << run.output;
}

}  // namespace
}  // namespace warren::test
