#include "config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include "config_schema.h"
#include "duration.h"

namespace warren {

std::string formatConfigError(const std::filesystem::path& file, SourceMark mark,
                              const std::string& key, const std::string& message) {
  std::string text = file.string();
  if (mark.line > 0) {
    text += ':' + std::to_string(mark.line) + ':' + std::to_string(mark.column);
  }
  text += ": ";
  if (!key.empty()) text += key + ": ";
  return text + message;
}

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr std::string_view kDurationForm =
    "a duration with a unit: ms, s, m or h (e.g. 250ms, 10s, 1.5s, 2m, 1h)";
constexpr milliseconds kMaxHeartbeat{60000};
constexpr std::size_t kMaxQueueNameBytes = 255;
constexpr std::int64_t kMaxBodyBytes = std::int64_t{128} * 1024 * 1024;
constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};
constexpr std::string_view kListenForm =
    "HOST:PORT with an IP address, e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464";

// ---------------------------------------------------------------------------
// Scalars as YAML (1.2 core schema) reads them.

// Quoted scalars and !!str ones are strings whatever their text.
bool isQuotedString(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

std::optional<bool> parseBool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

bool isDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// Strips one leading '+', which std::from_chars does not accept.
std::string_view withoutPlus(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  return text;
}

// Decimal integer text: [-+]?[0-9]+
bool looksLikeInteger(std::string_view text) {
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) text.remove_prefix(1);
  return isDigits(text);
}

