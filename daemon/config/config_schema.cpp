// SPDX-License-Identifier: Apache-2.0
#include "config_schema.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "config.h"
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

// Defaults, read from the initialisers in config.h.
std::string noDefault() { return ""; }
std::string emptyMap() { return "{}"; }
std::string boolText(bool value) { return value ? "true" : "false"; }

constexpr std::array<KeySpec, 6> kTopKeys = {{
    {"broker", KeyType::kMap, false, noDefault, 0, 0,
     "Where the broker is and how to stay connected."},
    {"plugins", KeyType::kMap, false, noDefault, 0, 0,
     "Where the handler plugins are. Required unless every queue is `handler: exec`."},
    {"logging", KeyType::kMap, false, noDefault, 0, 0, "How much warrend logs."},
    {"metrics", KeyType::kMap, false, noDefault, 0, 0,
     "The Prometheus metrics and readiness endpoint."},
    {"shutdown", KeyType::kMap, false, noDefault, 0, 0, "How a stop treats requests in progress."},
    {"queues", KeyType::kSequence, true, nullptr, 0, 0,
     "The queues served, at least one: each maps a queue to a handler plugin, or to a program "
     "(`handler: exec`)."},
}};

constexpr std::array<std::string_view, 2> kLoginMechanisms = {"plain", "external"};
constexpr std::array<std::string_view, 2> kQueueTypes = {"classic", "quorum"};
constexpr std::array<std::string_view, 2> kIsolations = {"none", "process"};

constexpr std::array<KeySpec, 9> kBrokerKeys = {{
    {"url", KeyType::kStrings, false, [] { return BrokerConfig{}.urls.front(); }, 0, 0,
     "AMQP URL of the broker, `amqp://` or `amqps://` (TLS, see `broker.tls`), or a list of the "
     "URLs of one cluster's nodes: each queue's connection opens on one of them, spread over the "
     "list, and after a loss goes to the next that answers. One host per URL (no `,`), no "
     "`?query`; all with the same vhost. The vhost `/` is written `%2f`; any of `@ : / ? # % [ ]` "
     "in the user, password or vhost is percent-encoded (`%40 %3A %2F %3F %23 %25 %5B %5D`)."},
    {"user", KeyType::kString, false, noDefault, 1, 0,
     "User name to log in with, when the URL names none (then the URLs name no user)."},
    {"password_file", KeyType::kString, false, noDefault, 1, 0,
     "File holding the password (one line; a trailing newline is ignored), read at start and at "
     "each reload. The URLs then hold no password. A relative path is relative to the "
     "configuration file's directory."},
    {"password_credential", KeyType::kString, false, noDefault, 1, 0,
     "Name of a systemd credential holding the password: `LoadCredential=NAME:PATH` in the unit "
     "puts it in `$CREDENTIALS_DIRECTORY/NAME`, readable by the service alone. Instead of "
     "`password_file`."},
    {"auth_mechanism", KeyType::kString, false, [] { return std::string("plain"); }, 0, 0,
     "`plain`: user name and password. `external`: the TLS client certificate "
     "(`broker.tls.cert_file`) names the user (RabbitMQ's `rabbitmq_auth_mechanism_ssl`); the URLs "
     "then hold no credentials.",
     kLoginMechanisms},
    {"tls", KeyType::kMap, false, noDefault, 0, 0,
     "TLS for `amqps://` URLs (below); a bare `amqps://` URL verifies the broker against the "
     "system trust store."},
    {"heartbeat",
     KeyType::kDuration,
     false,
     [] { return formatDuration(BrokerConfig{}.heartbeat); },
     0,
     ms(seconds(59)),
     "Heartbeat interval proposed to the broker; `0s` disables heartbeats. A whole number of "
     "seconds (AMQP negotiates heartbeats in seconds), below `60s` (the broker's own timeout). "
     "Twice the negotiated value bounds every send: it is each broker socket's "
     "`TCP_USER_TIMEOUT`, and a send the broker takes no byte of for that long loses the "
     "connection (with `0s`: 10 s).",
     {},
     "must be below 60s (the broker's own heartbeat timeout)"},
    {"connect_timeout", KeyType::kDuration, false,
     [] { return formatDuration(BrokerConfig{}.connect_timeout); }, 1, ms(minutes(5)),
     "Time allowed to open the connection."},
    {"reconnect", KeyType::kMap, false, noDefault, 0, 0,
     "How long to wait between reconnection attempts (below)."},
}};

