// SPDX-License-Identifier: Apache-2.0
// Tests of the configuration parser (daemon/config/config.cpp) and of parseDuration.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "config.h"
#include "config_man.h"
#include "config_schema.h"
#include "duration.h"
#include "scoped_env.h"

namespace warren {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using test::ScopedEnv;

// tests/data: from WARREN_TEST_DATA (set by ctest), else next to this source file.
fs::path dataDir() {
  if (const char* dir = std::getenv("WARREN_TEST_DATA")) return dir;
  return fs::path(__FILE__).parent_path().parent_path() / "data";
}

fs::path configData(const std::string& name) { return dataDir() / "config" / name; }

std::string errorOf(const fs::path& file) {
  try {
    loadConfig(file);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "(no error)";
}

std::string parseErrorOf(const std::string& yaml) {
  try {
    parseConfig(yaml, "inline.yaml");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "(no error)";
}

// ---------------------------------------------------------------------------
// One bad file per rule, with the exact message (the path prefix is the data dir).

struct BadFile {
  std::string file;
  std::string message;  // without the leading "<dir>/"

  friend std::ostream& operator<<(std::ostream& out, const BadFile& bad) { return out << bad.file; }
};

class BadConfigTest : public testing::TestWithParam<BadFile> {};

TEST_P(BadConfigTest, ReportsRuleWithLocation) {
  const BadFile& bad = GetParam();
  const fs::path file = configData(bad.file);
  EXPECT_EQ(errorOf(file), (file.parent_path() / bad.message).string());
}

const char* const kQueueKeys =
    "name, handler, isolation, command, env, working_directory, worker_restart_backoff_max, "
    "consumers, prefetch, max_body_bytes, max_reply_bytes, handler_timeout, durable, auto_delete, "
    "type, delivery_limit, dead_letter, arguments, options";
const char* const kDurationForm =
    "expected a duration with a unit: ms, s, m or h (e.g. 250ms, 10s, 1.5s, 2m, 1h)";
const char* const kListenForm =
    "HOST:PORT with an IP address, e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464";
const char* const kIndentHint =
    ": the keys of one map start in the same column; a value holding ': ' is quoted)";
const char* const kListenHost =
    "the host must be an IPv4 address (e.g. 127.0.0.1, 0.0.0.0) or an IPv6 address in brackets "
    "(e.g. [::1]); names are not resolved, got ";

INSTANTIATE_TEST_SUITE_P(
    Rules, BadConfigTest,
    testing::Values(
        // Unknown keys, at every level.
        BadFile{"unknown_key_top.yaml",
                "unknown_key_top.yaml:4:1: loging: unknown key; allowed: broker, plugins, "
                "logging, metrics, shutdown, queues"},
        BadFile{"unknown_key_queue.yaml",
                std::string("unknown_key_queue.yaml:7:5: queues[0].prefech: unknown key; "
                            "allowed: ") +
                    kQueueKeys},
        BadFile{"unknown_key_nested.yaml",
                "unknown_key_nested.yaml:5:5: broker.reconnect.max_dealy: unknown key; allowed: "
                "initial_delay, max_delay"},
        BadFile{"unknown_key_metrics.yaml",
                "unknown_key_metrics.yaml:4:3: metrics.enable: unknown key; allowed: enabled, "
                "listen"},
        // Missing required keys point at the map that lacks them.
        BadFile{"missing_handler.yaml",
                "missing_handler.yaml:7:5: queues[1].handler: required key is missing"},
        BadFile{"missing_name.yaml",
                "missing_name.yaml:5:5: queues[0].name: required key is missing"},
        BadFile{"missing_plugins.yaml",
                "missing_plugins.yaml:2:1: plugins: required key is missing"},
        BadFile{"missing_plugins_dir.yaml",
                "missing_plugins_dir.yaml:2:10: plugins.dir: required key is missing"},
        BadFile{"missing_queues.yaml", "missing_queues.yaml:2:1: queues: required key is missing"},
        // Duplicates.
        BadFile{"duplicate_queue.yaml",
                "duplicate_queue.yaml:9:11: queues[2].name: duplicate queue name \"sum\"; first "
                "defined at line 5"},
        BadFile{
            "duplicate_key.yaml",
            "duplicate_key.yaml:8:5: queues[0].prefetch: duplicate key; first defined at line 7"},
        BadFile{"duplicate_option.yaml",
                "duplicate_option.yaml:7:27: queues[0].options.mode: duplicate key; first defined "
                "at line 7"},
        // Durations.
        BadFile{"bad_duration.yaml", std::string("bad_duration.yaml:3:14: broker.heartbeat: ") +
                                         kDurationForm + ", got '10'"},
        BadFile{"bad_duration_unit.yaml",
                std::string("bad_duration_unit.yaml:5:18: shutdown.drain_timeout: ") +
                    kDurationForm + ", got '5sec'"},
        BadFile{"drain_timeout_too_long.yaml",
                "drain_timeout_too_long.yaml:5:18: shutdown.drain_timeout: must be at most 1h, "
                "got 9999999h"},
        BadFile{"heartbeat_too_long.yaml",
                "heartbeat_too_long.yaml:3:14: broker.heartbeat: must be below 60s (the broker's "
                "own heartbeat timeout), got 1m"},
        BadFile{"heartbeat_fraction.yaml",
                "heartbeat_fraction.yaml:3:14: broker.heartbeat: must be a whole number of seconds "
                "(AMQP negotiates heartbeats in seconds), got 1500ms"},
        BadFile{"connect_timeout_zero.yaml",
                "connect_timeout_zero.yaml:3:20: broker.connect_timeout: must be greater than 0"},
        BadFile{"initial_delay_zero.yaml",
                "initial_delay_zero.yaml:4:20: broker.reconnect.initial_delay: must be greater "
                "than 0"},
        BadFile{"max_delay_below_initial.yaml",
                "max_delay_below_initial.yaml:5:16: broker.reconnect.max_delay: must not be below "
                "broker.reconnect.initial_delay (2000ms)"},
        BadFile{"initial_delay_above_default_max.yaml",
                "initial_delay_above_default_max.yaml:4:20: broker.reconnect.initial_delay: must "
                "not exceed broker.reconnect.max_delay (2000ms)"},
        // Integers and booleans.
        BadFile{"prefetch_zero.yaml",
                "prefetch_zero.yaml:7:15: queues[0].prefetch: must be between 1 and 65535, got 0"},
        BadFile{"prefetch_too_big.yaml",
                "prefetch_too_big.yaml:7:15: queues[0].prefetch: must be between 1 and 65535, got "
                "65536"},
        BadFile{"consumers_not_int.yaml",
                "consumers_not_int.yaml:7:16: queues[0].consumers: expected an integer, got '2.5'"},
        BadFile{"consumers_quoted.yaml",
                "consumers_quoted.yaml:7:16: queues[0].consumers: expected an integer, got the "
                "string \"5\""},
        BadFile{"consumers_too_many.yaml",
                "consumers_too_many.yaml:7:16: queues[0].consumers: must be between 1 and 1000, "
                "got 1001"},
        BadFile{"max_body_too_big.yaml",
                "max_body_too_big.yaml:7:21: queues[0].max_body_bytes: must be between 1 and "
                "134217728, got 134217729"},
        BadFile{"durable_not_bool.yaml",
                "durable_not_bool.yaml:7:14: queues[0].durable: expected true or false, got 'yes'"},
        BadFile{"empty_value.yaml",
                "empty_value.yaml:7:5: queues[0].prefetch: expected an integer, got null"},
        // Shapes.
        BadFile{"queues_not_sequence.yaml",
                "queues_not_sequence.yaml:5:3: queues: expected a sequence of queues, got a map"},
        BadFile{"queues_empty.yaml", "queues_empty.yaml:4:9: queues: must list at least one queue"},
        BadFile{"queue_not_map.yaml",
                "queue_not_map.yaml:5:5: queues[0]: expected a map, got 'sum'"},
        BadFile{"section_not_map.yaml",
                "section_not_map.yaml:2:9: broker: expected a map, got "
                "'amqp://guest:guest@localhost:5672/%2f'"},
        BadFile{"argument_not_scalar.yaml",
                "argument_not_scalar.yaml:9:31: queues[0].arguments.x-dead-letter-exchange: "
                "expected a scalar (integer, float, bool or string), got a sequence"},
        BadFile{"option_not_scalar.yaml",
                "option_not_scalar.yaml:9:9: queues[0].options.limits: expected a scalar, got a "
                "map"},
        // The file as a whole.
        BadFile{"syntax_error.yaml",
                "syntax_error.yaml:6:1: YAML syntax error: end of sequence flow not found"},
        BadFile{"empty_file.yaml",
                "empty_file.yaml:1:1: the file is empty; expected a map with at least plugins and "
                "queues"},
        BadFile{"comments_only.yaml",
                "comments_only.yaml:1:1: the file is empty; expected a map with at least plugins "
                "and queues"},
        BadFile{"top_not_map.yaml",
                "top_not_map.yaml:2:1: the top level must be a map (broker, plugins, logging, "
                "metrics, shutdown, queues), got a sequence"},
        BadFile{"multiple_documents.yaml",
                "multiple_documents.yaml:8:1: only one YAML document is allowed"},
        // Tabs and indentation get a plain hint beside yaml-cpp's message.
        BadFile{"tab_indent.yaml",
                "tab_indent.yaml:3:5: YAML syntax error: illegal map value (the file contains a "
                "tab at line 3: YAML indents with spaces)"},
        BadFile{"bad_indent.yaml",
                std::string("bad_indent.yaml:6:13: YAML syntax error: illegal map value (check "
                            "the indentation of line 6") +
                    kIndentHint},
        BadFile{"bad_indent_outdent.yaml",
                std::string("bad_indent_outdent.yaml:7:4: YAML syntax error: end of sequence not "
                            "found (check the indentation of line 7") +
                    kIndentHint},
        // Values checked one by one.
        BadFile{"bad_url.yaml",
                "bad_url.yaml:3:8: broker.url: must start with amqp:// or amqps://"},
        BadFile{"bad_log_level.yaml",
                "bad_log_level.yaml:3:10: logging.level: must be one of trace, debug, info, warn, "
                "error, critical, off; got 'verbose'"},
        // metrics.
        BadFile{"metrics_enabled_not_bool.yaml",
                "metrics_enabled_not_bool.yaml:3:12: metrics.enabled: expected true or false, got "
                "'off'"},
        BadFile{"listen_no_port.yaml",
                std::string("listen_no_port.yaml:3:11: metrics.listen: expected ") + kListenForm +
                    ", got '127.0.0.1'"},
        BadFile{"listen_port_zero.yaml",
                "listen_port_zero.yaml:3:11: metrics.listen: the port must be a number from 1 to "
                "65535, got '0'"},
        BadFile{"listen_port_too_big.yaml",
                "listen_port_too_big.yaml:3:11: metrics.listen: the port must be a number from 1 "
                "to 65535, got '65536'"},
        BadFile{"listen_port_not_number.yaml",
                "listen_port_not_number.yaml:3:11: metrics.listen: the port must be a number from "
                "1 to 65535, got 'http'"},
        BadFile{"listen_host_name.yaml",
                std::string("listen_host_name.yaml:3:11: metrics.listen: ") + kListenHost +
                    "'localhost'"},
        BadFile{"listen_bad_ipv4.yaml", std::string("listen_bad_ipv4.yaml:3:11: metrics.listen: ") +
                                            kListenHost + "'127.0.0.256'"},
        BadFile{"listen_ipv6_without_brackets.yaml",
                "listen_ipv6_without_brackets.yaml:3:11: metrics.listen: an IPv6 address must be "
                "written in brackets, e.g. [::1]:9464, got '::1:9464'"},
        BadFile{"listen_brackets_not_ipv6.yaml",
                "listen_brackets_not_ipv6.yaml:3:11: metrics.listen: the host in brackets must be "
                "an IPv6 address, got '127.0.0.1'"},
        BadFile{"plugins_dir_empty.yaml",
                "plugins_dir_empty.yaml:3:8: plugins.dir: must not be empty"},
        BadFile{"queue_name_empty.yaml",
                "queue_name_empty.yaml:5:11: queues[0].name: must not be empty"},
        BadFile{"queue_name_reserved.yaml",
                "queue_name_reserved.yaml:5:11: queues[0].name: names starting with \"amq.\" are "
                "reserved by the broker"},
        BadFile{"queue_name_too_long.yaml",
                "queue_name_too_long.yaml:5:11: queues[0].name: must be at most 255 bytes, got "
                "256"},
        BadFile{"bad_handler.yaml",
                "bad_handler.yaml:6:14: queues[0].handler: must be a plugin name made of letters, "
                "digits, '_' and '-', got '../sum'"}),
    [](const testing::TestParamInfo<BadFile>& param_info) {
      return fs::path(param_info.param.file).stem().string();
    });

// ---------------------------------------------------------------------------
// Good files.

TEST(ConfigTest, FullFileSetsEveryField) {
  const fs::path file = configData("full.yaml");
  const Config config = loadConfig(file);

  EXPECT_EQ(config.file, file);
  EXPECT_EQ(config.broker.urls.at(0), "amqp://user:secret@broker.example:5673/warren");
  EXPECT_EQ(config.broker.heartbeat, milliseconds{0});
  EXPECT_EQ(config.broker.connect_timeout, milliseconds{2500});
  EXPECT_EQ(config.broker.reconnect.initial_delay, milliseconds{250});
  EXPECT_EQ(config.broker.reconnect.max_delay, milliseconds{60000});
  EXPECT_EQ(config.plugin_dir, fs::path("/opt/warren/plugins"));
  EXPECT_EQ(config.logging.level, "debug");
  EXPECT_FALSE(config.metrics.enabled);
  EXPECT_EQ(config.metrics.listen, (ListenAddress{"::1", 9555}));
  EXPECT_EQ(config.metrics.listen.toString(), "[::1]:9555");
  EXPECT_EQ(config.metrics.listen_mark.line, 15);
  EXPECT_EQ(config.metrics.listen_mark.column, 11);
  EXPECT_EQ(config.shutdown.drain_timeout, milliseconds{3600000});
  ASSERT_EQ(config.queues.size(), 2U);

  const QueueConfig& sum = config.queues[0];
  EXPECT_EQ(sum.name, "sum");
  EXPECT_EQ(sum.handler, "sum");
  EXPECT_EQ(sum.plugin_path, fs::path("/opt/warren/plugins/sum.so"));
  EXPECT_EQ(sum.consumers, 10);
  EXPECT_EQ(sum.prefetch, 20);
  EXPECT_EQ(sum.max_body_bytes, 2048U);
  EXPECT_TRUE(sum.durable);
  EXPECT_TRUE(sum.auto_delete);
  EXPECT_EQ(sum.path, "queues[0]");
  EXPECT_EQ(sum.mark.line, 19);
  EXPECT_EQ(sum.mark.column, 5);
  EXPECT_EQ(sum.handler_mark.line, 20);
  EXPECT_EQ(sum.handler_mark.column, 14);
  EXPECT_EQ(sum.options_mark.line, 32);
  EXPECT_EQ(sum.options_mark.column, 5);

  const std::map<std::string, QueueArgument> arguments = {
      {"x-message-ttl", std::int64_t{60000}}, {"x-ratio", 0.5},
      {"x-single-active-consumer", false},    {"x-dead-letter-exchange", std::string("dlx")},
      {"x-quoted", std::string("42")},
  };
  EXPECT_EQ(sum.arguments, arguments);

  ASSERT_EQ(sum.options.size(), 3U);  // in file order
  EXPECT_EQ(sum.options[0].key, "mode");
  EXPECT_EQ(sum.options[0].value, "fast");
  EXPECT_EQ(sum.options[0].mark.line, 33);
  EXPECT_EQ(sum.options[0].mark.column, 7);
  EXPECT_EQ(sum.options[1].key, "limit");
  EXPECT_EQ(sum.options[1].value, "10");
  EXPECT_EQ(sum.options[1].mark.line, 34);
  EXPECT_EQ(sum.options[2].key, "label");
  EXPECT_EQ(sum.options[2].value, "hello world");

  const QueueConfig& echo = config.queues[1];
  EXPECT_EQ(echo.name, "echo");
  EXPECT_EQ(echo.handler, "echo-v2_1");
  EXPECT_EQ(echo.plugin_path, fs::path("/opt/warren/plugins/echo-v2_1.so"));
  EXPECT_EQ(echo.path, "queues[1]");
  EXPECT_EQ(echo.mark.line, 36);
  EXPECT_EQ(echo.mark.column, 5);
  EXPECT_EQ(echo.handler_mark.line, 36);
  EXPECT_EQ(echo.handler_mark.column, 27);
  EXPECT_EQ(echo.options_mark.line, 36);  // no options: the entry's mark
  EXPECT_EQ(echo.options_mark.column, 5);
}

TEST(ConfigTest, MinimalFileGetsDefaults) {
  const Config config = loadConfig(configData("minimal.yaml"));
  const Config defaults;

  EXPECT_EQ(config.broker.urls.at(0), "amqp://guest:guest@localhost:5672/%2f");
  EXPECT_EQ(config.broker.heartbeat, milliseconds{10000});
  EXPECT_EQ(config.broker.connect_timeout, milliseconds{5000});
  EXPECT_EQ(config.broker.reconnect.initial_delay, milliseconds{100});
  EXPECT_EQ(config.broker.reconnect.max_delay, milliseconds{2000});
  EXPECT_EQ(config.logging.level, "info");
  EXPECT_TRUE(config.metrics.enabled);
  EXPECT_EQ(config.metrics.listen, (ListenAddress{"127.0.0.1", 9464}));
  EXPECT_EQ(config.metrics.listen.toString(), "127.0.0.1:9464");
  EXPECT_EQ(config.metrics.listen_mark.line, 0);  // not in the file
  EXPECT_EQ(config.shutdown.drain_timeout, milliseconds{30000});
  EXPECT_EQ(config.plugin_dir, fs::path("/usr/lib/warren/plugins"));
  ASSERT_EQ(config.queues.size(), 1U);

  const QueueConfig& queue = config.queues[0];
  EXPECT_EQ(queue.name, "sum");
  EXPECT_EQ(queue.plugin_path, fs::path("/usr/lib/warren/plugins/sum.so"));
  EXPECT_EQ(queue.consumers, 5);
  EXPECT_EQ(queue.prefetch, 1);
  EXPECT_EQ(queue.max_body_bytes, 1048576U);
  EXPECT_EQ(queue.max_reply_bytes, 16777216U);
  EXPECT_EQ(queue.handler_timeout, std::chrono::seconds(60));
  EXPECT_FALSE(queue.durable);
  EXPECT_FALSE(queue.auto_delete);
  EXPECT_TRUE(queue.arguments.empty());
  EXPECT_TRUE(queue.options.empty());
  EXPECT_EQ(queue.mark.line, 4);
  EXPECT_EQ(queue.mark.column, 5);
  EXPECT_EQ(queue.options_mark.line, 4);
  EXPECT_EQ(queue.handler_mark.line, 5);
  EXPECT_EQ(queue.handler_mark.column, 14);
}

TEST(ConfigTest, ExampleConfigParses) {
  const fs::path file = dataDir() / ".." / ".." / "config" / "warren.yaml";
  const Config config = loadConfig(file);

  EXPECT_EQ(config.file, fs::absolute(file).lexically_normal());
  EXPECT_EQ(config.broker.urls.at(0), "amqp://guest:guest@localhost:5672/%2f");
  EXPECT_EQ(config.plugin_dir, fs::path("/usr/lib/warren/plugins"));
  ASSERT_EQ(config.queues.size(), 1U);
  EXPECT_EQ(config.queues[0].name, "sum");
  EXPECT_EQ(config.queues[0].handler, "sum");
  EXPECT_EQ(config.queues[0].plugin_path, fs::path("/usr/lib/warren/plugins/sum.so"));
  EXPECT_EQ(config.queues[0].consumers, 5);
  EXPECT_EQ(config.queues[0].prefetch, 1);
  EXPECT_FALSE(config.queues[0].durable);
  EXPECT_FALSE(config.queues[0].auto_delete);
  EXPECT_TRUE(config.queues[0].arguments.empty());
  EXPECT_TRUE(config.queues[0].options.empty());
}

// ---------------------------------------------------------------------------
// Paths.

TEST(ConfigTest, RelativePluginDirIsRelativeToTheConfigFile) {
  const Config config = loadConfig(configData("relative_dir.yaml"));
  const fs::path expected = (fs::absolute(dataDir()) / "plugins").lexically_normal();
  EXPECT_EQ(config.plugin_dir, expected);
  ASSERT_EQ(config.queues.size(), 1U);
  EXPECT_EQ(config.queues[0].plugin_path, expected / "sum.so");
  EXPECT_TRUE(config.plugin_dir.is_absolute());
}

TEST(ConfigTest, RelativeConfigFileResolvesAgainstWorkingDirectory) {
  const std::string yaml = "plugins: {dir: lib/plugins}\nqueues: [{name: q, handler: h}]\n";
  const Config config = parseConfig(yaml, "etc/warren.yaml");
  EXPECT_EQ(config.file, fs::current_path() / "etc" / "warren.yaml");
  EXPECT_EQ(config.plugin_dir, fs::current_path() / "etc" / "lib" / "plugins");
  EXPECT_EQ(config.queues[0].plugin_path, fs::current_path() / "etc/lib/plugins/h.so");
}

TEST(ConfigTest, AbsolutePluginDirIsKept) {
  const std::string yaml = "plugins: {dir: /srv/plugins/.}\nqueues: [{name: q, handler: h}]\n";
  const Config config = parseConfig(yaml, "/etc/warren/warren.yaml");
  EXPECT_EQ(config.plugin_dir, fs::path("/srv/plugins"));
  EXPECT_EQ(config.queues[0].plugin_path, fs::path("/srv/plugins/h.so"));
}

TEST(ConfigTest, MissingFileIsReportedWithItsPath) {
  const fs::path file = configData("does_not_exist.yaml");
  EXPECT_EQ(errorOf(file), file.string() + ": cannot read: No such file or directory");
}

TEST(ConfigTest, DirectoryIsNotReadable) {
  const fs::path dir = dataDir() / "config";
  EXPECT_EQ(errorOf(dir), dir.string() + ": cannot read: Is a directory");
}

// ---------------------------------------------------------------------------
// Inline cases: messages name the file as given.

TEST(ConfigTest, MessagesUseThePathAsGiven) {
  EXPECT_EQ(parseErrorOf("plugins: {dir: /p}\nqueues: [{name: q}]\n"),
            "inline.yaml:2:10: queues[0].handler: required key is missing");
}

TEST(ConfigTest, ArgumentsAreTypedAsYamlReadsThem) {
  const Config config = parseConfig(
      "plugins: {dir: /p}\n"
      "queues:\n"
      "  - name: q\n"
      "    handler: h\n"
      "    arguments: {a: -3, b: +4, c: 1e3, d: TRUE, e: '7', f: !!str 8, g: 0x10, h: 1.5.2}\n",
      "inline.yaml");
  const std::map<std::string, QueueArgument> expected = {
      {"a", std::int64_t{-3}},
      {"b", std::int64_t{4}},
      {"c", 1000.0},
      {"d", true},
      {"e", std::string("7")},
      {"f", std::string("8")},
      {"g", std::string("0x10")},
      {"h", std::string("1.5.2")},
  };
  EXPECT_EQ(config.queues[0].arguments, expected);
}

TEST(ConfigTest, ArgumentIntegerOverflowIsAnError) {
  EXPECT_EQ(parseErrorOf("plugins: {dir: /p}\n"
                         "queues: [{name: q, handler: h, arguments: {x: 99999999999999999999}}]\n"),
            "inline.yaml:2:47: queues[0].arguments.x: integer out of the 64-bit range: "
            "99999999999999999999");
}

// Null values point at their key: an empty value has no mark of its own.
TEST(ConfigTest, NullArgumentIsAnError) {
  EXPECT_EQ(parseErrorOf("plugins: {dir: /p}\n"
                         "queues: [{name: q, handler: h, arguments: {x: ~}}]\n"),
            "inline.yaml:2:44: queues[0].arguments.x: expected a scalar (integer, float, bool or "
            "string), got null");
}

TEST(ConfigTest, QuotedBooleanIsAString) {
  EXPECT_EQ(parseErrorOf("plugins: {dir: /p}\n"
                         "queues: [{name: q, handler: h, durable: \"true\"}]\n"),
            "inline.yaml:2:41: queues[0].durable: expected true or false, got the string \"true\"");
}

// The URL used to be parsed only when the Supervisor started, so
// --check-config passed URLs that a start then refused.
TEST(ConfigTest, BrokerUrlIsParsedByTheLoader) {
  const auto error_of = [](const std::string& url) {
    return parseErrorOf("broker: {url: '" + url +
                        "'}\nplugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n");
  };
  const std::string expected =
      "' is not a valid AMQP URL; expected amqp://user:password@host:port/vhost (or amqps:// for "
      "TLS), with any of "
      "@ : / ? # % [ ] in the user, password or vhost percent-encoded (%40 %3A %2F %3F %23 %25 "
      "%5B %5D)";
  EXPECT_EQ(
      error_of("amqp://guest:guest@localhost:5672/%2f?heartbeat=5"),
      "inline.yaml:1:15: broker.url: 'amqp://guest:***@localhost:5672/%2f?heartbeat=5" + expected);
  EXPECT_EQ(error_of("amqp://guest:guest@h1:5672,h2:5672/%2f"),
            "inline.yaml:1:15: broker.url: 'amqp://guest:***@h1:5672,h2:5672/%2f' has a ',' in "
            "its host: one URL names one broker, amqp://user:password@host:port/vhost");
  // rabbitmq-c itself takes this one as the host h1 alone.
  EXPECT_EQ(error_of("amqp://h1:5672,h2:5672/"),
            "inline.yaml:1:15: broker.url: 'amqp://h1:5672,h2:5672/' has a ',' in its host: one "
            "URL names one broker, amqp://user:password@host:port/vhost");
  const Config config = parseConfig(
      "broker: {url: 'amqp://u:p@rabbit:5673/jobs'}\nplugins: {dir: /p}\n"
      "queues: [{name: q, handler: h}]\n",
      "inline.yaml");
  EXPECT_EQ(config.broker.addresses.at(0).host, "rabbit");
  EXPECT_EQ(config.broker.addresses.at(0).port, 5673);
  EXPECT_EQ(config.broker.addresses.at(0).vhost, "jobs");
}

TEST(ConfigTest, HeartbeatBelowSixtySecondsIsAccepted) {
  const Config config =
      parseConfig("broker: {heartbeat: 59s}\nplugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n",
                  "inline.yaml");
  EXPECT_EQ(config.broker.heartbeat, milliseconds{59000});
}

TEST(ConfigTest, MaxDelayEqualToInitialDelayIsAccepted) {
  const Config config = parseConfig(
      "broker: {reconnect: {initial_delay: 2s, max_delay: 2000ms}}\n"
      "plugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n",
      "inline.yaml");
  EXPECT_EQ(config.broker.reconnect.max_delay, milliseconds{2000});
}

TEST(ConfigTest, BoundsAreInclusive) {
  const Config config = parseConfig(
      "plugins: {dir: /p}\n"
      "queues: [{name: q, handler: h, consumers: 1000, prefetch: 65535,"
      " max_body_bytes: 134217728, max_reply_bytes: 134217728}]\n",
      "inline.yaml");
  EXPECT_EQ(config.queues[0].consumers, 1000);
  EXPECT_EQ(config.queues[0].prefetch, 65535);
  EXPECT_EQ(config.queues[0].max_body_bytes, 134217728U);
  EXPECT_EQ(config.queues[0].max_reply_bytes, 134217728U);
}

TEST(ConfigTest, MaxReplyBytesIsBounded) {
  try {
    parseConfig("plugins: {dir: /p}\nqueues: [{name: q, handler: h, max_reply_bytes: 0}]\n",
                "inline.yaml");
    FAIL() << "max_reply_bytes: 0 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("queues[0].max_reply_bytes: must be between 1 and"),
              std::string::npos)
        << e.what();
  }
}

TEST(ConfigTest, HandlerTimeoutIsADurationOfAtLeastOneMillisecond) {
  const Config config = parseConfig(
      "plugins: {dir: /p}\nqueues: [{name: q, handler: h, handler_timeout: 2.5s}]\n", "x.yaml");
  EXPECT_EQ(config.queues[0].handler_timeout, milliseconds{2500});
  try {
    parseConfig("plugins: {dir: /p}\nqueues: [{name: q, handler: h, handler_timeout: 0s}]\n",
                "x.yaml");
    FAIL() << "handler_timeout: 0s was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("queues[0].handler_timeout:"), std::string::npos)
        << e.what();
  }
}

TEST(ConfigTest, QueueNameOf255BytesIsAccepted) {
  const std::string name(255, 'q');
  const Config config =
      parseConfig("plugins: {dir: /p}\nqueues: [{name: " + name + ", handler: h}]\n", "x.yaml");
  EXPECT_EQ(config.queues[0].name, name);
}

TEST(ConfigTest, EveryLogLevelIsAccepted) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    const Config config =
        parseConfig(std::string("logging: {level: ") + level +
                        "}\nplugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n",
                    "inline.yaml");
    EXPECT_EQ(config.logging.level, level);
  }
}