// The value of integer text (see looksLikeInteger), or nullopt when it overflows.
std::optional<std::int64_t> parseInteger(std::string_view text) {
  text = withoutPlus(text);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Decimal floating point text such as 1.5, -0.25, 1e3 (no inf or nan).
std::optional<double> parseFloat(std::string_view text) {
  text = withoutPlus(text);
  if (text.find_first_of("0123456789") == std::string_view::npos ||
      text.find_first_not_of("0123456789.eE+-") != std::string_view::npos) {
    return std::nullopt;
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return isQuotedString(node) ? "the string \"" + node.Scalar() + "\""
                                  : "'" + node.Scalar() + "'";
    default:
      return "null";
  }
}

bool isIpv4Literal(const std::string& host) {
  in_addr address{};
  return inet_pton(AF_INET, host.c_str(), &address) == 1;
}

bool isIpv6Literal(const std::string& host) {
  in6_addr address{};
  return inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

std::string join(std::initializer_list<std::string_view> words) {
  std::string text;
  for (const std::string_view word : words) {
    if (!text.empty()) text += ", ";
    text += word;
  }
  return text;
}

SourceMark toSourceMark(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

std::string childPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// ---------------------------------------------------------------------------
// Reading the document.

// One value of the document with where it came from.
struct Field {
  std::string path;  // dotted, e.g. "broker.reconnect.max_delay"; empty for the root
  std::string name;  // the key as written; empty for the root and sequence items
  YAML::Node key;    // the key's node; a null-marked node for the root and items
  YAML::Node value;
};

using Fields = std::vector<Field>;

// Where to point for a bad value. An empty value ("key:") carries the mark of the
// token after it, so null values point at their key.
YAML::Mark valueMark(const Field& field) {
  if (field.value.IsNull() && !field.key.Mark().is_null()) return field.key.Mark();
  return field.value.Mark();
}

const Field* find(const Fields& fields, std::string_view name) {
  for (const Field& field : fields) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

class Parser {
 public:
  explicit Parser(fs::path file)
      : file_(std::move(file)), base_dir_(fs::absolute(file_).parent_path()) {}

  Config parse(const std::string& yaml) const {
    const Field root{"", "", YAML::Node(), loadDocument(yaml)};
    const Fields fields =
        entries(root, {"broker", "plugins", "logging", "metrics", "shutdown", "queues"});
    Config config;
    config.file = fs::absolute(file_).lexically_normal();
    if (const Field* broker = find(fields, "broker")) config.broker = readBroker(*broker);
    config.plugin_dir = readPlugins(require(root, fields, "plugins"));
    if (const Field* logging = find(fields, "logging")) config.logging = readLogging(*logging);
    if (const Field* metrics = find(fields, "metrics")) config.metrics = readMetrics(*metrics);
    if (const Field* shutdown = find(fields, "shutdown")) {
      config.shutdown = readShutdown(*shutdown);
    }
    config.queues = readQueues(require(root, fields, "queues"), config.plugin_dir);
    return config;
  }

 private:
  // --- errors

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path,
                         const std::string& message) const {
    throw ConfigError(formatConfigError(file_, toSourceMark(mark), path, message));
  }

  [[noreturn]] void failValue(const Field& field, const std::string& message) const {
    fail(valueMark(field), field.path, message);
  }

  [[noreturn]] void failType(const Field& field, std::string_view expected) const {
    failValue(field, "expected " + std::string(expected) + ", got " + describe(field.value));
  }

  // --- structure

  YAML::Node loadDocument(const std::string& yaml) const {
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(yaml);
    } catch (const YAML::Exception& error) {
      fail(error.mark, "", "YAML syntax error: " + error.msg);
    }
    if (documents.size() > 1) {
      fail(documents[1].Mark(), "", "only one YAML document is allowed");
    }
    if (documents.empty() || documents.front().IsNull()) {
      fail(YAML::Mark(), "", "the file is empty; expected a map with at least plugins and queues");
    }
    if (!documents.front().IsMap()) {
      const std::string expected =
          "the top level must be a map (broker, plugins, logging, metrics, shutdown, queues)";
      fail(documents.front().Mark(), "", expected + ", got " + describe(documents.front()));
    }
    return documents.front();
  }

  // The entries of a map value; keys must be scalars and appear once.
  Fields entries(const Field& map) const {
    if (!map.value.IsMap()) failType(map, "a map");
    Fields fields;
    for (const auto& entry : map.value) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) fail(key.Mark(), map.path, "keys must be scalars, got " + describe(key));
      Field field{childPath(map.path, key.Scalar()), key.Scalar(), key, entry.second};
      if (const Field* first = find(fields, field.name)) {
        fail(key.Mark(), field.path,
             "duplicate key; first defined at line " +
                 std::to_string(toSourceMark(first->key.Mark()).line));
      }
      fields.push_back(std::move(field));
    }
    return fields;
  }

  // The entries of a map value whose keys must be among `allowed`.
  Fields entries(const Field& map, std::initializer_list<std::string_view> allowed) const {
    Fields fields = entries(map);
    for (const Field& field : fields) {
      bool known = false;
      for (const std::string_view name : allowed) known = known || field.name == name;
      if (!known) fail(field.key.Mark(), field.path, "unknown key; allowed: " + join(allowed));
    }
    return fields;
  }

  // Absent keys have no mark: report the map that lacks them.
  const Field& require(const Field& map, const Fields& fields, const std::string& name) const {
    const Field* field = find(fields, name);
    if (field == nullptr) {
      fail(map.value.Mark(), childPath(map.path, name), "required key is missing");
    }
    return *field;
  }

  // --- typed values

  std::string readString(const Field& field) const {
    if (!field.value.IsScalar()) failType(field, "a string");
    return field.value.Scalar();
  }

  std::string readNonEmptyString(const Field& field) const {
    std::string text = readString(field);
    if (text.empty()) failValue(field, "must not be empty");
    return text;
  }

  std::int64_t readInt(const Field& field, std::int64_t min, std::int64_t max) const {
    if (!field.value.IsScalar() || isQuotedString(field.value) ||
        !looksLikeInteger(field.value.Scalar())) {
      failType(field, "an integer");
    }
    const std::optional<std::int64_t> value = parseInteger(field.value.Scalar());
    if (!value || *value < min || *value > max) {
      failValue(field, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           ", got " + field.value.Scalar());
    }
    return *value;
  }

  bool readBool(const Field& field) const {
    std::optional<bool> value;
    if (field.value.IsScalar() && !isQuotedString(field.value)) {
      value = parseBool(field.value.Scalar());
    }
    if (!value) failType(field, "true or false");
    return *value;
  }

  // Capped at the schema's max: a huge value would overflow the deadline
  // arithmetic (now() + duration) of whoever waits that long.
  milliseconds readDuration(const Field& field, const KeySpec& spec, bool check_max = true) const {
    std::variant<milliseconds, DurationError> parsed = DurationError::kMalformed;
    if (field.value.IsScalar()) parsed = parseDurationText(field.value.Scalar());
    const milliseconds* value = std::get_if<milliseconds>(&parsed);
    if (value == nullptr && std::get<DurationError>(parsed) == DurationError::kMalformed) {
      failType(field, kDurationForm);
    }
    if (value == nullptr || (check_max && value->count() > spec.max)) {
      const std::string bound = spec.max_message.empty()
                                    ? "must be at most " + formatDuration(milliseconds{spec.max})
                                    : std::string(spec.max_message);
      failValue(field, bound + ", got " + field.value.Scalar());
    }
    return *value;
  }

  milliseconds readPositiveDuration(const Field& field, const KeySpec& spec) const {
    const milliseconds value = readDuration(field, spec);
    if (value.count() == 0) failValue(field, "must be greater than 0");
    return value;
  }

  // --- sections

  BrokerConfig readBroker(const Field& broker) const {
    const Fields fields = entries(broker, {"url", "heartbeat", "connect_timeout", "reconnect"});
    BrokerConfig config;
    if (const Field* url = find(fields, "url")) {
      config.url = readUrl(*url);
      config.address = address_;
    }
    if (const Field* heartbeat = find(fields, "heartbeat")) {
      config.heartbeat = readHeartbeat(*heartbeat);
    }
    if (const Field* timeout = find(fields, "connect_timeout")) {
      config.connect_timeout =
          readPositiveDuration(*timeout, schemaSection("broker").key("connect_timeout"));
    }
    if (const Field* reconnect = find(fields, "reconnect")) {
      config.reconnect = readReconnect(*reconnect);
    }
    return config;
  }

  std::string readUrl(const Field& field) const {
    std::string url = readString(field);
    // The URL is not echoed: it may hold a password.
    if (!url.starts_with("amqp://")) failValue(field, "must start with amqp://");
    try {
      address_ = parseBrokerUrl(url);
    } catch (const std::invalid_argument& e) {
      failValue(field, e.what());
    }
    return url;
  }

  milliseconds readHeartbeat(const Field& field) const {
    const milliseconds value =
        readDuration(field, schemaSection("broker").key("heartbeat"), /*check_max=*/false);
    if (value >= kMaxHeartbeat) {
      failValue(field, "must be below 60s (the broker's own heartbeat timeout), got " +
                           field.value.Scalar());
    }
    if (value.count() % 1000 != 0) {
      const std::string why = "AMQP negotiates heartbeats in seconds";
      failValue(field,
                "must be a whole number of seconds (" + why + "), got " + field.value.Scalar());
    }
    return value;
  }

  ReconnectConfig readReconnect(const Field& reconnect) const {
    const Fields fields = entries(reconnect, {"initial_delay", "max_delay"});
    ReconnectConfig config;
    const Field* initial = find(fields, "initial_delay");
    const Field* max = find(fields, "max_delay");
    const SectionSpec& section = schemaSection("broker.reconnect");
    if (initial != nullptr) {
      config.initial_delay = readPositiveDuration(*initial, section.key("initial_delay"));
    }
    if (max != nullptr) config.max_delay = readDuration(*max, section.key("max_delay"));
    if (config.max_delay < config.initial_delay) {
      if (max != nullptr) {
        failValue(*max, "must not be below broker.reconnect.initial_delay (" +
                            std::to_string(config.initial_delay.count()) + "ms)");
      }
      failValue(*initial, "must not exceed broker.reconnect.max_delay (" +
                              std::to_string(config.max_delay.count()) + "ms)");
    }
    return config;
  }

  fs::path readPlugins(const Field& plugins) const {
    const Fields fields = entries(plugins, {"dir"});
    fs::path dir =
        (base_dir_ / readNonEmptyString(require(plugins, fields, "dir"))).lexically_normal();
    if (dir.has_relative_path() && !dir.has_filename()) dir = dir.parent_path();  // trailing '/'
    return dir;
  }

  LoggingConfig readLogging(const Field& logging) const {
    const Fields fields = entries(logging, {"level"});
    LoggingConfig config;
    if (const Field* level = find(fields, "level")) {
      config.level = readString(*level);
      bool known = false;
      for (const std::string_view name : kLogLevels) known = known || config.level == name;
      if (!known) {
        failValue(*level, "must be one of trace, debug, info, warn, error, critical, off; got " +
                              describe(level->value));
      }
    }
    return config;
  }

  MetricsConfig readMetrics(const Field& metrics) const {
    const Fields fields = entries(metrics, {"enabled", "listen"});
    MetricsConfig config;
    if (const Field* enabled = find(fields, "enabled")) config.enabled = readBool(*enabled);
    if (const Field* listen = find(fields, "listen")) {
      config.listen = readListenAddress(*listen);
      config.listen_mark = toSourceMark(valueMark(*listen));
    }
    return config;
  }

  // HOST:PORT, HOST an IP address literal: names are not resolved here, so the
  // file means the same on every machine and the check needs no DNS.
  ListenAddress readListenAddress(const Field& field) const {
    const std::string text = readString(field);
    std::string host;
    std::string port;
    if (text.starts_with('[')) {
      const std::size_t close = text.find("]:");
      if (close == std::string::npos) failType(field, kListenForm);
      host = text.substr(1, close - 1);
      port = text.substr(close + 2);
      if (!isIpv6Literal(host)) {
        failValue(field, "the host in brackets must be an IPv6 address, got '" + host + "'");
      }
    } else {
      const std::size_t colon = text.rfind(':');
      if (colon == std::string::npos || colon == 0) failType(field, kListenForm);
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (host.find(':') != std::string::npos) {
        failValue(field, "an IPv6 address must be written in brackets, e.g. [::1]:9464, got " +
                             describe(field.value));
      }
      if (!isIpv4Literal(host)) {
        failValue(field,
                  "the host must be an IPv4 address (e.g. 127.0.0.1, 0.0.0.0) or an IPv6 address "
                  "in brackets (e.g. [::1]); names are not resolved, got '" +
                      host + "'");
      }
    }
    const std::optional<std::int64_t> number =
        isDigits(port) ? parseInteger(port) : std::optional<std::int64_t>();
    if (!number || *number < 1 || *number > 65535) {
      failValue(field, "the port must be a number from 1 to 65535, got '" + port + "'");
    }
    return {host, static_cast<std::uint16_t>(*number)};
  }

  ShutdownConfig readShutdown(const Field& shutdown) const {
    const Fields fields = entries(shutdown, {"drain_timeout"});
    ShutdownConfig config;
    if (const Field* drain = find(fields, "drain_timeout")) {
      config.drain_timeout = readDuration(*drain, schemaSection("shutdown").key("drain_timeout"));
    }
    return config;
  }

  // --- queues

  std::vector<QueueConfig> readQueues(const Field& queues, const fs::path& plugin_dir) const {
    if (!queues.value.IsSequence()) failType(queues, "a sequence of queues");
    if (queues.value.size() == 0) failValue(queues, "must list at least one queue");
    std::vector<QueueConfig> configs;
    std::map<std::string, int> first_line_by_name;
    for (const auto& item : queues.value) {
      const Field entry{"queues[" + std::to_string(configs.size()) + "]", "", YAML::Node(), item};
      configs.push_back(readQueue(entry, plugin_dir, first_line_by_name));
    }
    return configs;
  }

  QueueConfig readQueue(const Field& entry, const fs::path& plugin_dir,
                        std::map<std::string, int>& first_line_by_name) const {
    const Fields fields =
        entries(entry, {"name", "handler", "consumers", "prefetch", "max_body_bytes",
                        "max_reply_bytes", "durable", "auto_delete", "arguments", "options"});
    QueueConfig config;
    config.path = entry.path;
    config.mark = toSourceMark(entry.value.Mark());
    config.options_mark = config.mark;

    const Field& name = require(entry, fields, "name");
    config.name = readQueueName(name);
    const int line = toSourceMark(valueMark(name)).line;
    if (const auto [first, added] = first_line_by_name.emplace(config.name, line); !added) {
      failValue(name, "duplicate queue name \"" + config.name + "\"; first defined at line " +
                          std::to_string(first->second));
    }

    const Field& handler = require(entry, fields, "handler");
    config.handler = readHandler(handler);
    config.handler_mark = toSourceMark(valueMark(handler));
    config.plugin_path = plugin_dir / (config.handler + ".so");

    readQueueSettings(fields, config);
    return config;
  }

  // The optional keys of a queue entry.
  void readQueueSettings(const Fields& fields, QueueConfig& config) const {
    if (const Field* consumers = find(fields, "consumers")) {
      config.consumers = static_cast<int>(readInt(*consumers, 1, 1000));
    }
    if (const Field* prefetch = find(fields, "prefetch")) {
      config.prefetch = static_cast<int>(readInt(*prefetch, 1, 65535));
    }
    if (const Field* max_body = find(fields, "max_body_bytes")) {
      config.max_body_bytes = static_cast<std::size_t>(readInt(*max_body, 1, kMaxBodyBytes));
    }
    if (const Field* max_reply = find(fields, "max_reply_bytes")) {
      config.max_reply_bytes = static_cast<std::size_t>(readInt(*max_reply, 1, kMaxBodyBytes));
    }
    if (const Field* durable = find(fields, "durable")) config.durable = readBool(*durable);
    if (const Field* auto_delete = find(fields, "auto_delete")) {
      config.auto_delete = readBool(*auto_delete);
    }
    if (const Field* arguments = find(fields, "arguments")) {
      config.arguments = readArguments(*arguments);
    }
    if (const Field* options = find(fields, "options")) {
      config.options = readOptions(*options);
      config.options_mark = toSourceMark(options->key.Mark());
    }
  }

  std::string readQueueName(const Field& field) const {
    std::string name = readNonEmptyString(field);
    if (name.size() > kMaxQueueNameBytes) {
      failValue(field, "must be at most 255 bytes, got " + std::to_string(name.size()));
    }
    if (name.starts_with("amq.")) {
      failValue(field, "names starting with \"amq.\" are reserved by the broker");
    }
    return name;
  }

  std::string readHandler(const Field& field) const {
    std::string handler = readNonEmptyString(field);
    if (handler.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789_-") != std::string::npos) {
      failValue(field, "must be a plugin name made of letters, digits, '_' and '-', got " +
                           describe(field.value));
    }
    return handler;
  }

  std::map<std::string, QueueArgument> readArguments(const Field& arguments) const {
    std::map<std::string, QueueArgument> values;
    for (const Field& argument : entries(arguments)) {
      values.emplace(argument.name, readArgument(argument));
    }
    return values;
  }

  // A YAML scalar, typed as the core schema reads it; quoted ones stay strings.
  QueueArgument readArgument(const Field& field) const {
    if (!field.value.IsScalar()) failType(field, "a scalar (integer, float, bool or string)");
    const std::string& text = field.value.Scalar();
    if (isQuotedString(field.value)) return text;
    if (const std::optional<bool> flag = parseBool(text)) return *flag;
    if (looksLikeInteger(text)) {
      const std::optional<std::int64_t> number = parseInteger(text);
      if (!number) failValue(field, "integer out of the 64-bit range: " + text);
      return *number;
    }
    if (const std::optional<double> number = parseFloat(text)) return *number;
    return text;
  }

  std::vector<QueueOption> readOptions(const Field& options) const {
    std::vector<QueueOption> values;
    for (const Field& option : entries(options)) {
      if (!option.value.IsScalar()) failType(option, "a scalar");
      values.push_back({option.name, option.value.Scalar(), toSourceMark(option.key.Mark())});
    }
    return values;
  }

  mutable BrokerAddress address_;  // what readUrl() parsed
  fs::path file_;                  // as given, for messages
  fs::path base_dir_;              // absolute directory of file_, for relative paths
};