constexpr std::array<KeySpec, 4> kTlsKeys = {{
    {"ca_file", KeyType::kString, false, noDefault, 1, 0,
     "PEM file of the CA certificate(s) the broker's certificate must chain to. Default: the "
     "system trust store (`/etc/ssl/certs`). Relative paths here are relative to the "
     "configuration file's directory."},
    {"cert_file", KeyType::kString, false, noDefault, 1, 0,
     "PEM client certificate presented to the broker, with `key_file`: for a broker that "
     "verifies clients, and for `auth_mechanism: external`."},
    {"key_file", KeyType::kString, false, noDefault, 1, 0,
     "PEM private key of `cert_file` (unencrypted; keep it readable by warrend alone)."},
    {"verify", KeyType::kBool, false, [] { return boolText(TlsSettings{}.verify); }, 0, 0,
     "Check that the broker's certificate chains to a trusted CA and names the URL's host. "
     "`false` accepts any certificate (an attacker on the path can read and change everything); "
     "warrend logs a warning at each start."},
}};

constexpr std::array<KeySpec, 2> kDeadLetterKeys = {{
    {"exchange", KeyType::kString, true, nullptr, 1, 255,
     "Direct exchange warrend declares (durable) for the queue's dead letters."},
    {"queue", KeyType::kString, true, nullptr, 1, 255,
     "Queue warrend declares (durable, of the queue's `type`) and binds to `exchange` with the "
     "served queue's name as routing key: where requests past `delivery_limit`, and requests "
     "refused a reply, wait for an operator."},
}};

constexpr std::array<KeySpec, 2> kReconnectKeys = {{
    {"initial_delay", KeyType::kDuration, false,
     [] { return formatDuration(ReconnectConfig{}.initial_delay); }, 1, ms(hours(1)),
     "First delay before reconnecting after the connection is lost."},
    {"max_delay", KeyType::kDuration, false,
     [] { return formatDuration(ReconnectConfig{}.max_delay); }, 0, ms(hours(1)),
     "Upper bound of the delay between reconnection attempts; not below `initial_delay`. The "
     "default brings consumers back within about 2 s of a broker's return."},
}};

constexpr std::array<KeySpec, 1> kPluginsKeys = {{
    {"dir", KeyType::kString, true, nullptr, 1, 0,
     "Directory holding the handler plugins. A relative path is relative to the directory of the "
     "configuration file, not to the working directory."},
}};

constexpr std::array<std::string_view, 2> kLogFormats = {"text", "json"};

constexpr std::array<KeySpec, 2> kLoggingKeys = {{
    {"level", KeyType::kString, false, [] { return LoggingConfig{}.level; }, 0, 0,
     "How much warrend logs: one of the words in Bounds (spdlog's level names).", kLogLevels},
    {"format", KeyType::kString, false, [] { return LoggingConfig{}.format; }, 0, 0,
     "`text`: one line per record, `TIME [LOGGER] [LEVEL] MESSAGE` (no `TIME` under journald, "
     "which stamps its own). `json`: one JSON object per line, with `time`, `level`, `logger`, "
     "`message`, and `queue` and `plugin` for a queue's records, for log shippers. Read at "
     "start: a reload that changes it logs a warning and keeps the running format.",
     kLogFormats},
}};

constexpr std::array<KeySpec, 2> kMetricsKeys = {{
    {"enabled", KeyType::kBool, false, [] { return boolText(MetricsConfig{}.enabled); }, 0, 0,
     "Serve Prometheus metrics and the readiness check over HTTP."},
    {"listen", KeyType::kString, false, [] { return MetricsConfig{}.listen.toString(); }, 0, 0,
     "Where to serve them: `HOST:PORT`. `HOST` is an IPv4 address (`127.0.0.1` for this machine "
     "only, `0.0.0.0` for every interface) or an IPv6 address in brackets (`\"[::1]:9464\"`, "
     "quoted: an unquoted `[` starts a YAML list); host names are not resolved. `PORT`: 1 to "
     "65535. Checked even when `enabled: false`."},
}};

constexpr std::array<KeySpec, 1> kShutdownKeys = {{
    {"drain_timeout", KeyType::kDuration, false,
     [] { return formatDuration(ShutdownConfig{}.drain_timeout); }, 0, ms(hours(1)),
     "On shutdown, how long in-flight requests may take to finish."},
}};

