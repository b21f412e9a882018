// SPDX-License-Identifier: Apache-2.0
// The warrend binary as an operator runs it: arguments, exit codes, signals.
#include "child_process.h"
#include "config_file.h"
#include "daemon_harness.h"
#include "fifo_gate.h"
#include "http_scrape.h"
#include "private_broker.h"
#include "rpc_client.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

namespace warren::test {
namespace {

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

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
  // Where an operator looks first: every exit code, the signals, the docs.
  for (const char* needle :
       {"Usage: warrend [OPTIONS]", "Exit status:", "\n  0 ", "\n  1 ", "\n  2 ", "\n  70 ",
        "\n  78 ", "Signals:", "SIGHUP", "SIGTERM", "warren.yaml(5)", "/usr/share/doc/warren"}) {
    EXPECT_NE(output.find(needle), std::string::npos) << needle << " in:\n" << output;
  }
  EXPECT_EQ(exitCodeOf({"--no-such-flag"}, &output), 2);
  EXPECT_EQ(exitCodeOf({"--check", "--check-config", "x.yaml"}, &output), 2);
  EXPECT_NE(output.find("--check excludes --check-config"), std::string::npos) << output;
}

// A metrics port another process holds: exit 1, as --help and
// docs/operations.md say, with the address and the reason.
TEST(Warrend, ExitsOneWhenItsMetricsPortIsTaken) {
  const int taken = freeLoopbackPort();
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(taken));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  const ConfigFile config(
      "taken.yaml",
      withMetrics(daemonYaml(broker().port(), "  - name: q\n    handler: sum\n"), taken));
  std::string output;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &output), 1) << output;
  EXPECT_NE(output.find("metrics.listen 127.0.0.1:" + std::to_string(taken) +
                        ": cannot listen: Address already in use"),
            std::string::npos)
      << output;
  ::close(holder);
}

TEST(Warrend, RefusesABrokenConfigNamingFileLineAndKey) {
  const ConfigFile config("broken.yaml", "broker:\n  url: amqp://localhost\n  nope: 1\n");
  std::string output;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &output), 78);
  EXPECT_NE(output.find("broken.yaml:3:3: broker.nope: unknown key"), std::string::npos) << output;
}

TEST(Warrend, RefusesAMissingPluginNamingTheHandlerLine) {
  const ConfigFile config("missing.yaml",
                          daemonYaml(broker().port(), "  - name: q\n    handler: nope\n"));
  std::string output;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &output), 78);
  EXPECT_NE(output.find("missing.yaml:"), std::string::npos) << output;
  EXPECT_NE(output.find(": queues[0].handler: "), std::string::npos) << output;
  EXPECT_NE(output.find("nope.so"), std::string::npos) << output;
  EXPECT_NE(output.find("does not exist"), std::string::npos) << output;
}