TEST(ConfigTest, LogFormatIsTextOrJson) {
  const auto format_of = [](const std::string& yaml) {
    return parseConfig(yaml + "plugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n",
                       "inline.yaml")
        .logging.format;
  };
  EXPECT_EQ(format_of(""), "text");
  EXPECT_EQ(format_of("logging: {format: json}\n"), "json");
  EXPECT_EQ(format_of("logging: {format: text}\n"), "text");
  try {
    format_of("logging: {format: xml}\n");
    ADD_FAILURE() << "format xml was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.errors().front(),
              "inline.yaml:1:19: logging.format: must be one of text, json; got 'xml'");
  }
}

TEST(ConfigTest, ListenAddressForms) {
  const auto listen_of = [](const std::string& text) {
    return parseConfig("metrics: {listen: '" + text +
                           "'}\nplugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n",
                       "inline.yaml")
        .metrics.listen;
  };
  EXPECT_EQ(listen_of("127.0.0.1:1"), (ListenAddress{"127.0.0.1", 1}));
  EXPECT_EQ(listen_of("0.0.0.0:65535"), (ListenAddress{"0.0.0.0", 65535}));
  EXPECT_EQ(listen_of("10.1.2.3:9464").toString(), "10.1.2.3:9464");
  EXPECT_EQ(listen_of("[::1]:9464"), (ListenAddress{"::1", 9464}));
  EXPECT_EQ(listen_of("[::]:9464").toString(), "[::]:9464");
  EXPECT_EQ(listen_of("[fe80::1:2]:80").toString(), "[fe80::1:2]:80");
  EXPECT_TRUE(listen_of("[::1]:9464").isIpv6());
  EXPECT_FALSE(listen_of("127.0.0.1:9464").isIpv6());
}