struct FileCloser {
  void operator()(std::FILE* stream) const { static_cast<void>(std::fclose(stream)); }
};

[[noreturn]] void failRead(const fs::path& file, int error) {
  throw ConfigError(formatConfigError(
      file, {}, "", "cannot read: " + std::error_code(error, std::generic_category()).message()));
}

std::string readFile(const fs::path& file) {
  errno = 0;
  const std::unique_ptr<std::FILE, FileCloser> stream(std::fopen(file.c_str(), "rb"));
  if (!stream) failRead(file, errno);
  std::string text;
  std::array<char, 4096> buffer{};
  std::size_t count = 0;
  while ((count = std::fread(buffer.data(), 1, buffer.size(), stream.get())) > 0) {
    text.append(buffer.data(), count);
  }
  if (std::ferror(stream.get()) != 0) failRead(file, errno);
  return text;
}

}  // namespace

bool operator==(const QueueConfig& a, const QueueConfig& b) {
  const auto same_options = [](const std::vector<QueueOption>& x,
                               const std::vector<QueueOption>& y) {
    return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                      [](const QueueOption& one, const QueueOption& other) {
                        return one.key == other.key && one.value == other.value;
                      });
  };
  return a.name == b.name && a.handler == b.handler && a.plugin_path == b.plugin_path &&
         a.consumers == b.consumers && a.prefetch == b.prefetch &&
         a.max_body_bytes == b.max_body_bytes && a.max_reply_bytes == b.max_reply_bytes &&
         a.durable == b.durable && a.auto_delete == b.auto_delete && a.arguments == b.arguments &&
         same_options(a.options, b.options);
}

std::string ListenAddress::toString() const {
  const std::string port_text = ':' + std::to_string(port);
  return isIpv6() ? '[' + host + ']' + port_text : host + port_text;
}

bool ListenAddress::isIpv6() const { return host.find(':') != std::string::npos; }

Config parseConfig(const std::string& yaml, const std::filesystem::path& file) {
  return Parser(file).parse(yaml);
}

Config loadConfig(const std::filesystem::path& file) { return parseConfig(readFile(file), file); }

}  // namespace warren