// An exec queue's program is looked up by --check-config (not started) and
// by a start, which refuses it the same way: exit 78 at the queue's line.
TEST(Warrend, CheckConfigAndStartRefuseAnExecProgramThatIsNotThere) {
  const ConfigFile config("exec.yaml", daemonYaml(broker().port(),
                                                  "  - name: q\n    handler: exec\n"
                                                  "    command: [no-such-handler-program, x]\n"));
  std::string checked;
  EXPECT_EQ(exitCodeOf({"--check-config", config.path()}, &checked), 78) << checked;
  EXPECT_NE(checked.find(": queues[0].command: 'no-such-handler-program' is not found in PATH"),
            std::string::npos)
      << checked;
  std::string started;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &started), 78) << started;
  EXPECT_NE(started.find(": queues[0].command: cannot start the handler's workers: "
                         "'no-such-handler-program' is not found in PATH"),
            std::string::npos)
      << started;
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
  const ConfigFile config("options.yaml", daemonYaml(broker().port(),
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

// logging.format: json: every line warrend writes, from start to stop, is
// one JSON object (checked by Python's json module, as a shipper would read
// it), and a queue's records carry the queue and plugin as fields.
TEST(Warrend, LogsOneJsonObjectPerLineWithTheQueueAndPlugin) {
  std::string yaml = daemonYaml(broker().port(), "  - name: json_q\n    handler: sum\n");
  yaml.replace(yaml.find("logging:\n"), 9, "logging:\n  format: json\n");
  const ConfigFile config("json.yaml", yaml);
  auto process = warrend({"--config", config.path()});
  ASSERT_TRUE(process->waitForOutput("consuming 'json_q'", std::chrono::seconds(30)))
      << process->output();
  TestClient client(broker().port());
  EXPECT_EQ(client.call("json_q", "20,22").body, "42");
  process->signal(SIGTERM);
  ASSERT_EQ(process->waitExit(std::chrono::seconds(20)), 0) << process->output();

  const ConfigFile log("warrend.log", process->output());
  ChildProcess check({"/usr/bin/python3", "-c",
                      "import json, sys\n"
                      "records = [json.loads(line) for line in open(sys.argv[1])]\n"
                      "assert records, 'no line'\n"
                      "for r in records:\n"
                      "    assert set(r) >= {'time', 'level', 'logger', 'message'}, r\n"
                      "queue = [r for r in records if r['logger'] == 'json_q']\n"
                      "assert queue and all(r['queue'] == 'json_q' and r['plugin'] == 'sum'"
                      " for r in queue), queue\n"
                      "assert any(r['message'].startswith('consuming') for r in queue), queue\n"
                      "assert all('queue' not in r for r in records if r['logger'] == 'warrend')\n"
                      "assert records[-1]['message'] == 'stopped cleanly', records[-1]\n"
                      "print(len(records), 'records')\n",
                      log.path()});
  EXPECT_EQ(check.waitExit(std::chrono::seconds(30)), 0) << check.output() << process->output();
}

TEST(Warrend, OnSigtermFinishesTheRequestInFlightRepliesAndExitsZero) {
  Gate gate;
  const ConfigFile config(
      "slow.yaml",
      daemonYaml(broker().port(),
                 "  - name: slow_term\n    handler: gate\n    consumers: 2\n" + gate.options(), "",
                 WARREN_FIXTURE_PLUGIN_DIR));
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

// The datagram socket systemd listens on for sd_notify() messages.
class NotifySocket {
 public:
  NotifySocket() {
    std::string templ = (std::filesystem::temp_directory_path() / "warren-notify-XXXXXX").string();
    dir_ = ::mkdtemp(templ.data());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path().c_str(), sizeof address.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      ADD_FAILURE() << "cannot bind " << path();
    }
  }
  ~NotifySocket() {
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  std::string path() const { return (dir_ / "notify").string(); }

  // Reads messages until one contains `needle`; false at the deadline.
  bool waitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd fd{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&fd, 1, static_cast<int>(left.count())) != 1) return false;
      char buffer[4096];
      const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) continue;
      messages_.emplace_back(buffer, static_cast<std::size_t>(got));
      if (messages_.back().find(needle) != std::string::npos) return true;
    }
  }
  // The state changes received so far, in order (READY=1, RELOADING=1,
  // STOPPING=1), without STATUS and WATCHDOG lines.
  std::vector<std::string> states() const {
    std::vector<std::string> states;
    for (const std::string& message : messages_) {
      for (const char* state : {"READY=1", "RELOADING=1", "STOPPING=1"}) {
        if (message.find(state) != std::string::npos) states.emplace_back(state);
      }
    }
    return states;
  }
  std::string all() const {
    std::string text;
    for (const std::string& message : messages_) text += "[" + message + "] ";
    return text;
  }

 private:
  std::filesystem::path dir_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