TEST(ConfigTest, ListenAddressRejections) {
  const auto error_of = [](const std::string& text) {
    return parseErrorOf("metrics: {listen: '" + text +
                        "'}\nplugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n");
  };
  const std::string at = "inline.yaml:1:19: metrics.listen: ";
  EXPECT_EQ(error_of(":9464"), at + "expected " + kListenForm + ", got the string \":9464\"");
  EXPECT_EQ(error_of(""), at + "expected " + kListenForm + ", got the string \"\"");
  EXPECT_EQ(error_of("127.0.0.1:"), at + "the port must be a number from 1 to 65535, got ''");
  EXPECT_EQ(error_of("127.0.0.1:+80"), at + "the port must be a number from 1 to 65535, got '+80'");
  EXPECT_EQ(error_of("[]:9464"), at + "the host in brackets must be an IPv6 address, got ''");
  EXPECT_EQ(error_of("[::1]"), at + "expected " + kListenForm + ", got the string \"[::1]\"");
  EXPECT_EQ(error_of("[::1]9464"),
            at + "expected " + kListenForm + ", got the string \"[::1]9464\"");
  EXPECT_EQ(error_of("[fe80::1%eth0]:9464"),
            at + "the host in brackets must be an IPv6 address, got 'fe80::1%eth0'");
  EXPECT_EQ(error_of("127.1:9464"), at + kListenHost + "'127.1'");
}