constexpr std::array<KeySpec, 19> kQueueKeys = {{
    {"name", KeyType::kString, true, nullptr, 1, 255,
     "Queue name: not starting with `amq.` (reserved by the broker), unique among the queues of "
     "the file."},
    {"handler", KeyType::kString, true, nullptr, 1, 0,
     "Plugin name: letters, digits, `_` and `-` only. The plugin is loaded from "
     "`<plugins.dir>/<handler>.so`. `exec` is reserved: it runs the program of `command` instead "
     "of a plugin (see docs/exec-handlers.md), so a plugin file called `exec.so` cannot be "
     "served."},
    {"isolation", KeyType::kString, false, [] { return std::string("none"); }, 0, 0,
     "Where the handler runs. `none`: the plugin is loaded in warrend's process. `process`: the "
     "plugin is loaded in worker processes supervised by warrend, one per consumer; a worker that "
     "crashes costs only the request it held (answered `handler_crashed`) and is restarted with "
     "backoff (`worker_restart_backoff_max`); a worker still holding a request at its deadline is "
     "killed (`deadline_exceeded`). `handler: exec` is always `process`. See "
     "docs/exec-handlers.md.",
     kIsolations},
    {"command", KeyType::kSequence, false, noDefault, 0, 0,
     "`handler: exec` only, and required there: the program and its arguments, one non-empty "
     "string per item (`argv`), e.g. `[python3, handler.py]`. No shell is involved. An `argv[0]` "
     "without a `/` is looked up in `PATH`; a relative one with a `/` is relative to "
     "`working_directory`."},
    {"env", KeyType::kMap, false, emptyMap, 0, 0,
     "`handler: exec` only: environment variables the program gets on top of warrend's own, "
     "`NAME: value` (each value a scalar, passed as written). A name is letters, digits and `_`, "
     "not starting with a digit; `WARREN_QUEUE` and `WARREN_PROTOCOL` are set by warrend and "
     "cannot be given."},
    {"working_directory", KeyType::kString, false, noDefault, 1, 0,
     "`handler: exec` only: the program's working directory; it must exist. A relative path is "
     "relative to the configuration file's directory, which is also the default."},
    {"worker_restart_backoff_max", KeyType::kDuration, false,
     [] { return formatDuration(QueueConfig{}.worker_restart_backoff_max); }, 0, ms(hours(1)),
     "`isolation: process` or `handler: exec` only: the longest wait before restarting a worker "
     "that keeps failing: failures in a row wait twice as long each time, up to this; a good "
     "reply resets the wait (see docs/exec-handlers.md)."},
    {"consumers", KeyType::kInteger, false, [] { return std::to_string(QueueConfig{}.consumers); },
     1, 1000, "Requests handled in parallel on this queue."},
    {"prefetch", KeyType::kInteger, false, [] { return std::to_string(QueueConfig{}.prefetch); }, 1,
     65535, "Unacknowledged messages the broker may deliver to each consumer (`basic.qos`)."},
    {"max_body_bytes", KeyType::kSize, false,
     [] { return std::to_string(QueueConfig{}.max_body_bytes); }, 1, kMaxMessageBytes,
     "Largest request body accepted, in bytes (at most 128 MiB, the broker's default "
     "`max_message_size`)."},
    {"max_reply_bytes", KeyType::kSize, false,
     [] { return std::to_string(QueueConfig{}.max_reply_bytes); }, 1, kMaxMessageBytes,
     "Largest reply body a handler may return, in bytes. A larger reply is not sent; the caller "
     "gets an `internal` error reply instead."},
    {"handler_timeout", KeyType::kDuration, false,
     [] { return formatDuration(QueueConfig{}.handler_timeout); }, 1, ms(hours(24)),
     "The deadline of a request that carries none (no `x-warren-deadline` header): its arrival "
     "plus this. The handler sees it (`deadline_ms`); a reply ready after it is replaced by a "
     "`deadline_exceeded` error reply, and the handler is logged as late. A handler in warrend's "
     "process still running this long after it started is logged with its request and counted "
     "in `warren_handlers_held`; when every consumer of the queue is so held, `/ready` says the "
     "queue is not ready. In worker processes (`isolation: process`, `handler: exec`) the worker "
     "is killed at the deadline instead."},
    {"durable", KeyType::kBool, false, [] { return boolText(QueueConfig{}.durable); }, 0, 0,
     "Declare the queue durable. The default matches the seed's server (pika defaults: "
     "non-durable, no arguments)."},
    {"auto_delete", KeyType::kBool, false, [] { return boolText(QueueConfig{}.auto_delete); }, 0, 0,
     "Declare the queue auto-delete."},
    {"type", KeyType::kString, false, [] { return std::string("classic"); }, 0, 0,
     "`classic`: declared as the seed declares it (no `x-queue-type`). `quorum`: a replicated "
     "quorum queue (`x-queue-type: quorum`), for a cluster; always durable.",
     kQueueTypes},
    {"delivery_limit", KeyType::kInteger, false, noDefault, 1, 1000000,
     "Quorum queues: deliveries of one request after which the broker stops redelivering it "
     "(`x-delivery-limit`) and dead-letters it to `dead_letter` (or drops it, without one). A "
     "request whose handler crashes warrend every time ends there instead of looping."},
    {"dead_letter", KeyType::kMap, false, noDefault, 0, 0,
     "Where the broker sends the queue's dead letters (below): sets `x-dead-letter-exchange` and "
     "`x-dead-letter-routing-key`."},
    {"arguments", KeyType::kMap, false, emptyMap, 0, 0,
     "x-arguments of `queue.declare`, e.g. `x-message-ttl: 60000`. Each value must be a scalar "
     "and keeps its YAML type: integer, float (`0.5`, `1e3`), bool, or string (anything else, "
     "and every quoted value)."},
    {"options", KeyType::kMap, false, emptyMap, 0, 0,
     "Plugin-specific settings. Each value must be a scalar; it is passed to the plugin as "
     "written (as text), and the plugin validates it. Not for `handler: exec`."},
}};