TEST(Warrend, CheckConfigAcceptsAGoodFileAndListsEveryErrorOfABadOne) {
  const ConfigFile good("good.yaml",
                        daemonYaml(broker().port(), "  - name: c\n    handler: sum\n"));
  std::string output;
  EXPECT_EQ(exitCodeOf({"--check-config", good.path()}, &output), 0) << output;
  EXPECT_NE(output.find(good.path() + ": configuration OK"), std::string::npos) << output;

  const ConfigFile bad("bad.yaml", daemonYaml(broker().port(),
                                              "  - name: c1\n    handler: no_such_plugin\n"
                                              "  - name: c2\n    handler: sum\n    options:\n"
                                              "      precision: 2\n"));
  EXPECT_EQ(exitCodeOf({"--check-config", bad.path()}, &output), 78) << output;
  EXPECT_NE(output.find(": queues[0].handler: "), std::string::npos) << output;
  EXPECT_NE(output.find(": queues[1].options.precision: "), std::string::npos) << output;
  EXPECT_NE(output.find("2 error(s)"), std::string::npos) << output;
}

// The error lines of `output` about `file` that start with `prefix`, without it.
std::vector<std::string> errorLines(const std::string& output, const std::string& prefix,
                                    const std::string& file) {
  std::vector<std::string> lines;
  std::istringstream stream(output);
  for (std::string line; std::getline(stream, line);) {
    const std::string start = prefix + file + ":";
    // "FILE:LINE:COLUMN: ...", not the "FILE: N error(s)" line.
    if (line.starts_with(start) && line.size() > start.size() &&
        std::isdigit(static_cast<unsigned char>(line[start.size()])) != 0) {
      lines.push_back(line.substr(prefix.size()));
    }
  }
  return lines;
}

// --check-config and a start refuse a file with the same list of errors: every
// mistake of the file, not only the first (the URL ones used to pass the check).
TEST(Warrend, CheckConfigAndStartReportTheSameEveryError) {
  const ConfigFile config("mistakes.yaml",
                          "broker:\n"
                          "  url: 'amqp://guest:guest@localhost:5672/%2f?heartbeat=5'\n"
                          "  heartbeat: 10\n"
                          "plugins:\n"
                          "  dir: /usr/lib/warren/plugins\n"
                          "loging:\n"
                          "  level: debug\n"
                          "queues:\n"
                          "  - name: sum\n"
                          "    handler: sum\n"
                          "    prefetch: 0\n"
                          "  - name: echo\n"
                          "    handler: ../echo\n"
                          "    consumers: many\n");
  std::string checked;
  EXPECT_EQ(exitCodeOf({"--check-config", config.path()}, &checked), 78) << checked;
  std::string started;
  EXPECT_EQ(exitCodeOf({"--config", config.path()}, &started), 78) << started;

  const std::vector<std::string> check_errors = errorLines(checked, "", config.path());
  ASSERT_EQ(check_errors.size(), 6U) << checked;
  EXPECT_NE(check_errors[0].find(":2:8: broker.url: "), std::string::npos) << checked;
  EXPECT_NE(check_errors[1].find(":3:14: broker.heartbeat: "), std::string::npos) << checked;
  EXPECT_NE(check_errors[2].find(":6:1: loging: unknown key"), std::string::npos) << checked;
  EXPECT_NE(check_errors[3].find(":11:15: queues[0].prefetch: "), std::string::npos) << checked;
  EXPECT_NE(check_errors[4].find(":13:14: queues[1].handler: "), std::string::npos) << checked;
  EXPECT_NE(check_errors[5].find(":14:16: queues[1].consumers: "), std::string::npos) << checked;
  EXPECT_NE(checked.find(config.path() + ": 6 error(s)"), std::string::npos) << checked;

  EXPECT_EQ(errorLines(started, "warrend: configuration error: ", config.path()), check_errors)
      << started;
  EXPECT_NE(started.find(config.path() + ": 6 error(s)"), std::string::npos) << started;
}