TEST(ConfigTest, ListenMustBeAString) {
  EXPECT_EQ(parseErrorOf("metrics: {listen: {port: 1}}\nplugins: {dir: /p}\n"
                         "queues: [{name: q, handler: h}]\n"),
            "inline.yaml:1:19: metrics.listen: expected a string, got a map");
}

// Unquoted, "[::1]:9464" starts a YAML flow sequence, hence the quotes the
// docs ask for; the syntax error at least points at the line.
TEST(ConfigTest, UnquotedIpv6ListenIsAYamlError) {
  EXPECT_EQ(parseErrorOf("metrics:\n  listen: [::1]:9464\nplugins: {dir: /p}\n"
                         "queues: [{name: q, handler: h}]\n"),
            "inline.yaml:2:16: YAML syntax error: end of map not found");
}

// ---------------------------------------------------------------------------
// Comparing queues, for reload.

QueueConfig sampleQueue() {
  const std::string yaml =
      "plugins: {dir: /p}\n"
      "queues:\n"
      "  - name: q\n"
      "    handler: h\n"
      "    arguments: {x-message-ttl: 1000}\n"
      "    options: {mode: fast, limit: 10}\n";
  return parseConfig(yaml, "inline.yaml").queues[0];
}

TEST(QueueConfigEqualityTest, SameServingSettingsCompareEqual) {
  EXPECT_EQ(sampleQueue(), sampleQueue());
}

// The same queue further down the file (another queue and comments above it)
// is unchanged: positions do not take part.
TEST(QueueConfigEqualityTest, PositionInTheFileDoesNotMatter) {
  const std::string yaml =
      "# a comment\n"
      "plugins: {dir: /p}\n"
      "queues:\n"
      "  - {name: other, handler: h}\n"
      "  - name: q\n"
      "    handler:    h\n"
      "    arguments: {x-message-ttl: 1000}\n"
      "    options:\n"
      "      mode: fast\n"
      "      limit: 10\n";
  const QueueConfig moved = parseConfig(yaml, "moved.yaml").queues[1];
  ASSERT_NE(moved.path, sampleQueue().path);
  ASSERT_NE(moved.mark.line, sampleQueue().mark.line);
  EXPECT_EQ(moved, sampleQueue());
}

TEST(QueueConfigEqualityTest, EveryServingSettingMatters) {
  const std::vector<std::pair<std::string, void (*)(QueueConfig&)>> changes = {
      {"name", [](QueueConfig& q) { q.name = "q2"; }},
      {"handler", [](QueueConfig& q) { q.handler = "h2"; }},
      {"plugin_path", [](QueueConfig& q) { q.plugin_path = "/other/h.so"; }},
      {"consumers", [](QueueConfig& q) { q.consumers += 1; }},
      {"prefetch", [](QueueConfig& q) { q.prefetch += 1; }},
      {"max_body_bytes", [](QueueConfig& q) { q.max_body_bytes += 1; }},
      {"max_reply_bytes", [](QueueConfig& q) { q.max_reply_bytes += 1; }},
      {"durable", [](QueueConfig& q) { q.durable = !q.durable; }},
      {"auto_delete", [](QueueConfig& q) { q.auto_delete = !q.auto_delete; }},
      {"argument value", [](QueueConfig& q) { q.arguments["x-message-ttl"] = std::int64_t{2}; }},
      {"argument type", [](QueueConfig& q) { q.arguments["x-message-ttl"] = 1000.0; }},
      {"argument added", [](QueueConfig& q) { q.arguments["x-max-length"] = std::int64_t{5}; }},
      {"option value", [](QueueConfig& q) { q.options[0].value = "slow"; }},
      {"option key", [](QueueConfig& q) { q.options[0].key = "kind"; }},
      {"option removed", [](QueueConfig& q) { q.options.pop_back(); }},
      {"option order", [](QueueConfig& q) { std::swap(q.options[0], q.options[1]); }},
      {"isolation", [](QueueConfig& q) { q.isolation = Isolation::kProcess; }},
      {"command", [](QueueConfig& q) { q.command.emplace_back("python3"); }},
      {"env", [](QueueConfig& q) { q.env.emplace_back("MODE", "fast"); }},
      {"working_directory", [](QueueConfig& q) { q.working_directory = "/srv"; }},
      {"worker_restart_backoff_max",
       [](QueueConfig& q) { q.worker_restart_backoff_max = milliseconds{5000}; }},
  };
  for (const auto& [what, change] : changes) {
    QueueConfig changed = sampleQueue();
    change(changed);
    EXPECT_NE(changed, sampleQueue()) << what;
  }
}

TEST(QueueConfigEqualityTest, MarksAndPathAreNotCompared) {
  QueueConfig changed = sampleQueue();
  changed.path = "queues[7]";
  changed.mark = {40, 3};
  changed.handler_mark = {41, 14};
  changed.options_mark = {42, 5};
  changed.options[0].mark = {43, 7};
  EXPECT_EQ(changed, sampleQueue());
}

TEST(ConfigTest, FormatConfigError) {
  EXPECT_EQ(formatConfigError("w.yaml", {3, 7}, "queues[0].options", "bad"),
            "w.yaml:3:7: queues[0].options: bad");
  EXPECT_EQ(formatConfigError("w.yaml", {3, 7}, "", "bad"), "w.yaml:3:7: bad");
  EXPECT_EQ(formatConfigError("/etc/w.yaml", {}, "", "cannot read"), "/etc/w.yaml: cannot read");
}

