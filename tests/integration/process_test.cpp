// The warrend binary as an operator runs it: arguments, exit codes, signals.
#include "child_process.h"
#include "daemon_harness.h"
#include "fifo_gate.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

namespace warren::test {
namespace {

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

// A config file in a fresh temporary directory.
class ConfigFile {
 public:
  ConfigFile(const std::string& name, const std::string& yaml) {
    std::string templ = (std::filesystem::temp_directory_path() / "warren-cfg-XXXXXX").string();
    dir_ = ::mkdtemp(templ.data());
    std::ofstream(path()) << yaml;
    name_ = name;
    std::filesystem::rename(dir_ / "tmp.yaml", path());
  }
  ~ConfigFile() { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / (name_.empty() ? "tmp.yaml" : name_)).string(); }

 private:
  std::filesystem::path dir_;
  std::string name_;
};

std::unique_ptr<ChildProcess> warrend(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv{WARREND_BINARY};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return std::make_unique<ChildProcess>(argv);
}

int exitCodeOf(const std::vector<std::string>& arguments, std::string* output = nullptr) {
  auto process = warrend(arguments);
  const auto code = process->waitExit(std::chrono::seconds(30));
  if (output != nullptr) *output = process->output();
  return code.value_or(-1);
}

TEST(Warrend, PrintsVersionAndHelp) {
  std::string output;
  EXPECT_EQ(exitCodeOf({"--version"}, &output), 0);
  EXPECT_EQ(output, std::string("warrend ") + WARREN_VERSION + "\n");
  EXPECT_EQ(exitCodeOf({"--help"}, &output), 0);
  EXPECT_NE(output.find("--config"), std::string::npos);
  EXPECT_EQ(exitCodeOf({"--no-such-flag"}, &output), 2);
}

TEST(Warrend, RefusesABrokenConfigNamingFileLineAndKey) {
  const ConfigFile config("broken.yaml", "broker:\n  url: amqp://localhost\n  nope: 1\n");
  std::string output;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &output), 78);
  EXPECT_NE(output.find("broken.yaml:3:3: broker.nope: unknown key"), std::string::npos) << output;
}

TEST(Warrend, RefusesAMissingPluginNamingTheHandlerLine) {
  const ConfigFile config("missing.yaml", daemonYaml(broker().port(),
                                                     "  - name: q\n    handler: nope\n"));
  std::string output;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &output), 78);
  EXPECT_NE(output.find("missing.yaml:"), std::string::npos) << output;
  EXPECT_NE(output.find(": queues[0].handler: "), std::string::npos) << output;
  EXPECT_NE(output.find("nope.so"), std::string::npos) << output;
  EXPECT_NE(output.find("does not exist"), std::string::npos) << output;
}

TEST(Warrend, RefusesAFileThatIsNotAWarrenPlugin) {
  const ConfigFile config("notplugin.yaml",
                          daemonYaml(broker().port(), "  - name: q\n    handler: no_entry\n", "",
                                     WARREN_FIXTURE_PLUGIN_DIR));
  std::string output;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &output), 78);
  EXPECT_NE(output.find(": queues[0].handler: "), std::string::npos) << output;
  EXPECT_NE(output.find("is not a warren plugin"), std::string::npos) << output;
}

TEST(Warrend, RefusesOptionsThePluginRejectsNamingTheOptionLine) {
  const ConfigFile config("options.yaml",
                          daemonYaml(broker().port(),
                                     "  - name: q\n    handler: sum\n    options:\n"
                                     "      precision: 3\n"));
  std::string output;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &output), 78);
  EXPECT_NE(output.find(": queues[0].options.precision: "), std::string::npos) << output;
  EXPECT_NE(output.find("unknown option 'precision'"), std::string::npos) << output;
}

TEST(Warrend, KeepsRunningWhileTheBrokerIsUnreachableAndStopsOnSigterm) {
  const ConfigFile config("unreachable.yaml",
                          daemonYaml(freeLoopbackPort(), "  - name: q\n    handler: sum\n"));
  auto process = warrend({"--config", config.path()});
  ASSERT_TRUE(process->waitForOutput("(attempt 2)", std::chrono::seconds(20))) << process->output();
  EXPECT_FALSE(process->waitExit(std::chrono::milliseconds(0)));
  process->signal(SIGTERM);
  EXPECT_EQ(process->waitExit(std::chrono::seconds(20)), 0) << process->output();
}

TEST(Warrend, OnSigtermFinishesTheRequestInFlightRepliesAndExitsZero) {
  Gate gate;
  const ConfigFile config(
      "slow.yaml", daemonYaml(broker().port(),
                              "  - name: slow_term\n    handler: gate\n    consumers: 2\n" +
                                  gate.options(),
                              "", WARREN_FIXTURE_PLUGIN_DIR));
  auto process = warrend({"--config", config.path()});
  ASSERT_TRUE(process->waitForOutput("consuming 'slow_term'", std::chrono::seconds(30)))
      << process->output();
  TestClient client(broker().port());
  client.send("slow_term", "in flight", "term-1");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10)));
  process->signal(SIGTERM);
  ASSERT_TRUE(process->waitForOutput("draining", std::chrono::seconds(10))) << process->output();
  // Taking no new requests: one sent now waits in the queue for the next warrend.
  client.send("slow_term", "echo:later", "term-2");
  EXPECT_FALSE(process->waitExit(std::chrono::milliseconds(0)));
  gate.open();
  auto reply = client.receive(std::chrono::seconds(10));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->correlation_id, "term-1");
  EXPECT_EQ(reply->body, "in flight");
  EXPECT_EQ(process->waitExit(std::chrono::seconds(30)), 0) << process->output();
  EXPECT_NE(process->output().find("stopped cleanly"), std::string::npos);
  // The late request is still in the queue, ready, unacked by nobody.
  EXPECT_EQ(broker().queueState("slow_term"), "1 0 0");
  client.deleteQueue("slow_term");
}

}  // namespace
}  // namespace warren::test