TEST(Warrend, TellsSystemdReadyReloadingWatchdogAndStoppingInOrder) {
  NotifySocket notify;
  const int metrics_port = freePort();
  const std::string one = "  - name: notify_one\n    handler: sum\n    consumers: 2\n";
  const ConfigFile config("notify.yaml",
                          withMetrics(daemonYaml(broker().port(), one), metrics_port));
  auto process = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/env", "NOTIFY_SOCKET=" + notify.path(),
                               "WATCHDOG_USEC=1000000", WARREND_BINARY, "--config", config.path()});
  ASSERT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(30))) << process->output();
  EXPECT_TRUE(notify.waitFor("WATCHDOG=1", std::chrono::seconds(5))) << notify.all();

  // A broken file: rejected, the running configuration stays.
  config.rewrite(withMetrics(
      daemonYaml(broker().port(), one + "  - name: notify_bad\n    handler: no_such_plugin\n"),
      metrics_port));
  process->signal(SIGHUP);
  ASSERT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(30))) << notify.all();
  EXPECT_TRUE(process->waitForOutput("reload rejected", std::chrono::seconds(5)));
  // A good one: a queue added.
  config.rewrite(withMetrics(
      daemonYaml(broker().port(), one + "  - name: notify_two\n    handler: sum\n"), metrics_port));
  process->signal(SIGHUP);
  ASSERT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(30))) << notify.all();
  EXPECT_TRUE(process->waitForOutput("reloaded: 1 added", std::chrono::seconds(5)))
      << process->output();
  // The reload starts the new queue's consumer; it declares the queue when it
  // connects, and a request sent before that would go nowhere.
  ASSERT_TRUE(process->waitForOutput("consuming 'notify_two'", std::chrono::seconds(30)))
      << process->output();
  TestClient client(broker().port());
  EXPECT_EQ(client.call("notify_two", "40,2").body, "42");
  const Scrape scrape = Scrape::of(metrics_port);
  EXPECT_EQ(scrape.value("warren_config_reloads_total", {{"result", "failure"}}), 1);
  EXPECT_EQ(scrape.value("warren_config_reloads_total", {{"result", "success"}}), 1);

  process->signal(SIGTERM);
  EXPECT_TRUE(notify.waitFor("STOPPING=1", std::chrono::seconds(10))) << notify.all();
  EXPECT_EQ(process->waitExit(std::chrono::seconds(30)), 0) << process->output();
  const std::vector<std::string> expected{"READY=1",     "RELOADING=1", "READY=1",
                                          "RELOADING=1", "READY=1",     "STOPPING=1"};
  EXPECT_EQ(notify.states(), expected) << notify.all();
  client.deleteQueue("notify_one");
  client.deleteQueue("notify_two");
}