// ---------------------------------------------------------------------------
// Every error of a file, in one pass.

std::vector<std::string> errorsOf(const fs::path& file) {
  try {
    loadConfig(file);
  } catch (const ConfigError& error) {
    return error.errors();
  }
  return {};
}

TEST(ConfigTest, ReportsEveryErrorOfAFileInOrder) {
  const fs::path file = configData("six_mistakes.yaml");
  const std::string at = file.string() + ":";
  const std::vector<std::string> expected = {
      at + "3:8: broker.url: must start with amqp:// or amqps://",
      at + "4:14: broker.heartbeat: " + kDurationForm + ", got '10'",
      at + "7:1: loging: unknown key; allowed: broker, plugins, logging, metrics, shutdown, queues",
      at + "10:11: metrics.listen: " + kListenHost + "'localhost'",
      at + "14:15: queues[0].prefetch: must be between 1 and 65535, got 0",
      at + "16:14: queues[1].handler: must be a plugin name made of letters, digits, '_' and '-', "
           "got '../echo'",
  };
  EXPECT_EQ(errorsOf(file), expected);
  // what() holds them all, one per line.
  std::string joined;
  for (const std::string& error : expected) joined += (joined.empty() ? "" : "\n") + error;
  EXPECT_EQ(errorOf(file), joined);
}

// One bad key does not hide the others of its map, nor a missing one.
TEST(ConfigTest, ReportsEveryErrorOfOneQueue) {
  try {
    parseConfig(
        "plugins: {dir: /p}\n"
        "queues:\n"
        "  - {consumers: 0, prefech: 2, durable: yes, name: amq.q}\n",
        "inline.yaml");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    const std::vector<std::string> expected = {
        "inline.yaml:3:5: queues[0].handler: required key is missing",
        "inline.yaml:3:17: queues[0].consumers: must be between 1 and 1000, got 0",
        std::string("inline.yaml:3:20: queues[0].prefech: unknown key; allowed: ") + kQueueKeys,
        "inline.yaml:3:41: queues[0].durable: expected true or false, got 'yes'",
        "inline.yaml:3:52: queues[0].name: names starting with \"amq.\" are reserved by the "
        "broker",
    };
    EXPECT_EQ(e.errors(), expected);
  }
}

// A value that depends on a bad one is not judged against it.
TEST(ConfigTest, ComparesReconnectDelaysOnlyWhenBothAreGood) {
  EXPECT_EQ(
      parseErrorOf("broker: {reconnect: {initial_delay: 2s, max_delay: 1}}\n"
                   "plugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n"),
      std::string("inline.yaml:1:52: broker.reconnect.max_delay: ") + kDurationForm + ", got '1'");
}

// The process's address space in bytes (VmSize), or 0 when unknown.
std::size_t addressSpaceInUse() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  statm >> pages;
  return pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Runs parseErrorOf(yaml) in a child process: its message, or nullopt when it
// did not finish within `limit` (the child is then killed). A loop that
// allocates is stopped by an address-space limit instead of eating the
// machine's memory: 2 GiB more than the child already maps, since a
// sanitizer's shadow reserves terabytes before main().
std::optional<std::string> boundedParseErrorOf(const std::string& yaml,
                                               std::chrono::milliseconds limit) {
  std::array<int, 2> pipe_fds{};
  if (::pipe(pipe_fds.data()) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    const std::size_t bound = addressSpaceInUse() + (std::size_t{1} << 31);
    const rlimit memory{bound, bound};
    ::setrlimit(RLIMIT_AS, &memory);
    const std::string message = parseErrorOf(yaml);
    const ssize_t written = ::write(pipe_fds[1], message.data(), message.size());
    ::_exit(written == static_cast<ssize_t>(message.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string output;
  bool finished = false;
  while (!finished) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd ready{pipe_fds[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&ready, 1, static_cast<int>(left.count())) == 0) break;
    std::array<char, 4096> buffer{};
    const ssize_t count = ::read(pipe_fds[0], buffer.data(), buffer.size());
    if (count <= 0) {
      finished = true;
    } else {
      output.append(buffer.data(), static_cast<std::size_t>(count));
    }
  }
  ::close(pipe_fds[0]);
  if (!finished) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!finished) return std::nullopt;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "(the loader died, wait status " + std::to_string(status) + "; it ran out of memory?)";
  }
  return output;
}

// yaml-cpp 0.7's YAML::LoadAll() loops forever, allocating, on a ',' after a
// block sequence; the loader used it to find a second document.
TEST(ConfigTest, AStrayCommaIsAnErrorNotAHang) {
  for (const std::string yaml : {"- 2\n,", "- 2\n, 3\n", "plugins: {dir: /p}\n"}) {
    const std::optional<std::string> message = boundedParseErrorOf(yaml, std::chrono::seconds(20));
    ASSERT_TRUE(message.has_value()) << "the loader hung on \"" << yaml << '"';
    if (yaml.starts_with("- 2")) {
      EXPECT_EQ(*message,
                "inline.yaml:2:1: YAML syntax error: unexpected ','; a comma separates items only "
                "inside [ ] or { }");
    } else {
      EXPECT_EQ(*message, "inline.yaml:1:1: queues: required key is missing");
    }
  }
}

TEST(ConfigTest, AnEmptySecondDocumentIsASecondDocument) {
  EXPECT_EQ(parseErrorOf("plugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n---\n"),
            "inline.yaml:4:1: only one YAML document is allowed");
  // "..." ends the document; nothing follows it.
  EXPECT_EQ(parseConfig("plugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n...\n", "x.yaml")
                .queues.size(),
            1U);
}

// ---------------------------------------------------------------------------
// The schema, and the docs rendered from it.

