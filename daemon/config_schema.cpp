#include "config_schema.h"

#include <array>
#include <chrono>
#include <stdexcept>

#include "duration.h"

namespace warren {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::int64_t ms(milliseconds value) { return value.count(); }

constexpr std::int64_t kMiB = std::int64_t{1024} * 1024;
// The broker's largest message (RabbitMQ's max_message_size default): a
// larger body could never arrive, a larger reply never be published.
constexpr std::int64_t kMaxMessageBytes = 128 * kMiB;

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

constexpr std::array<KeySpec, 6> kTopKeys = {{
    {"broker", KeyType::kMap, false, "", 0, 0, "Where the broker is and how to stay connected."},
    {"plugins", KeyType::kMap, true, "", 0, 0, "Where the handler plugins are."},
    {"logging", KeyType::kMap, false, "", 0, 0, "How much warrend logs."},
    {"metrics", KeyType::kMap, false, "", 0, 0, "The Prometheus metrics and readiness endpoint."},
    {"shutdown", KeyType::kMap, false, "", 0, 0, "How a stop treats requests in progress."},
    {"queues", KeyType::kSequence, true, "", 0, 0,
     "The queues served, at least one: each maps a queue to a handler plugin."},
}};

constexpr std::array<KeySpec, 4> kBrokerKeys = {{
    {"url", KeyType::kString, false, "amqp://guest:guest@localhost:5672/%2f", 0, 0,
     "AMQP URL of the broker: `amqp://user:password@host:port/vhost`, one host, no `?query`; "
     "the vhost `/` is written `%2f`."},
    {"heartbeat",
     KeyType::kDuration,
     false,
     "10s",
     0,
     ms(seconds(59)),
     "Heartbeat interval proposed to the broker; `0s` disables heartbeats. A whole number of "
     "seconds (AMQP negotiates heartbeats in seconds), below `60s` (the broker's own timeout).",
     {},
     "must be below 60s (the broker's own heartbeat timeout)"},
    {"connect_timeout", KeyType::kDuration, false, "5s", 1, ms(minutes(5)),
     "Time allowed to open the connection."},
    {"reconnect", KeyType::kMap, false, "", 0, 0,
     "How long to wait between reconnection attempts (below)."},
}};

constexpr std::array<KeySpec, 2> kReconnectKeys = {{
    {"initial_delay", KeyType::kDuration, false, "100ms", 1, ms(hours(1)),
     "First delay before reconnecting after the connection is lost."},
    {"max_delay", KeyType::kDuration, false, "30s", 0, ms(hours(1)),
     "Upper bound of the delay between reconnection attempts; not below `initial_delay`."},
}};

constexpr std::array<KeySpec, 1> kPluginsKeys = {{
    {"dir", KeyType::kString, true, "", 0, 0,
     "Directory holding the handler plugins, not empty. A relative path is relative to the "
     "directory of the configuration file, not to the working directory."},
}};

constexpr std::array<KeySpec, 1> kLoggingKeys = {{
    {"level", KeyType::kString, false, "info", 0, 0,
     "One of `trace`, `debug`, `info`, `warn`, `error`, `critical`, `off`.", kLogLevels},
}};

constexpr std::array<KeySpec, 2> kMetricsKeys = {{
    {"enabled", KeyType::kBool, false, "true", 0, 0,
     "Serve Prometheus metrics and the readiness check over HTTP."},
    {"listen", KeyType::kString, false, "127.0.0.1:9464", 0, 0,
     "Where to serve them: `HOST:PORT`, `HOST` an IPv4 address or an IPv6 address in brackets "
     "(quoted: `\"[::1]:9464\"`), never a name; `PORT` 1 to 65535. Checked even when "
     "`enabled: false`."},
}};

constexpr std::array<KeySpec, 1> kShutdownKeys = {{
    {"drain_timeout", KeyType::kDuration, false, "30s", 0, ms(hours(1)),
     "On shutdown, how long in-flight requests may take to finish."},
}};

constexpr std::array<KeySpec, 10> kQueueKeys = {{
    {"name", KeyType::kString, true, "", 0, 0,
     "Queue name: not empty, at most 255 bytes, not starting with `amq.` (reserved by the "
     "broker), unique among the queues of the file."},
    {"handler", KeyType::kString, true, "", 0, 0,
     "Plugin name: letters, digits, `_` and `-`. The plugin is loaded from "
     "`<plugins.dir>/<handler>.so`."},
    {"consumers", KeyType::kInteger, false, "5", 1, 1000,
     "Requests handled in parallel on this queue."},
    {"prefetch", KeyType::kInteger, false, "1", 1, 65535,
     "Unacknowledged messages the broker may deliver to each consumer (`basic.qos`)."},
    {"max_body_bytes", KeyType::kSize, false, "1048576", 1, kMaxMessageBytes,
     "Largest request body accepted, in bytes (at most the broker's 128 MiB)."},
    {"max_reply_bytes", KeyType::kSize, false, "16777216", 1, kMaxMessageBytes,
     "Largest reply body the handler may return; larger ones become an `internal` error reply."},
    {"durable", KeyType::kBool, false, "false", 0, 0,
     "Declare the queue durable (the seed's server declares it non-durable)."},
    {"auto_delete", KeyType::kBool, false, "false", 0, 0, "Declare the queue auto-delete."},
    {"arguments", KeyType::kMap, false, "{}", 0, 0,
     "x-arguments of `queue.declare`, e.g. `x-message-ttl: 60000`: scalars, each keeping its "
     "YAML type (integer, float, bool; a quoted value is a string)."},
    {"options", KeyType::kMap, false, "{}", 0, 0,
     "Plugin-specific settings: scalars, passed to the plugin as written (as text); the plugin "
     "validates them."},
}};

constexpr std::array<SectionSpec, 8> kSections = {{
    {"", "", kTopKeys},
    {"broker", "broker.", kBrokerKeys},
    {"broker.reconnect", "broker.reconnect.", kReconnectKeys},
    {"plugins", "plugins.", kPluginsKeys},
    {"logging", "logging.", kLoggingKeys},
    {"metrics", "metrics.", kMetricsKeys},
    {"shutdown", "shutdown.", kShutdownKeys},
    {"queues[]", "", kQueueKeys},
}};

std::string_view typeName(KeyType type) {
  switch (type) {
    case KeyType::kString:
      return "string";
    case KeyType::kInteger:
      return "integer";
    case KeyType::kSize:
      return "size";
    case KeyType::kBool:
      return "bool";
    case KeyType::kDuration:
      return "duration";
    case KeyType::kMap:
      return "map";
    case KeyType::kSequence:
      return "sequence";
  }
  return "?";
}

}  // namespace