TEST(Warrend, KeepsFeedingTheWatchdogAndTakesSigtermWhileAReloadDrainsAHeldHandler) {
  NotifySocket notify;
  Gate gate;
  const auto queue = [&gate](const std::string& name) {
    return "  - name: " + name + "\n    handler: gate\n    consumers: 1\n" + gate.options();
  };
  // A drain far longer than the watchdog interval (1 s) and than this test.
  const auto yaml = [](const std::string& queues) {
    return daemonYaml(broker().port(), queues, "", WARREN_FIXTURE_PLUGIN_DIR) +
           "shutdown:\n  drain_timeout: 300s\n";
  };
  const ConfigFile config("watchdog.yaml", yaml(queue("wd_held") + queue("wd_stays")));
  auto process = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/env", "NOTIFY_SOCKET=" + notify.path(),
                               "WATCHDOG_USEC=1000000", WARREND_BINARY, "--config", config.path()});
  ASSERT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(30))) << process->output();
  TestClient client(broker().port());
  client.send("wd_held", "held", "wd-1");
  ASSERT_TRUE(gate.waitEntered(std::chrono::seconds(10)));

  // The reload removes the queue whose handler is held: it returns at once,
  // and the queue drains in the background.
  config.rewrite(yaml(queue("wd_stays")));
  process->signal(SIGHUP);
  ASSERT_TRUE(notify.waitFor("RELOADING=1", std::chrono::seconds(10))) << notify.all();
  ASSERT_TRUE(notify.waitFor("READY=1", std::chrono::seconds(10)))
      << "the reload waited for the drain: " << notify.all();
  // Pings at the watchdog's half interval go on meanwhile.
  for (int ping = 0; ping < 3; ++ping) {
    ASSERT_TRUE(notify.waitFor("WATCHDOG=1", std::chrono::seconds(2))) << notify.all();
  }
  // And a stop is taken while the handler is still held.
  process->signal(SIGTERM);
  ASSERT_TRUE(notify.waitFor("STOPPING=1", std::chrono::seconds(5))) << notify.all();
  EXPECT_TRUE(notify.waitFor("WATCHDOG=1", std::chrono::seconds(2))) << notify.all();
  EXPECT_FALSE(process->waitExit(std::chrono::milliseconds(0)));
  // Let the handler go: its reply is sent, and warrend exits cleanly.
  gate.open();
  auto reply = client.receive(std::chrono::seconds(10));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->correlation_id, "wd-1");
  EXPECT_EQ(reply->body, "held");
  EXPECT_EQ(process->waitExit(std::chrono::seconds(30)), 0) << process->output();
  EXPECT_NE(process->output().find("queue 'wd_held' (gate 1.0.0): retired"), std::string::npos)
      << process->output();
  EXPECT_NE(process->output().find("stopped cleanly"), std::string::npos);
  client.deleteQueue("wd_held");
  client.deleteQueue("wd_stays");
}

TEST(Warrend, APluginWritingToAClosedPipeGetsEpipeAndTheDaemonLives) {
  Gate gate;
  const ConfigFile config(
      "sigpipe.yaml",
      daemonYaml(broker().port(),
                 "  - name: sigpipe_q\n    handler: gate\n    consumers: 1\n" + gate.options(), "",
                 WARREN_FIXTURE_PLUGIN_DIR));
  auto process = warrend({"--config", config.path()});
  ASSERT_TRUE(process->waitForOutput("consuming 'sigpipe_q'", std::chrono::seconds(30)))
      << process->output();
  TestClient client(broker().port());
  client.send("sigpipe_q", "sigpipe", "pipe-1");
  auto reply = client.receive(std::chrono::seconds(10));
  ASSERT_TRUE(reply) << "no reply; warrend: " << process->output();
  EXPECT_EQ(reply->body, "write: Broken pipe");
  EXPECT_FALSE(process->waitExit(std::chrono::milliseconds(0)));
  process->signal(SIGTERM);
  EXPECT_EQ(process->waitExit(std::chrono::seconds(30)), 0) << process->output();
  client.deleteQueue("sigpipe_q");
}

// exit(0) from a plugin must not look like a clean stop: Restart=on-failure
// would then leave every queue down.
TEST(Warrend, AnExitItDidNotAskForEndsWithAFailureStatusNamingThePlugin) {
  Gate gate;
  const ConfigFile config(
      "exits.yaml",
      daemonYaml(broker().port(),
                 "  - name: exit_q\n    handler: gate\n    consumers: 1\n" + gate.options(), "",
                 WARREN_FIXTURE_PLUGIN_DIR));
  auto process = warrend({"--config", config.path()});
  ASSERT_TRUE(process->waitForOutput("consuming 'exit_q'", std::chrono::seconds(30)))
      << process->output();
  TestClient client(broker().port());
  client.send("exit_q", "exit:0", "exit-1");
  EXPECT_EQ(process->waitExit(std::chrono::seconds(30)), 70) << process->output();
  EXPECT_NE(process->output().find("exit() was called while the handler of queue 'exit_q' "
                                   "(plugin 'gate') ran"),
            std::string::npos)
      << process->output();
  client.deleteQueue("exit_q");
}

}  // namespace
}  // namespace warren::test