constexpr std::array<SectionSpec, 10> kSections = {{
    {"", "", kTopKeys},
    {"broker", "broker.", kBrokerKeys},
    {"broker.tls", "broker.tls.", kTlsKeys},
    {"broker.reconnect", "broker.reconnect.", kReconnectKeys},
    {"plugins", "plugins.", kPluginsKeys},
    {"logging", "logging.", kLoggingKeys},
    {"metrics", "metrics.", kMetricsKeys},
    {"shutdown", "shutdown.", kShutdownKeys},
    {"queues[]", "", kQueueKeys},
    {"queues[].dead_letter", "dead_letter.", kDeadLetterKeys},
}};

}  // namespace

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
    case KeyType::kStrings:
      return "string or list";
  }
  return "?";
}

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
      return (key.min == 0 ? std::string("0s to ") : std::string("above 0, up to ")) +
             formatDuration(milliseconds{key.max});
    case KeyType::kString:
      if (!key.choices.empty()) {
        std::string words;
        for (const std::string_view word : key.choices) {
          words += (words.empty() ? "`" : ", `") + std::string(word) + "`";
        }
        return words;
      }
      if (key.max > 0) return std::to_string(key.min) + " to " + std::to_string(key.max) + " bytes";
      return key.min > 0 ? "not empty" : "";
    default:
      return "";
  }
}

std::string renderKeyTable(const SectionSpec& section) {
  std::string table =
      "| Key | Type | Default | Bounds | Meaning |\n"
      "|-----|------|---------|--------|---------|\n";
  for (const KeySpec& key : section.keys) {
    const std::string value = key.default_text == nullptr ? "" : key.default_text();
    const std::string default_text = key.required    ? "required"
                                     : value.empty() ? ""
                                                     : "`" + value + "`";
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

std::string withKeyTables(std::string_view doc) {
  constexpr std::string_view kOpen = "<!-- keys: ";
  constexpr std::string_view kOpenEnd = " -->\n";
  constexpr std::string_view kClose = "<!-- end keys -->\n";
  std::string text;
  std::vector<std::string_view> seen;
  std::size_t from = 0;
  for (;;) {
    const std::size_t open = doc.find(kOpen, from);
    if (open == std::string_view::npos) break;
    const std::size_t name_end = doc.find(kOpenEnd, open);
    if (name_end == std::string_view::npos) {
      throw std::invalid_argument("a \"<!-- keys: \" marker is not ended by \" -->\"");
    }
    const std::string_view path = doc.substr(open + kOpen.size(), name_end - open - kOpen.size());
    const std::size_t close = doc.find(kClose, name_end);
    if (close == std::string_view::npos) {
      throw std::invalid_argument("the key table of '" + std::string(path) +
                                  "' has no \"<!-- end keys -->\" line");
    }
    const SectionSpec* section = nullptr;
    for (const SectionSpec& candidate : kSections) {
      if (candidate.path == path) section = &candidate;
    }
    if (section == nullptr) {
      throw std::invalid_argument("no configuration section '" + std::string(path) + "'");
    }
    seen.push_back(section->path);
    const std::size_t body = name_end + kOpenEnd.size();
    text += doc.substr(from, body - from);
    text += renderKeyTable(*section);
    from = close;
  }
  text += doc.substr(from);
  for (const SectionSpec& section : kSections) {
    if (std::find(seen.begin(), seen.end(), section.path) == seen.end()) {
      throw std::invalid_argument("no key table for section '" + std::string(section.path) +
                                  "' (a \"<!-- keys: " + std::string(section.path) +
                                  " -->\" line)");
    }
  }
  return text;
}

}  // namespace warren