std::string readText(const fs::path& file) {
  std::ifstream stream(file);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

TEST(ConfigSchemaTest, DocKeyTablesAreRenderedFromTheSchema) {
  const fs::path doc = dataDir() / ".." / ".." / "docs" / "configuration.md";
  const std::string text = readText(doc);
  ASSERT_FALSE(text.empty()) << doc;
  EXPECT_EQ(withKeyTables(text), text)
      << "docs/configuration.md differs from daemon/config/config_schema.cpp; rewrite its key "
         "tables "
         "with: build/daemon/config/config_doc docs/configuration.md";
}

TEST(ConfigSchemaTest, EverySectionNeedsItsDocTable) {
  EXPECT_THROW(withKeyTables("no tables"), std::invalid_argument);
  EXPECT_THROW(withKeyTables("<!-- keys: nope -->\n<!-- end keys -->\n"), std::invalid_argument);
  EXPECT_THROW(withKeyTables("<!-- keys: broker -->\n"), std::invalid_argument);
  std::string all;
  for (const SectionSpec& section : configSchema()) {
    all += "<!-- keys: " + std::string(section.path) + " -->\nold\n<!-- end keys -->\n";
  }
  EXPECT_EQ(withKeyTables(all), renderKeyTables());
}

// warren.yaml(5) is rendered from the same schema: every key of every
// section is an entry, with its default, and the example is quoted with
// lines that could be roff requests defused.
TEST(ConfigSchemaTest, TheManPageHasAnEntryForEveryKey) {
  const std::string page = renderConfigManPage("9.8.7", "queues:\n.dot: 1\n\n'quote\n");
  EXPECT_NE(page.find(".TH WARREN.YAML 5 \"\" \"warren 9.8.7\""), std::string::npos) << page;
  std::size_t keys = 0;
  for (const SectionSpec& section : configSchema()) {
    for (const KeySpec& key : section.keys) {
      const std::string entry =
          ".TP\n.B " + std::string(section.doc_prefix) + std::string(key.name) + "\n";
      EXPECT_NE(page.find(entry), std::string::npos) << entry;
      ++keys;
    }
  }
  EXPECT_GT(keys, 40u);
  EXPECT_NE(page.find(".B broker.reconnect.max_delay\n(duration, default \\fB" +
                      formatDuration(ReconnectConfig{}.max_delay) + "\\fR, 0s to 1h)\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find(".EX\n\\&queues:\n\\&.dot: 1\n\\&\n\\&'quote\n.EE\n"), std::string::npos)
      << page;
}

// Defaults are read from config.h, the one place that sets them.
TEST(ConfigSchemaTest, DefaultsAreTheLoadersDefaults) {
  const std::string table = renderKeyTable(schemaSection("broker.reconnect"));
  EXPECT_NE(table.find("| `broker.reconnect.max_delay` | duration | `" +
                       formatDuration(ReconnectConfig{}.max_delay) + "` | 0s to 1h |"),
            std::string::npos)
      << table;
  const std::string queues = renderKeyTable(schemaSection("queues[]"));
  EXPECT_NE(queues.find("| `name` | string | required | 1 to 255 bytes |"), std::string::npos)
      << queues;
  EXPECT_NE(queues.find("| `consumers` | integer | `5` | 1 to 1000 |"), std::string::npos)
      << queues;
  EXPECT_NE(queues.find("| `isolation` | string | `none` | `none`, `process` |"), std::string::npos)
      << queues;
  EXPECT_NE(queues.find("| `worker_restart_backoff_max` | duration | `1s` | 0s to 1h |"),
            std::string::npos)
      << queues;
}

// ---------------------------------------------------------------------------
// parseDuration.

TEST(DurationTest, ParsesEveryUnit) {
  EXPECT_EQ(parseDuration("250ms"), milliseconds{250});
  EXPECT_EQ(parseDuration("10s"), milliseconds{10000});
  EXPECT_EQ(parseDuration("2m"), milliseconds{120000});
  EXPECT_EQ(parseDuration("1h"), milliseconds{3600000});
  EXPECT_EQ(parseDuration("0s"), milliseconds{0});
  EXPECT_EQ(parseDuration("0ms"), milliseconds{0});
  EXPECT_EQ(parseDuration("007s"), milliseconds{7000});
}

TEST(DurationTest, ParsesFractions) {
  EXPECT_EQ(parseDuration("1.5s"), milliseconds{1500});
  EXPECT_EQ(parseDuration("0.25s"), milliseconds{250});
  EXPECT_EQ(parseDuration("1.0s"), milliseconds{1000});
  EXPECT_EQ(parseDuration("0.5m"), milliseconds{30000});
  EXPECT_EQ(parseDuration("0.001s"), milliseconds{1});
  EXPECT_EQ(parseDuration("1.5000000000000s"), milliseconds{1500});
  EXPECT_EQ(parseDuration("2.0ms"), milliseconds{2});
}

TEST(DurationTest, RejectsMalformedText) {
  for (const char* text :
       {"",    "10",  "1.5", "s",     "ms",    "10 s", " 10s",   "10s ",  "-1s",   "+1s",  "1.s",
        ".5s", "10S", "1d",  "10sec", "1e3ms", "1,5s", "1.5.0s", "0x10s", "inf s", "1h30m"}) {
    EXPECT_EQ(parseDuration(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(DurationTest, RejectsSubMillisecondPrecision) {
  EXPECT_EQ(parseDuration("1.5ms"), std::nullopt);
  EXPECT_EQ(parseDuration("0.0001s"), std::nullopt);
  EXPECT_EQ(parseDuration("1.0000000001h"), std::nullopt);
}

TEST(DurationTest, RejectsOverflow) {
  EXPECT_EQ(parseDuration("99999999999999999999ms"), std::nullopt);
  EXPECT_EQ(parseDuration("9223372036854775807h"), std::nullopt);
  // Fits in milliseconds, but now() + it would overflow steady_clock's nanoseconds.
  EXPECT_EQ(parseDuration("9223372036854775807ms"), std::nullopt);
  EXPECT_EQ(parseDurationText("9223372036854775807h"),
            (std::variant<milliseconds, DurationError>(DurationError::kTooLarge)));
  EXPECT_EQ(parseDurationText("10x"),
            (std::variant<milliseconds, DurationError>(DurationError::kMalformed)));
}

// A drain timeout of 9999999h used to overflow the deadline arithmetic and
// abandon every handler at once; each duration key now has its bound.
TEST(ConfigTest, DurationsAreCappedWithTheBoundInTheMessage) {
  const auto error_of = [](const std::string& section) {
    return parseErrorOf(section + "\nplugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n");
  };
  EXPECT_EQ(error_of("shutdown: {drain_timeout: 9999999h}"),
            "inline.yaml:1:27: shutdown.drain_timeout: must be at most 1h, got 9999999h");
  EXPECT_EQ(error_of("shutdown: {drain_timeout: 9223372036854775807h}"),
            "inline.yaml:1:27: shutdown.drain_timeout: must be at most 1h, got "
            "9223372036854775807h");
  EXPECT_EQ(error_of("broker: {connect_timeout: 301s}"),
            "inline.yaml:1:27: broker.connect_timeout: must be at most 5m, got 301s");
  EXPECT_EQ(error_of("broker: {reconnect: {max_delay: 61m}}"),
            "inline.yaml:1:33: broker.reconnect.max_delay: must be at most 1h, got 61m");
  EXPECT_EQ(error_of("broker: {reconnect: {initial_delay: 2h}}"),
            "inline.yaml:1:37: broker.reconnect.initial_delay: must be at most 1h, got 2h");
  EXPECT_EQ(error_of("broker: {heartbeat: 99999999999999h}"),
            "inline.yaml:1:21: broker.heartbeat: must be below 60s (the broker's own heartbeat "
            "timeout), got 99999999999999h");
  EXPECT_EQ(parseConfig("shutdown: {drain_timeout: 60m}\nplugins: {dir: /p}\n"
                        "queues: [{name: q, handler: h}]\n",
                        "inline.yaml")
                .shutdown.drain_timeout,
            milliseconds{3600000});
}

// ---------------------------------------------------------------------------
// Production brokers: several URLs, credentials out of the URL, TLS, quorum
// queues and dead letters.

// A file in a fresh temporary directory, removed with the object.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content) {
    std::string templ = (fs::temp_directory_path() / "warren-config-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = templ;
    std::ofstream(dir_ / name, std::ios::binary) << content;
    path_ = dir_ / name;
  }
  ~TempFile() { fs::remove_all(dir_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const fs::path& path() const { return path_; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  fs::path path_;
};

std::string withBroker(const std::string& broker) {
  return "broker:\n" + broker + "plugins: {dir: /p}\nqueues: [{name: q, handler: h}]\n";
}

// A password with every character a URL treats specially.
constexpr const char* kAwkwardPassword = "p@ss/w?rd#100%";

TEST(BrokerConfigTest, UrlTakesAListOfOneClustersNodes) {
  const Config config = parseConfig(withBroker("  url:\n"
                                               "    - amqp://u:p@n1:5672/jobs\n"
                                               "    - amqp://u:p@n2:5673/jobs\n"
                                               "    - amqps://u:p@n3/jobs\n"),
                                    "inline.yaml");
  ASSERT_EQ(config.broker.addresses.size(), 3U);
  EXPECT_EQ(config.broker.addresses[1].host, "n2");
  EXPECT_EQ(config.broker.addresses[1].port, 5673);
  EXPECT_TRUE(config.broker.addresses[2].tls);
  EXPECT_EQ(config.broker.addresses[2].port, 5671);
  EXPECT_EQ(config.broker.urls.size(), 3U);
}

TEST(BrokerConfigTest, AListReportsEachBadUrlAndAMixOfVhosts) {
  EXPECT_EQ(parseErrorOf(withBroker("  url: [amqp://n1/a, http://n2/a, amqp://n3/b]\n")),
            "inline.yaml:2:22: broker.url[1]: must start with amqp:// or amqps://\n"
            "inline.yaml:2:35: broker.url[2]: names the vhost 'b', the first URL 'a': the URLs of "
            "one cluster share one vhost");
  EXPECT_EQ(parseErrorOf(withBroker("  url: []\n")),
            "inline.yaml:2:8: broker.url: must list at least one URL");
}

TEST(BrokerConfigTest, PasswordFileGivesEveryUrlThePassword) {
  const TempFile secret("password", std::string(kAwkwardPassword) + "\n");
  const Config config = parseConfig(withBroker("  url: [amqp://svc@n1/jobs, amqp://svc@n2/jobs]\n"
                                               "  password_file: password\n"),
                                    secret.dir() / "warren.yaml");
  for (const BrokerAddress& address : config.broker.addresses) {
    EXPECT_EQ(address.user, "svc");
    EXPECT_EQ(address.password, kAwkwardPassword);
  }
}

TEST(BrokerConfigTest, UserKeyAndPasswordFileLeaveTheUrlBare) {
  const TempFile secret("password", kAwkwardPassword);
  const Config config = parseConfig(withBroker("  url: amqp://n1/jobs\n  user: svc\n"
                                               "  password_file: " +
                                               secret.path().string() + "\n"),
                                    "inline.yaml");
  EXPECT_EQ(config.broker.addresses.at(0).user, "svc");
  EXPECT_EQ(config.broker.addresses.at(0).password, kAwkwardPassword);
}

TEST(BrokerConfigTest, APasswordInTwoPlacesIsAnErrorThatHidesBoth) {
  const TempFile secret("password", kAwkwardPassword);
  const std::string error =
      parseErrorOf(withBroker("  url: amqp://svc:urlsecret@n1/jobs\n"
                              "  password_file: " +
                              secret.path().string() + "\n"));
  EXPECT_NE(error.find("broker.url: holds a password, and broker.password_file gives one"),
            std::string::npos)
      << error;
  EXPECT_EQ(error.find("urlsecret"), std::string::npos) << error;
  EXPECT_EQ(error.find(kAwkwardPassword), std::string::npos) << error;
}

TEST(BrokerConfigTest, APasswordFileNeedsAUser) {
  const TempFile secret("password", kAwkwardPassword);
  EXPECT_EQ(parseErrorOf(withBroker(
                "  url: amqp://n1/jobs\n  password_file: " + secret.path().string() + "\n")),
            "inline.yaml:3:18: broker.password_file: needs a user name: broker.user, or the user "
            "in the URL (amqp://USER@host)");
}

TEST(BrokerConfigTest, AnUnreadableOrEmptyPasswordFileIsNamedNeverShown) {
  EXPECT_EQ(parseErrorOf(withBroker("  url: amqp://svc@n1/jobs\n"
                                    "  password_file: /nonexistent/password\n")),
            "inline.yaml:3:18: broker.password_file: password file '/nonexistent/password' cannot "
            "be read: No such file or directory");
  const TempFile empty("password", "\n");
  EXPECT_EQ(parseErrorOf(withBroker(
                "  url: amqp://svc@n1/jobs\n  password_file: " + empty.path().string() + "\n")),
            "inline.yaml:3:18: broker.password_file: password file '" + empty.path().string() +
                "' is empty");
  const TempFile two_lines("password", std::string(kAwkwardPassword) + "\nsecond\n");
  const std::string error = parseErrorOf(withBroker(
      "  url: amqp://svc@n1/jobs\n  password_file: " + two_lines.path().string() + "\n"));
  EXPECT_NE(error.find("holds more than one line"), std::string::npos) << error;
  EXPECT_EQ(error.find(kAwkwardPassword), std::string::npos) << error;
}

TEST(BrokerConfigTest, PasswordCredentialReadsTheSystemdCredentialsDirectory) {
  const TempFile credential("broker-password", kAwkwardPassword);
  const ScopedEnv directory("CREDENTIALS_DIRECTORY", credential.dir().string());
  const Config config = parseConfig(withBroker("  url: amqp://svc@n1/jobs\n"
                                               "  password_credential: broker-password\n"),
                                    "inline.yaml");
  EXPECT_EQ(config.broker.addresses.at(0).password, kAwkwardPassword);
  EXPECT_EQ(config.broker.password_file, credential.path());
}

TEST(BrokerConfigTest, PasswordCredentialOutsideSystemdSaysWhatIsMissing) {
  const ScopedEnv directory("CREDENTIALS_DIRECTORY", "");
  EXPECT_EQ(parseErrorOf(withBroker("  url: amqp://svc@n1/jobs\n"
                                    "  password_credential: broker-password\n")),
            "inline.yaml:3:24: broker.password_credential: the credential 'broker-password' needs "
            "$CREDENTIALS_DIRECTORY, which systemd sets for a unit with "
            "LoadCredential=broker-password:PATH; it is not set");
}

TEST(BrokerConfigTest, TlsFilesAreCheckedAndPairedAndNeedAmqps) {
  const TempFile ca("ca.pem", "not checked here");
  EXPECT_EQ(parseErrorOf(withBroker(
                "  url: amqp://n1/jobs\n  tls: {ca_file: " + ca.path().string() + "}\n")),
            "inline.yaml:3:3: broker.tls: applies to amqps:// URLs only, and broker.url has none: "
            "use amqps:// (TLS) or drop broker.tls");
  EXPECT_EQ(
      parseErrorOf(withBroker("  url: amqps://n1/jobs\n  tls: {ca_file: /nonexistent.pem}\n")),
      "inline.yaml:3:18: broker.tls.ca_file: cannot read '/nonexistent.pem': No such file or "
      "directory");
  EXPECT_EQ(parseErrorOf(withBroker(
                "  url: amqps://n1/jobs\n  tls: {cert_file: " + ca.path().string() + "}\n")),
            "inline.yaml:3:20: broker.tls.cert_file: cert_file and key_file go together: give "
            "both or neither");
  const Config config =
      parseConfig(withBroker("  url: amqps://n1/jobs\n  tls: {ca_file: ca.pem, verify: false}\n"),
                  ca.dir() / "warren.yaml");
  EXPECT_EQ(config.broker.tls.ca_file, ca.path().string());
  EXPECT_FALSE(config.broker.tls.verify);
}

TEST(BrokerConfigTest, ExternalLoginNeedsACertificateAndNoPassword) {
  const TempFile cert("client.pem", "x");
  const std::string tls =
      "  tls: {cert_file: " + cert.path().string() + ", key_file: " + cert.path().string() + "}\n";
  const Config config = parseConfig(
      withBroker("  url: amqps://n1/jobs\n  auth_mechanism: external\n" + tls), "inline.yaml");
  EXPECT_EQ(config.broker.login, LoginMechanism::kExternal);
  EXPECT_EQ(
      parseErrorOf(withBroker("  url: amqps://svc:pw@n1/jobs\n  auth_mechanism: external\n" + tls)),
      "inline.yaml:3:19: broker.auth_mechanism: external logs in with the TLS client "
      "certificate: give no user or password (in the URL, broker.user or a password file)");
  EXPECT_EQ(parseErrorOf(withBroker("  url: amqps://n1/jobs\n  auth_mechanism: external\n")),
            "inline.yaml:3:19: broker.auth_mechanism: external needs a client certificate: "
            "broker.tls.cert_file");
}

QueueConfig queueOf(const std::string& entry) {
  return parseConfig("plugins: {dir: /p}\nqueues:\n  - {name: jobs, handler: h, " + entry + "}\n",
                     "inline.yaml")
      .queues.at(0);
}

std::string queueErrorOf(const std::string& entry) {
  return parseErrorOf("plugins: {dir: /p}\nqueues:\n  - {name: jobs, handler: h, " + entry + "}\n");
}

TEST(QueueKindConfigTest, ClassicDeclaresNoArgumentsLikeTheSeed) {
  const QueueConfig queue = queueOf("type: classic");
  EXPECT_FALSE(queue.quorum);
  EXPECT_FALSE(queue.durable);
  EXPECT_TRUE(queue.arguments.empty());
}

TEST(QueueKindConfigTest, QuorumWithLimitAndDeadLetterBecomeArguments) {
  const QueueConfig queue = queueOf(
      "type: quorum, delivery_limit: 3, dead_letter: {exchange: jobs.dlx, queue: jobs.dead}");
  EXPECT_TRUE(queue.quorum);
  EXPECT_TRUE(queue.durable);
  const std::map<std::string, QueueArgument> expected = {
      {"x-queue-type", std::string("quorum")},
      {"x-delivery-limit", std::int64_t{3}},
      {"x-dead-letter-exchange", std::string("jobs.dlx")},
      {"x-dead-letter-routing-key", std::string("jobs")}};
  EXPECT_EQ(queue.arguments, expected);
  EXPECT_EQ(queue.dead_letter.exchange, "jobs.dlx");
  EXPECT_EQ(queue.dead_letter.queue, "jobs.dead");
}

TEST(QueueKindConfigTest, RulesOfQuorumQueuesAreExplained) {
  EXPECT_EQ(queueErrorOf("delivery_limit: 3"),
            "inline.yaml:3:46: queues[0].delivery_limit: needs type: quorum (the broker counts "
            "deliveries on quorum queues only)");
  EXPECT_EQ(queueErrorOf("type: quorum, durable: false"),
            "inline.yaml:3:53: queues[0].durable: must be true for a quorum queue (quorum queues "
            "are always durable)");
  EXPECT_EQ(queueErrorOf("type: quorum, arguments: {x-queue-type: quorum}"),
            "inline.yaml:3:36: queues[0].type: sets x-queue-type, which `arguments` sets too: set "
            "it in one place");
  EXPECT_EQ(queueErrorOf("type: lazy"),
            "inline.yaml:3:36: queues[0].type: must be one of classic, quorum; got 'lazy'");
  EXPECT_EQ(queueErrorOf("dead_letter: {exchange: amq.direct, queue: d}"),
            "inline.yaml:3:54: queues[0].dead_letter.exchange: names starting with \"amq.\" are "
            "reserved by the broker");
  EXPECT_EQ(queueErrorOf("dead_letter: {exchange: x}"),
            "inline.yaml:3:43: queues[0].dead_letter.queue: required key is missing");
}

TEST(QueueKindConfigTest, AChangedDeadLetterQueueIsAChangedQueue) {
  EXPECT_FALSE(queueOf("dead_letter: {exchange: x, queue: a}") ==
               queueOf("dead_letter: {exchange: x, queue: b}"));
}

// ---------------------------------------------------------------------------
// Exec handlers and isolation: where a queue's handler runs.

// A queue `jobs` with `handler: exec` and `entry`, in a file without plugins.
std::string execYaml(const std::string& entry) {
  return "queues:\n  - {name: jobs, handler: exec, " + entry + "}\n";
}

QueueConfig execQueueOf(const std::string& entry) {
  return parseConfig(execYaml(entry), "inline.yaml").queues.at(0);
}

std::string execErrorOf(const std::string& entry) { return parseErrorOf(execYaml(entry)); }

TEST(ExecConfigTest, ExecQueueRunsAProgramAndNeedsNoPlugins) {
  const TempFile file("warren.yaml",
                      "queues:\n"
                      "  - name: jobs\n"
                      "    handler: exec\n"
                      "    command: [python3, handler.py, --port, 8080]\n"
                      "    env:\n"
                      "      ZETA: last\n"
                      "      ALPHA: 1\n"
                      "      _EMPTY: \"\"\n"
                      "    working_directory: ./run/\n"
                      "    worker_restart_backoff_max: 30s\n");
  fs::create_directory(file.dir() / "run");
  const Config config = loadConfig(file.path());

  EXPECT_TRUE(config.plugin_dir.empty());
  ASSERT_EQ(config.queues.size(), 1U);
  const QueueConfig& queue = config.queues[0];
  EXPECT_TRUE(queue.isExec());
  EXPECT_EQ(queue.isolation, Isolation::kProcess);  // without `isolation` written
  EXPECT_TRUE(queue.plugin_path.empty());
  EXPECT_EQ(queue.command, (std::vector<std::string>{"python3", "handler.py", "--port", "8080"}));
  const std::vector<std::pair<std::string, std::string>> env = {
      {"ZETA", "last"}, {"ALPHA", "1"}, {"_EMPTY", ""}};  // in file order, as written
  EXPECT_EQ(queue.env, env);
  EXPECT_EQ(queue.working_directory, (file.dir() / "run").lexically_normal());
  EXPECT_TRUE(queue.working_directory.is_absolute());
  EXPECT_EQ(queue.worker_restart_backoff_max, milliseconds{30000});
}

TEST(ExecConfigTest, WorkingDirectoryDefaultsToTheConfigFilesDirectory) {
  const TempFile file("warren.yaml",
                      "queues: [{name: jobs, handler: exec, command: [./handler]}]\n");
  const QueueConfig queue = loadConfig(file.path()).queues.at(0);
  EXPECT_EQ(queue.working_directory, file.dir().lexically_normal());
  EXPECT_TRUE(queue.env.empty());
  EXPECT_EQ(queue.worker_restart_backoff_max, milliseconds{1000});

  const Config relative = parseConfig(execYaml("command: [x]"), "./etc/../warren.yaml");
  EXPECT_EQ(relative.queues.at(0).working_directory, fs::current_path());
  // A plugin queue has none: it runs no program.
  EXPECT_TRUE(queueOf("isolation: process").working_directory.empty());
}

TEST(ExecConfigTest, PluginsAreRequiredAsSoonAsOneQueueIsAPlugin) {
  EXPECT_EQ(parseErrorOf("queues:\n"
                         "  - {name: a, handler: exec, command: [x]}\n"
                         "  - {name: b, handler: h}\n"),
            "inline.yaml:1:1: plugins: required key is missing");
  // A handler that cannot be read counts as a plugin.
  EXPECT_EQ(parseErrorOf("queues: [{name: a, command: [x]}]\n"),
            "inline.yaml:1:1: plugins: required key is missing\n"
            "inline.yaml:1:10: queues[0].handler: required key is missing");
  // Beside plugins, an exec queue still has no plugin path.
  const Config mixed = parseConfig(
      "plugins: {dir: /p}\n"
      "queues: [{name: a, handler: \"exec\", command: [x]}, {name: b, handler: h}]\n",
      "inline.yaml");
  EXPECT_TRUE(mixed.queues.at(0).plugin_path.empty());
  EXPECT_EQ(mixed.queues.at(0).isolation, Isolation::kProcess);
  EXPECT_EQ(mixed.queues.at(1).plugin_path, fs::path("/p/h.so"));
  EXPECT_EQ(mixed.queues.at(1).isolation, Isolation::kNone);
}

TEST(ExecConfigTest, IsolationProcessRunsAPluginInWorkers) {
  const QueueConfig queue = queueOf("isolation: process, worker_restart_backoff_max: 0s");
  EXPECT_EQ(queue.isolation, Isolation::kProcess);
  EXPECT_EQ(queue.plugin_path, fs::path("/p/h.so"));
  EXPECT_TRUE(queue.command.empty());
  EXPECT_EQ(queue.worker_restart_backoff_max, milliseconds{0});
  EXPECT_EQ(queueOf("isolation: none").isolation, Isolation::kNone);
  EXPECT_EQ(queueOf("type: classic").isolation, Isolation::kNone);
  EXPECT_EQ(execQueueOf("command: [x], isolation: process").isolation, Isolation::kProcess);
}

TEST(ExecConfigTest, IsolationRulesAreExplained) {
  EXPECT_EQ(queueErrorOf("isolation: container"),
            "inline.yaml:3:41: queues[0].isolation: must be one of none, process; got "
            "'container'");
  EXPECT_EQ(execErrorOf("command: [x], isolation: none"),
            "inline.yaml:2:58: queues[0].isolation: `handler: exec` always runs in its own "
            "processes; remove `isolation` or set it to process");
  EXPECT_EQ(queueErrorOf("worker_restart_backoff_max: 5s"),
            "inline.yaml:3:58: queues[0].worker_restart_backoff_max: only for `isolation: "
            "process` or `handler: exec`");
  EXPECT_EQ(queueErrorOf("isolation: none, worker_restart_backoff_max: 5s"),
            "inline.yaml:3:75: queues[0].worker_restart_backoff_max: only for `isolation: "
            "process` or `handler: exec`");
  EXPECT_EQ(execErrorOf("command: [x], worker_restart_backoff_max: 2h"),
            "inline.yaml:2:75: queues[0].worker_restart_backoff_max: must be at most 1h, got 2h");
}

TEST(ExecConfigTest, CommandIsRequiredForExecAndOnlyThere) {
  EXPECT_EQ(execErrorOf("consumers: 2"),
            "inline.yaml:2:5: queues[0].command: required key is missing: `handler: exec` runs "
            "the program it names, e.g. command: [python3, handler.py]");
  EXPECT_EQ(queueErrorOf("command: [python3, h.py]"),
            "inline.yaml:3:39: queues[0].command: `command` is only for `handler: exec`");
  EXPECT_EQ(execErrorOf("command: []"),
            "inline.yaml:2:42: queues[0].command: must name at least the program");
  EXPECT_EQ(execErrorOf("command: python3 h.py"),
            "inline.yaml:2:42: queues[0].command: expected a sequence of strings: the program "
            "and its arguments, got 'python3 h.py'");
  // Every bad item is reported.
  EXPECT_EQ(execErrorOf("command: [python3, '', {a: b}]"),
            "inline.yaml:2:52: queues[0].command[1]: must not be empty\n"
            "inline.yaml:2:56: queues[0].command[2]: expected a string, got a map");
  // Unknown handler: checked on its own, not against it.
  EXPECT_EQ(parseErrorOf("plugins: {dir: /p}\nqueues: [{name: a, handler: ../x, command: [x]}]\n"),
            "inline.yaml:2:29: queues[0].handler: must be a plugin name made of letters, digits, "
            "'_' and '-', got '../x'");
}

TEST(ExecConfigTest, OptionsAreAPluginsNotAPrograms) {
  const std::string error = execErrorOf("command: [h], options: {a: 1}");
  EXPECT_NE(error.find("queues[0].options: `options` are a plugin's; a program takes its "
                       "settings from `command` or `env`"),
            std::string::npos)
      << error;
}

TEST(ExecConfigTest, EnvNamesAreCheckedAndWarrensOwnAreReserved) {
  EXPECT_EQ(queueErrorOf("env: {A: b}"),
            "inline.yaml:3:35: queues[0].env: `env` is only for `handler: exec`");
  EXPECT_EQ(execErrorOf("command: [x], env: {WARREN_QUEUE: q, OK: 1, WARREN_PROTOCOL: 2}"),
            "inline.yaml:2:53: queues[0].env.WARREN_QUEUE: reserved: warrend sets WARREN_QUEUE "
            "and WARREN_PROTOCOL itself\n"
            "inline.yaml:2:77: queues[0].env.WARREN_PROTOCOL: reserved: warrend sets "
            "WARREN_QUEUE and WARREN_PROTOCOL itself");
  EXPECT_EQ(execErrorOf("command: [x], env: {1X: a, A-B: b, C: [d]}"),
            "inline.yaml:2:53: queues[0].env.1X: an environment variable name is made of letters, "
            "digits and '_', not starting with a digit; got '1X'\n"
            "inline.yaml:2:60: queues[0].env.A-B: an environment variable name is made of "
            "letters, digits and '_', not starting with a digit; got 'A-B'\n"
            "inline.yaml:2:71: queues[0].env.C: expected a scalar, got a sequence");
  EXPECT_EQ(execErrorOf("command: [x], env: [A=b]"),
            "inline.yaml:2:52: queues[0].env: expected a map, got a sequence");
}

TEST(ExecConfigTest, WorkingDirectoryMustBeAnExistingDirectory) {
  const TempFile file("not_a_dir", "");
  EXPECT_EQ(execErrorOf("command: [x], working_directory: /nonexistent/warren"),
            "inline.yaml:2:66: queues[0].working_directory: cannot use '/nonexistent/warren': No "
            "such file or directory");
  EXPECT_EQ(execErrorOf("command: [x], working_directory: " + file.path().string()),
            "inline.yaml:2:66: queues[0].working_directory: '" + file.path().string() +
                "' is not a directory");
  EXPECT_EQ(queueErrorOf("working_directory: /"),
            "inline.yaml:3:49: queues[0].working_directory: `working_directory` is only for "
            "`handler: exec`");
  EXPECT_EQ(execQueueOf("command: [x], working_directory: /tmp/").working_directory,
            fs::path("/tmp"));
}

// One pass reports every mistake of an exec queue.
TEST(ExecConfigTest, ReportsEveryErrorOfAnExecQueue) {
  EXPECT_EQ(execErrorOf("isolation: none, env: {WARREN_QUEUE: q}, working_directory: ''"),
            "inline.yaml:2:5: queues[0].command: required key is missing: `handler: exec` runs "
            "the program it names, e.g. command: [python3, handler.py]\n"
            "inline.yaml:2:44: queues[0].isolation: `handler: exec` always runs in its own "
            "processes; remove `isolation` or set it to process\n"
            "inline.yaml:2:56: queues[0].env.WARREN_QUEUE: reserved: warrend sets WARREN_QUEUE "
            "and WARREN_PROTOCOL itself\n"
            "inline.yaml:2:93: queues[0].working_directory: must not be empty");
}

TEST(ExecConfigTest, AChangedProgramIsAChangedQueue) {
  const QueueConfig queue = execQueueOf("command: [a, b], env: {X: '1', Y: '2'}");
  EXPECT_EQ(queue, execQueueOf("command: [a, b], env: {X: '1', Y: '2'}"));
  EXPECT_NE(queue, execQueueOf("command: [a, c], env: {X: '1', Y: '2'}"));
  EXPECT_NE(queue, execQueueOf("command: [a, b], env: {X: '1', Y: '3'}"));
  EXPECT_NE(queue, execQueueOf("command: [a, b], env: {Y: '2', X: '1'}"));
  EXPECT_NE(queue, execQueueOf("command: [a, b], env: {X: '1', Y: '2'}, working_directory: /"));
  EXPECT_NE(queueOf("isolation: none"), queueOf("isolation: process"));
}

}  // namespace
}  // namespace warren
