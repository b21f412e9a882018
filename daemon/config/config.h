// SPDX-License-Identifier: Apache-2.0
// warrend's configuration: one YAML file, validated completely at load.
//
// Every rule violation is an error that starts with "FILE:LINE:COLUMN: " and
// names the key (as a path such as "queues[1].prefetch"); unknown keys also
// list the allowed ones. The loader reports all of a file's errors at once,
// in one ConfigError. The keys, their types, defaults and bounds are
// declared in config_schema.h.
// docs/configuration.md describes the file.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "broker_url.h"
#include "queue_argument.h"
#include "tls_settings.h"
#include "wire.h"

namespace warren {

// A position in the configuration file, 1-based as editors show it.
struct SourceMark {
  int line = 0;
  int column = 0;
};

// One or more configuration errors. The loader reports every error of a
// file in one ConfigError, ordered by position; what() is them all, one per
// line.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& message);
  explicit ConfigError(std::vector<std::string> messages);

  // Each error, "FILE:LINE:COLUMN: KEY: MESSAGE"; never empty.
  const std::vector<std::string>& errors() const { return *errors_; }

 private:
  // Shared, so that copying the exception cannot throw.
  std::shared_ptr<const std::vector<std::string>> errors_;
};

// "FILE:LINE:COLUMN: KEY: MESSAGE" — the one format of every config error,
// also used by the daemon for errors found after parsing (plugin load, plugin
// options) so they point at the line that caused them.
std::string formatConfigError(const std::filesystem::path& file, SourceMark mark,
                              const std::string& key, const std::string& message);

struct ReconnectConfig {
  std::chrono::milliseconds initial_delay{100};
  std::chrono::milliseconds max_delay{2000};
};

struct BrokerConfig {
  // One URL, or those of one cluster's nodes, as written.
  std::vector<std::string> urls = {std::string(wire::kDefaultBrokerUrl)};
  // `urls` parsed, with the user and password of broker.user and
  // broker.password_file/password_credential applied: the loader validates
  // them and reads the password, so --check-config refuses what a start
  // would refuse.
  std::vector<BrokerAddress> addresses = {BrokerAddress{"localhost", 5672, "/", "guest", "guest"}};
  std::string user;                     // broker.user; empty: from the URL
  std::filesystem::path password_file;  // where the password came from; empty: the URL
  LoginMechanism login = LoginMechanism::kPlain;
  TlsSettings tls;
  std::chrono::milliseconds heartbeat{10000};  // 0 disables heartbeats
  std::chrono::milliseconds connect_timeout{5000};
  ReconnectConfig reconnect;
};

struct QueueOption {
  std::string key;
  std::string value;  // the YAML scalar as written
  SourceMark mark;    // of the key
};

// Where a queue's handler runs.
enum class Isolation {
  kNone,     // in warrend's process (a plugin; the default)
  kProcess,  // in worker processes warrend supervises (always so for `handler: exec`)
};

// The handler name that stands for a program instead of a plugin.
inline constexpr const char* kExecHandler = "exec";

struct QueueConfig {
  std::string name;
  std::string handler;                // plugin name, or "exec"
  std::filesystem::path plugin_path;  // <plugins.dir>/<handler>.so, absolute; empty for exec
  Isolation isolation = Isolation::kNone;
  // handler: exec. `command` is the program and its arguments (argv, never
  // empty for exec), `env` the variables added to warrend's environment (in
  // file order), `working_directory` absolute (default: the config file's
  // directory).
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env;
  std::filesystem::path working_directory;
  // The longest wait before restarting a worker that keeps failing.
  std::chrono::milliseconds worker_restart_backoff_max{std::chrono::seconds(1)};
  int consumers = 5;
  int prefetch = 1;
  std::size_t max_body_bytes = 1024 * 1024;
  // Largest reply body published; a larger one becomes an `internal` error.
  std::size_t max_reply_bytes = 16 * 1024 * 1024;
  // The deadline of a request that carries none (x-warren-deadline): its
  // arrival plus this.
  std::chrono::milliseconds handler_timeout{std::chrono::seconds(60)};
  bool durable = false;
  bool auto_delete = false;
  bool quorum = false;  // type: quorum
  // dead_letter: {exchange, queue}; empty: none declared by warrend.
  struct DeadLetter {
    std::string exchange;
    std::string queue;
    bool operator==(const DeadLetter&) const = default;
  } dead_letter;
  // x-arguments of queue.declare: `arguments` as written, plus those that
  // type, delivery_limit and dead_letter stand for.
  std::map<std::string, QueueArgument> arguments;
  std::vector<QueueOption> options;
  std::string path;         // "queues[N]", for messages
  SourceMark mark;          // of the queue entry
  SourceMark handler_mark;  // of the `handler` value
  SourceMark options_mark;  // of the `options` key, or the entry when absent

  bool isExec() const { return handler == kExecHandler; }
};

// Compares what serving a queue depends on: name, handler, plugin path,
// isolation, command, env (in file order), working directory, worker restart
// backoff, consumers, prefetch, body and reply limits, handler timeout, declare
// settings and options (key and value, in file order). Where the queue sits in
// the file (path, marks) is left out, so that a reload can tell an unchanged
// queue from a changed one after lines above it moved.
bool operator==(const QueueConfig& a, const QueueConfig& b);

// A TCP address to listen on: an IP address literal and a port.
struct ListenAddress {
  std::string host;  // "127.0.0.1", "0.0.0.0", "::1" (IPv6 without the brackets)
  std::uint16_t port = 0;

  // "127.0.0.1:9464", "[::1]:9464": the form of metrics.listen.
  std::string toString() const;
  bool isIpv6() const;
  bool operator==(const ListenAddress&) const = default;
};

struct MetricsConfig {
  bool enabled = true;
  ListenAddress listen{"127.0.0.1", 9464};
  SourceMark listen_mark;  // of the `listen` value; none when absent
};

struct LoggingConfig {
  // trace, debug, info, warn, error, critical, off: spdlog's level names
  // (spdlog::level::from_str takes each of them).
  std::string level = "info";
  // text: one line per record, "TIME [LOGGER] [LEVEL] MESSAGE" (without TIME
  // under journald); json: one JSON object per line, the queue and plugin
  // as fields, for log shippers. Read at start: a reload does not change it.
  std::string format = "text";
};

struct ShutdownConfig {
  std::chrono::milliseconds drain_timeout{30000};
};

struct Config {
  std::filesystem::path file;  // absolute path of the file this came from
  BrokerConfig broker;
  std::filesystem::path plugin_dir;  // absolute
  std::vector<QueueConfig> queues;
  MetricsConfig metrics;
  LoggingConfig logging;
  ShutdownConfig shutdown;
};

// Reads and validates `file`. Throws ConfigError holding every error found.
Config loadConfig(const std::filesystem::path& file);

// Validates YAML text as if read from `file` (relative paths resolve against
// file's directory). Throws ConfigError holding every error found.
Config parseConfig(const std::string& yaml, const std::filesystem::path& file);

}  // namespace warren
