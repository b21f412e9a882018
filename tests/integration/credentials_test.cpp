// SPDX-License-Identifier: Apache-2.0
// Credentials kept out of URLs and command lines: warrend reads the password
// from a file or a systemd credential, warren-call from a file, and the
// password never shows in a log line or an error.
#include "child_process.h"
#include "config_file.h"
#include "daemon_harness.h"
#include "private_broker.h"
#include "scoped_env.h"

#include <gtest/gtest.h>
#include <warren/client.hpp>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

const auto* const kBroker = ::testing::AddGlobalTestEnvironment(new BrokerEnvironment());

PrivateBroker& broker() { return BrokerEnvironment::broker(); }

// Every character a URL treats specially, and the shell's quote.
constexpr const char* kPassword = "p@ss/w?rd#1%x";
constexpr const char* kUser = "svc";

// The broker user svc with kPassword, created once.
void ensureUser() {
  static bool created = false;
  if (created) return;
  broker().ctl(std::string("add_user ") + kUser + " '" + kPassword + "'");
  broker().ctl(std::string("set_permissions -p / ") + kUser + " '.*' '.*' '.*'");
  created = true;
}

// A config for the broker, the user svc, and the given password lines.
std::string yamlWith(const std::string& broker_lines) {
  std::string yaml =
      daemonYaml(broker().port(), "  - name: guarded\n    handler: sum\n", broker_lines);
  // daemonYaml names guest:guest in the URL: drop the credentials from it.
  const std::string from = "amqp://guest:guest@";
  yaml.replace(yaml.find(from), from.size(), std::string("amqp://") + kUser + "@");
  return yaml;
}

std::unique_ptr<ChildProcess> startWarrend(const ConfigFile& config) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{WARREND_BINARY, "--config", config.path()});
}

// warren-call's output for one call, with the password in a file.
std::string callWithPasswordFile(const std::string& password_file, std::optional<int>* code) {
  ChildProcess call(
      {WARREN_CALL_BINARY, "--broker",
       std::string("amqp://") + kUser + "@127.0.0.1:" + std::to_string(broker().port()) + "/%2f",
       "--password-file", password_file, "guarded", "20,22"});
  *code = call.waitExit(30s);
  return call.output();
}

TEST(Credentials, PasswordFileServesAndNeverShows) {
  ensureUser();
  const ConfigFile config("warren.yaml", yamlWith("  password_file: broker-password\n"));
  const auto password_file = config.writeBeside("broker-password", std::string(kPassword) + "\n");
  auto warrend = startWarrend(config);
  ASSERT_TRUE(warrend->waitForOutput("consuming 'guarded'", 30s)) << warrend->output();

  std::optional<int> code;
  const std::string output = callWithPasswordFile(password_file.string(), &code);
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("42"), std::string::npos) << output;

  warrend->signal(SIGTERM);
  EXPECT_EQ(warrend->waitExit(30s), 0);
  EXPECT_EQ(warrend->output().find(kPassword), std::string::npos) << warrend->output();
}

TEST(Credentials, SystemdCredentialServes) {
  ensureUser();
  const ConfigFile config("warren.yaml", yamlWith("  password_credential: broker-password\n"));
  config.writeBeside("broker-password", kPassword);
  const ScopedEnv credentials("CREDENTIALS_DIRECTORY", config.dir().string());
  auto warrend = startWarrend(config);
  ASSERT_TRUE(warrend->waitForOutput("consuming 'guarded'", 30s)) << warrend->output();
  warrend->signal(SIGTERM);
  EXPECT_EQ(warrend->waitExit(30s), 0);
  EXPECT_EQ(warrend->output().find(kPassword), std::string::npos) << warrend->output();
}

TEST(Credentials, AWrongPasswordIsRefusedWithoutShowingEitherPassword) {
  ensureUser();
  const std::string wrong = std::string(kPassword) + "-old";
  const ConfigFile config("warren.yaml", yamlWith("  password_file: broker-password\n"));
  const auto password_file = config.writeBeside("broker-password", wrong);
  auto warrend = startWarrend(config);
  ASSERT_TRUE(warrend->waitForOutput("ACCESS_REFUSED", 30s)) << warrend->output();
  std::optional<int> code;
  const std::string output = callWithPasswordFile(password_file.string(), &code);
  EXPECT_NE(code, 0) << output;
  EXPECT_NE(output.find("ACCESS_REFUSED"), std::string::npos) << output;
  warrend->signal(SIGTERM);
  EXPECT_EQ(warrend->waitExit(30s), 0);
  for (const std::string& text : {warrend->output(), output}) {
    EXPECT_EQ(text.find(kPassword), std::string::npos) << text;
    EXPECT_EQ(text.find("p@ss"), std::string::npos) << text;
  }
}

TEST(Credentials, APasswordInTheUrlAndAFileIsAConfigError) {
  const ConfigFile config("warren.yaml",
                          daemonYaml(broker().port(), "  - name: guarded\n    handler: sum\n",
                                     "  password_file: broker-password\n"));
  config.writeBeside("broker-password", kPassword);
  ChildProcess check({WARREND_BINARY, "--check-config", config.path()});
  EXPECT_EQ(check.waitExit(30s), 78) << check.output();
  EXPECT_NE(check.output().find("broker.url: holds a password, and broker.password_file gives one"),
            std::string::npos)
      << check.output();
  EXPECT_EQ(check.output().find(kPassword), std::string::npos) << check.output();
}

}  // namespace
}  // namespace warren::test
