// SPDX-License-Identifier: Apache-2.0
// warren-bench and warren-call as a user runs them: the rate warren-bench
// reports is that of correct answers (none when every call fails);
// warren-call takes a body from a file and shows the reply with --verbose.
#include "child_process.h"
#include "daemon_harness.h"
#include "private_broker.h"

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>

#include "config_file.h"

namespace warren::test {
namespace {

struct ToolRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

ToolRun runTool(const char* binary, std::vector<std::string> arguments) {
  std::vector<std::string> argv{binary, "--broker",
                                "amqp://guest:guest@127.0.0.1:" +
                                    std::to_string(BrokerEnvironment::broker().port()) + "/%2f"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  ChildProcess tool(argv);
  ToolRun run;
  run.code = tool.waitExit(std::chrono::seconds(60)).value_or(-1);
  run.output = tool.output();
  return run;
}

ToolRun warrenBench(std::vector<std::string> arguments) {
  return runTool(WARREN_BENCH_BINARY, std::move(arguments));
}

ToolRun warrenCall(std::vector<std::string> arguments) {
  return runTool(WARREN_CALL_BINARY, std::move(arguments));
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// The digits and dots that follow `prefix` in `text` ("" when there are none).
std::string numberAfter(const std::string& text, const std::string& prefix) {
  const std::size_t at = text.find(prefix);
  if (at == std::string::npos) return "";
  const std::size_t from = at + prefix.size();
  std::size_t to = from;
  while (to < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[to])) != 0 || text[to] == '.')) {
    ++to;
  }
  return text.substr(from, to - from);
}

// Each --body-file is one call with the file's bytes; a failure is named by
// its file, and --verbose shows what came back.
TEST(WarrenCall, SendsAFileAsOneBodyAndShowsTheReplyWhenVerbose) {
  RunningDaemon daemon(
      daemonYaml(BrokerEnvironment::broker().port(), "  - name: sum\n    handler: sum\n"));
  const ConfigFile good("good.body", "40,2");
  const ConfigFile bad("bad.body", "1,x");
  const ToolRun run =
      warrenCall({"--verbose", "--body-file", good.path(), "--body-file", bad.path(), "sum"});
  EXPECT_EQ(run.code, 1) << run.output;
  EXPECT_TRUE(contains(run.output, "42\n")) << run.output;
  for (const std::string& line :
       {good.path() + ":   content_type: text/plain\n", good.path() + ":   body: 2 byte(s)\n",
        bad.path() + ":   header x-warren-error-code: invalid_argument\n",
        bad.path() + ":   header x-warren-error-message: second field is not an integer: 'x'\n",
        bad.path() + ": error reply invalid_argument: second field is not an integer: 'x'\n"}) {
    EXPECT_TRUE(contains(run.output, "warren-call: " + line)) << line << " in:\n" << run.output;
  }
  // "warren-call: FILE: reply after 0.812 ms"
  const std::string timing = "warren-call: " + good.path() + ": reply after ";
  const std::string millis = numberAfter(run.output, timing);
  EXPECT_TRUE(millis.size() >= 5 && millis[millis.size() - 4] == '.') << run.output;
  EXPECT_TRUE(contains(run.output, timing + millis + " ms\n")) << run.output;

  const ToolRun missing = warrenCall({"--body-file", "/nonexistent/body", "sum"});
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_TRUE(contains(missing.output,
                       "warren-call: --body-file /nonexistent/body: cannot open: No such file"))
      << missing.output;
  const ToolRun both = warrenCall({"--body-file", good.path(), "sum", "1,2"});
  EXPECT_EQ(both.code, 2) << both.output;
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
  const std::string rate = numberAfter(run.output, "\"calls_per_second\":");
  ASSERT_FALSE(rate.empty()) << run.output;
  EXPECT_TRUE(contains(run.output, "\"calls_per_second\":" + rate + ",")) << run.output;
  EXPECT_GT(std::stod(rate), 0.0);
  EXPECT_NE(run.output.find("\"errors\":0,\"timeouts\":0,\"wrong\":0,"), std::string::npos)
      << run.output;
}

}  // namespace
}  // namespace warren::test