const KeySpec& SectionSpec::key(std::string_view name) const {
  for (const KeySpec& spec : keys) {
    if (spec.name == name) return spec;
  }
  throw std::logic_error("config schema: no key '" + std::string(name) + "' in section '" +
                         std::string(path) + "'");
}

bool SectionSpec::has(std::string_view name) const {
  for (const KeySpec& spec : keys) {
    if (spec.name == name) return true;
  }
  return false;
}

std::string SectionSpec::allowed() const {
  std::string text;
  for (const KeySpec& spec : keys) {
    if (!text.empty()) text += ", ";
    text += spec.name;
  }
  return text;
}

std::span<const SectionSpec> configSchema() { return kSections; }

const SectionSpec& schemaSection(std::string_view path) {
  for (const SectionSpec& section : kSections) {
    if (section.path == path) return section;
  }
  throw std::logic_error("config schema: no section '" + std::string(path) + "'");
}

std::string boundsText(const KeySpec& key) {
  switch (key.type) {
    case KeyType::kInteger:
    case KeyType::kSize:
      return std::to_string(key.min) + " to " + std::to_string(key.max);
    case KeyType::kDuration:
      return (key.min == 0 ? std::string("0s") : std::string("above 0")) + " to " +
             formatDuration(milliseconds{key.max});
    default:
      return "";
  }
}

std::string renderKeyTable(const SectionSpec& section) {
  std::string table =
      "| Key | Type | Default | Bounds | Meaning |\n"
      "|-----|------|---------|--------|---------|\n";
  for (const KeySpec& key : section.keys) {
    std::string default_text = key.required ? "required"
                               : key.default_text.empty()
                                   ? ""
                                   : "`" + std::string(key.default_text) + "`";
    table += "| `" + std::string(section.doc_prefix) + std::string(key.name) + "` | " +
             std::string(typeName(key.type)) + " | " + default_text + " | " + boundsText(key) +
             " | " + std::string(key.description) + " |\n";
  }
  return table;
}

std::string renderKeyTables() {
  std::string text;
  for (const SectionSpec& section : kSections) {
    text += "<!-- keys: " + std::string(section.path) + " -->\n" + renderKeyTable(section) +
            "<!-- end keys -->\n";
  }
  return text;
}

}  // namespace warren
