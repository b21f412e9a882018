// SPDX-License-Identifier: Apache-2.0
#include "config.h"

#include <arpa/inet.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "config_schema.h"
#include "duration.h"
#include "secret_file.h"

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

// [A-Za-z_][A-Za-z0-9_]*: what a shell, and every program's getenv, takes for
// a variable's name.
bool isEnvName(std::string_view name) {
  constexpr std::string_view kFirst = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
  return !name.empty() && kFirst.find(name.front()) != std::string_view::npos &&
         name.find_first_not_of(std::string(kFirst) + "0123456789") == std::string_view::npos;
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

// "/srv/plugins/" (what lexically_normal() makes of "/srv/plugins/.") as
// "/srv/plugins"; "/" stays.
fs::path withoutTrailingSlash(fs::path path) {
  if (path.has_relative_path() && !path.has_filename()) path = path.parent_path();
  return path;
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

// Thrown by Parser::fail() once the error is recorded: abandons the value
// being read, and the loader goes on with the next one.
struct Abandoned {};

// Where a YAML document after the first begins, without YAML::LoadAll(): in
// yaml-cpp 0.7 it loops forever, allocating, on a ',' outside [ ] or { }
// ("- 2\n,": jbeder/yaml-cpp#1040). Only the first event of a second
// document is wanted, so the parser is asked for two documents at most.
class SecondDocumentProbe : public YAML::EventHandler {
 public:
  bool found() const { return documents_ > 1; }
  // The first node of the second document, or where it starts.
  const YAML::Mark& mark() const { return mark_; }
  bool nodeIsNull() const { return null_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ == 2) mark_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
    node(mark, /*is_null=*/true);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value /*style*/) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark, bool is_null = false) {
    if (documents_ != 2 || seen_node_) return;
    seen_node_ = true;
    mark_ = mark;
    null_ = is_null;
  }

  int documents_ = 0;
  bool seen_node_ = false;
  bool null_ = false;
  YAML::Mark mark_ = YAML::Mark::null_mark();
};

// A plain word about what yaml-cpp's message often means: a tab where YAML
// wants spaces, or a line indented where no key: value may start.
std::string syntaxHint(const std::string& yaml, const YAML::Exception& error) {
  int line = 1;
  bool in_indent = true;
  for (const char c : yaml) {
    if (c == '\n') {
      ++line;
      in_indent = true;
    } else if (c == '\t' && in_indent) {
      return " (the file contains a tab at line " + std::to_string(line) +
             ": YAML indents with spaces)";
    } else if (c != ' ') {
      in_indent = false;
    }
  }
  // "end of map not found" also ends a line such as `listen: [::1]:9464`:
  // only a key that starts its line is taken for an indentation mistake.
  const auto line_start =
      yaml.rfind('\n', static_cast<std::size_t>(std::max(error.mark.pos, 1)) - 1);
  const std::size_t first = line_start == std::string::npos ? 0 : line_start + 1;
  const bool starts_line =
      yaml.find_first_not_of(' ', first) == static_cast<std::size_t>(error.mark.pos);
  if (error.msg == YAML::ErrorMsg::MAP_VALUE ||
      (starts_line &&
       (error.msg == YAML::ErrorMsg::END_OF_MAP || error.msg == YAML::ErrorMsg::END_OF_SEQ))) {
    return " (check the indentation of line " + std::to_string(error.mark.line + 1) +
           ": the keys of one map start in the same column; a value holding ': ' is quoted)";
  }
  return "";
}

class Parser {
 public:
  explicit Parser(fs::path file)
      : file_(std::move(file)), base_dir_(fs::absolute(file_).parent_path()) {}

  Config parse(const std::string& yaml) {
    Config config;
    config.file = fs::absolute(file_).lexically_normal();
    try {
      readDocument(loadDocument(yaml), config);
    } catch (const Abandoned&) {
      // the file as a whole is unusable; its one error is recorded
    }
    if (!errors_.empty()) {
      std::stable_sort(errors_.begin(), errors_.end(), [](const Error& a, const Error& b) {
        return std::pair(a.mark.line, a.mark.column) < std::pair(b.mark.line, b.mark.column);
      });
      std::vector<std::string> messages;
      messages.reserve(errors_.size());
      for (Error& error : errors_) messages.push_back(std::move(error.text));
      throw ConfigError(std::move(messages));
    }
    return config;
  }

 private:
  struct Error {
    SourceMark mark;
    std::string text;
  };

  // --- errors

  void report(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    const SourceMark at = toSourceMark(mark);
    errors_.push_back({at, formatConfigError(file_, at, path, message)});
  }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path,
                         const std::string& message) {
    report(mark, path, message);
    throw Abandoned{};
  }

  [[noreturn]] void failValue(const Field& field, const std::string& message) {
    fail(valueMark(field), field.path, message);
  }

  [[noreturn]] void failType(const Field& field, std::string_view expected) {
    failValue(field, "expected " + std::string(expected) + ", got " + describe(field.value));
  }

  // Runs `read`; false when it recorded an error and gave up.
  template <typename Read>
  bool attempt(Read&& read) {
    try {
      std::forward<Read>(read)();
      return true;
    } catch (const Abandoned&) {
      return false;
    }
  }

  // --- structure

  YAML::Node loadDocument(const std::string& yaml) {
    YAML::Node root;
    SecondDocumentProbe probe;
    try {
      root = YAML::Load(yaml);
      std::istringstream stream(yaml);
      YAML::Parser parser(stream);
      if (parser.HandleNextDocument(probe)) parser.HandleNextDocument(probe);
    } catch (const YAML::Exception& error) {
      fail(error.mark, "", "YAML syntax error: " + error.msg + syntaxHint(yaml, error));
    }
    if (probe.found()) {
      const auto at = static_cast<std::size_t>(std::max(probe.mark().pos, 0));
      if (probe.nodeIsNull() && at < yaml.size() && yaml[at] == ',') {
        fail(probe.mark(), "",
             "YAML syntax error: unexpected ','; a comma separates items only inside [ ] or { }");
      }
      fail(probe.mark(), "", "only one YAML document is allowed");
    }
    if (root.IsNull()) {
      fail(YAML::Mark(), "", "the file is empty; expected a map with at least plugins and queues");
    }
    if (!root.IsMap()) {
      const std::string expected =
          "the top level must be a map (" + schemaSection("").allowed() + ")";
      fail(root.Mark(), "", expected + ", got " + describe(root));
    }
    return root;
  }

  void readDocument(const YAML::Node& document, Config& config) {
    const Field root{"", "", YAML::Node(), document};
    // `plugins` is required as soon as one queue may need a plugin.
    const std::vector<std::string_view> also_required = {"plugins"};
    const Fields fields =
        entries(root, schemaSection(""),
                everyQueueIsExec(document) ? std::span<const std::string_view>()
                                           : std::span<const std::string_view>(also_required));
    if (const Field* broker = find(fields, "broker")) {
      attempt([&] { config.broker = readBroker(*broker); });
    }
    if (const Field* plugins = find(fields, "plugins")) {
      attempt([&] { config.plugin_dir = readPlugins(*plugins); });
    }
    if (const Field* logging = find(fields, "logging")) {
      attempt([&] { config.logging = readLogging(*logging); });
    }
    if (const Field* metrics = find(fields, "metrics")) {
      attempt([&] { config.metrics = readMetrics(*metrics); });
    }
    if (const Field* shutdown = find(fields, "shutdown")) {
      attempt([&] { config.shutdown = readShutdown(*shutdown); });
    }
    if (const Field* queues = find(fields, "queues")) {
      attempt([&] { config.queues = readQueues(*queues, config.plugin_dir); });
    }
  }

  // Whether the document lists queues and every one of them says `handler:
  // exec`, looked at before anything is read: only then may `plugins` be left
  // out. A queue whose handler is missing or not a scalar counts as a plugin
  // queue, and so does a missing or empty `queues`, so that a file with
  // neither gets both errors, as before exec handlers existed.
  static bool everyQueueIsExec(const YAML::Node& document) {
    YAML::Node queues;
    for (const auto& entry : document) {
      if (entry.first.IsScalar() && entry.first.Scalar() == "queues") {
        queues = entry.second;
        break;
      }
    }
    if (!queues.IsSequence() || queues.size() == 0) return false;
    return std::all_of(queues.begin(), queues.end(), [](const YAML::Node& queue) {
      if (!queue.IsMap()) return false;
      for (const auto& entry : queue) {
        if (entry.first.IsScalar() && entry.first.Scalar() == "handler") {
          return entry.second.IsScalar() && entry.second.Scalar() == kExecHandler;
        }
      }
      return false;
    });
  }

  // The entries of a map value whose keys must be in `section`: keys must be
  // scalars, appear once and be known; the section's required keys, and those
  // of `also_required` (required in this file only), must be there. Each bad
  // key is reported and left out; a value that is not a map abandons the
  // section.
  Fields entries(const Field& map, const SectionSpec& section,
                 std::span<const std::string_view> also_required = {}) {
    Fields fields = entries(map);
    Fields known;
    for (Field& field : fields) {
      if (section.has(field.name)) {
        known.push_back(std::move(field));
      } else {
        report(field.key.Mark(), field.path, "unknown key; allowed: " + section.allowed());
      }
    }
    for (const KeySpec& key : section.keys) {
      const bool required = key.required || std::find(also_required.begin(), also_required.end(),
                                                      key.name) != also_required.end();
      if (required && find(known, key.name) == nullptr) {
        // Absent keys have no mark: report the map that lacks them.
        report(map.value.Mark(), childPath(map.path, std::string(key.name)),
               "required key is missing");
      }
    }
    return known;
  }

  // The entries of a map value, each key a scalar that appears once.
  Fields entries(const Field& map) {
    if (!map.value.IsMap()) failType(map, "a map");
    Fields fields;
    for (const auto& entry : map.value) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        report(key.Mark(), map.path, "keys must be scalars, got " + describe(key));
        continue;
      }
      Field field{childPath(map.path, key.Scalar()), key.Scalar(), key, entry.second};
      if (const Field* first = find(fields, field.name)) {
        report(key.Mark(), field.path,
               "duplicate key; first defined at line " +
                   std::to_string(toSourceMark(first->key.Mark()).line));
        continue;
      }
      fields.push_back(std::move(field));
    }
    return fields;
  }

  // --- typed values, bounds from the schema

  std::string readString(const Field& field, const KeySpec& spec) {
    if (!field.value.IsScalar()) failType(field, "a string");
    std::string text = field.value.Scalar();
    if (text.empty() && spec.min > 0) failValue(field, "must not be empty");
    if (spec.max > 0 && std::cmp_greater(text.size(), spec.max)) {
      failValue(field, "must be at most " + std::to_string(spec.max) + " bytes, got " +
                           std::to_string(text.size()));
    }
    if (!spec.choices.empty() &&
        std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) {
      std::string words;
      for (const std::string_view word : spec.choices) {
        if (!words.empty()) words += ", ";
        words += word;
      }
      failValue(field, "must be one of " + words + "; got " + describe(field.value));
    }
    return text;
  }

  std::int64_t readInt(const Field& field, const KeySpec& spec) {
    if (!field.value.IsScalar() || isQuotedString(field.value) ||
        !looksLikeInteger(field.value.Scalar())) {
      failType(field, "an integer");
    }
    const std::optional<std::int64_t> value = parseInteger(field.value.Scalar());
    if (!value || *value < spec.min || *value > spec.max) {
      failValue(field, "must be between " + std::to_string(spec.min) + " and " +
                           std::to_string(spec.max) + ", got " + field.value.Scalar());
    }
    return *value;
  }

  bool readBool(const Field& field) {
    std::optional<bool> value;
    if (field.value.IsScalar() && !isQuotedString(field.value)) {
      value = parseBool(field.value.Scalar());
    }
    if (!value) failType(field, "true or false");
    return *value;
  }

  // The duration as written, nullopt when it is too large for any key.
  std::optional<milliseconds> durationText(const Field& field) {
    std::variant<milliseconds, DurationError> parsed = DurationError::kMalformed;
    if (field.value.IsScalar()) parsed = parseDurationText(field.value.Scalar());
    if (const milliseconds* value = std::get_if<milliseconds>(&parsed)) return *value;
    if (std::get<DurationError>(parsed) == DurationError::kMalformed) {
      failType(field, kDurationForm);
    }
    return std::nullopt;
  }

  // Capped at the schema's max: a huge value would overflow the deadline
  // arithmetic (now() + duration) of whoever waits that long.
  milliseconds checkDuration(const Field& field, const KeySpec& spec,
                             std::optional<milliseconds> value) {
    if (!value || value->count() > spec.max) {
      const std::string bound = spec.max_message.empty()
                                    ? "must be at most " + formatDuration(milliseconds{spec.max})
                                    : std::string(spec.max_message);
      failValue(field, bound + ", got " + field.value.Scalar());
    }
    if (value->count() < spec.min) failValue(field, "must be greater than 0");
    return *value;
  }

  milliseconds readDuration(const Field& field, const KeySpec& spec) {
    return checkDuration(field, spec, durationText(field));
  }

  // Reads key `name` of `section` from `fields` into `target` with the
  // schema's type and bounds. False when the key is present and bad.
  template <typename T>
  bool read(const Fields& fields, const SectionSpec& section, std::string_view name, T& target) {
    const Field* field = find(fields, name);
    if (field == nullptr) return true;
    const KeySpec& spec = section.key(name);
    return attempt([&] {
      if constexpr (std::is_same_v<T, bool>) {
        target = readBool(*field);
      } else if constexpr (std::is_same_v<T, milliseconds>) {
        target = readDuration(*field, spec);
      } else if constexpr (std::is_same_v<T, std::string>) {
        target = readString(*field, spec);
      } else {
        static_assert(std::is_integral_v<T>);
        target = static_cast<T>(readInt(*field, spec));
      }
    });
  }

  // --- sections

  BrokerConfig readBroker(const Field& broker) {
    const SectionSpec& section = schemaSection("broker");
    const Fields fields = entries(broker, section);
    BrokerConfig config;
    bool urls_read = true;
    if (const Field* url = find(fields, "url")) {
      urls_read = attempt([&] { readUrls(*url, section.key("url"), config); });
    }
    if (const Field* heartbeat = find(fields, "heartbeat")) {
      attempt([&] { config.heartbeat = readHeartbeat(*heartbeat, section.key("heartbeat")); });
    }
    read(fields, section, "connect_timeout", config.connect_timeout);
    if (const Field* reconnect = find(fields, "reconnect")) {
      attempt([&] { config.reconnect = readReconnect(*reconnect); });
    }
    const Field* tls = find(fields, "tls");
    if (tls != nullptr) attempt([&] { config.tls = readTls(*tls); });
    std::string mechanism = "plain";
    const bool mechanism_read = read(fields, section, "auth_mechanism", mechanism);
    config.login = mechanism == "external" ? LoginMechanism::kExternal : LoginMechanism::kPlain;
    const bool user_read = read(fields, section, "user", config.user);
    std::optional<std::string> password;
    attempt([&] { password = readPassword(fields, section, config); });
    if (urls_read && mechanism_read && user_read) {
      attempt([&] { applyCredentials(fields, config, password); });
    }
    if (urls_read && tls != nullptr &&
        !std::any_of(config.addresses.begin(), config.addresses.end(),
                     [](const BrokerAddress& a) { return a.tls; })) {
      report(tls->key.Mark(), tls->path,
             "applies to amqps:// URLs only, and broker.url has none: use amqps:// (TLS) or drop "
             "broker.tls");
    }
    return config;
  }

  void readUrls(const Field& field, const KeySpec& spec, BrokerConfig& config) {
    std::vector<Field> items;
    if (field.value.IsSequence()) {
      if (field.value.size() == 0) failValue(field, "must list at least one URL");
      std::size_t index = 0;
      for (const auto& item : field.value) {
        items.push_back(
            Field{field.path + "[" + std::to_string(index++) + "]", "", YAML::Node(), item});
      }
    } else {
      if (!field.value.IsScalar()) failType(field, "a URL or a list of URLs");
      items.push_back(field);
    }
    std::vector<std::string> urls;
    std::vector<BrokerAddress> addresses;
    bool all_read = true;
    for (const Field& item : items) {
      all_read = attempt([&] {
                   std::string url = readString(item, spec);
                   // The URL is not echoed: it may hold a password.
                   if (!url.starts_with("amqp://") && !url.starts_with("amqps://")) {
                     failValue(item, "must start with amqp:// or amqps://");
                   }
                   BrokerAddress address;
                   try {
                     address = parseBrokerUrl(url);
                   } catch (const std::invalid_argument& e) {
                     failValue(item, e.what());
                   }
                   if (!addresses.empty() && address.vhost != addresses.front().vhost) {
                     failValue(item, "names the vhost '" + address.vhost + "', the first URL '" +
                                         addresses.front().vhost +
                                         "': the URLs of one cluster share one vhost");
                   }
                   urls.push_back(std::move(url));
                   addresses.push_back(std::move(address));
                 }) &&
                 all_read;
    }
    if (!all_read) throw Abandoned{};
    config.urls = std::move(urls);
    config.addresses = std::move(addresses);
  }

  // The password of broker.password_file or broker.password_credential,
  // nullopt when neither is given. Never echoed.
  std::optional<std::string> readPassword(const Fields& fields, const SectionSpec& section,
                                          BrokerConfig& config) {
    const Field* file = find(fields, "password_file");
    const Field* credential = find(fields, "password_credential");
    if (file != nullptr && credential != nullptr) {
      failValue(*credential, "give the password one way: password_file or password_credential");
    }
    const Field* source = file != nullptr ? file : credential;
    if (source == nullptr) return std::nullopt;
    std::string text;
    if (!read(fields, section, source->name, text)) throw Abandoned{};
    try {
      config.password_file =
          file != nullptr ? (base_dir_ / text).lexically_normal() : systemdCredentialPath(text);
      return readSecretFile(config.password_file);
    } catch (const std::runtime_error& e) {
      failValue(*source, e.what());
    }
  }

  // Puts broker.user and the password into every address; each kept in one
  // place only, and none at all for EXTERNAL.
  void applyCredentials(const Fields& fields, BrokerConfig& config,
                        const std::optional<std::string>& password) {
    const Field* url = find(fields, "url");
    const auto any = [&config](auto has) {
      return std::any_of(config.addresses.begin(), config.addresses.end(), has);
    };
    const bool url_user = any([](const BrokerAddress& a) { return a.url_has_user; });
    const bool url_password = any([](const BrokerAddress& a) { return a.url_has_password; });
    if (config.login == LoginMechanism::kExternal) {
      const Field* mechanism = find(fields, "auth_mechanism");
      if (url_user || url_password || !config.user.empty() || password) {
        failValue(*mechanism,
                  "external logs in with the TLS client certificate: give no user or password "
                  "(in the URL, broker.user or a password file)");
      }
      if (config.tls.cert_file.empty()) {
        failValue(*mechanism, "external needs a client certificate: broker.tls.cert_file");
      }
      if (any([](const BrokerAddress& a) { return !a.tls; })) {
        failValue(*mechanism, "external needs TLS: every broker.url must be amqps://");
      }
      return;
    }
    if (password) {
      if (url_password) {
        failValue(*url, "holds a password, and " +
                            std::string(find(fields, "password_file") != nullptr
                                            ? "broker.password_file"
                                            : "broker.password_credential") +
                            " gives one: keep the password in one place");
      }
      if (config.user.empty() && !url_user) {
        failValue(*find(fields, find(fields, "password_file") != nullptr ? "password_file"
                                                                         : "password_credential"),
                  "needs a user name: broker.user, or the user in the URL (amqp://USER@host)");
      }
    }
    if (!config.user.empty() && url_user) {
      failValue(*url, "names a user, and broker.user gives one: keep the user in one place");
    }
    for (BrokerAddress& address : config.addresses) {
      if (!config.user.empty()) address.user = config.user;
      if (password) address.password = *password;
    }
  }

  TlsSettings readTls(const Field& tls) {
    const SectionSpec& section = schemaSection("broker.tls");
    const Fields fields = entries(tls, section);
    TlsSettings settings;
    const auto readPath = [&](std::string_view name, std::string& target) {
      std::string text;
      if (find(fields, name) == nullptr || !read(fields, section, name, text)) return;
      target = (base_dir_ / text).lexically_normal().string();
      // Checked here, so that --check-config finds a wrong path.
      if (::access(target.c_str(), R_OK) != 0) {
        const std::string why = std::error_code(errno, std::generic_category()).message();
        report(valueMark(*find(fields, name)), childPath(tls.path, std::string(name)),
               "cannot read '" + target + "': " + why);
      }
    };
    readPath("ca_file", settings.ca_file);
    readPath("cert_file", settings.cert_file);
    readPath("key_file", settings.key_file);
    read(fields, section, "verify", settings.verify);
    const Field* cert = find(fields, "cert_file");
    const Field* key = find(fields, "key_file");
    if ((cert == nullptr) != (key == nullptr)) {
      const Field& given = cert != nullptr ? *cert : *key;
      failValue(given, "cert_file and key_file go together: give both or neither");
    }
    return settings;
  }

  // Whole seconds checked before the bound, so that 59.5s is told what is wrong with it.
  milliseconds readHeartbeat(const Field& field, const KeySpec& spec) {
    const std::optional<milliseconds> value = durationText(field);
    if (value && value->count() % 1000 != 0) {
      const std::string why = "AMQP negotiates heartbeats in seconds";
      failValue(field,
                "must be a whole number of seconds (" + why + "), got " + field.value.Scalar());
    }
    return checkDuration(field, spec, value);
  }

  ReconnectConfig readReconnect(const Field& reconnect) {
    const SectionSpec& section = schemaSection("broker.reconnect");
    const Fields fields = entries(reconnect, section);
    ReconnectConfig config;
    // Compared only when both are good (or left at their defaults).
    if (!read(fields, section, "initial_delay", config.initial_delay) ||
        !read(fields, section, "max_delay", config.max_delay)) {
      return config;
    }
    if (config.max_delay < config.initial_delay) {
      if (const Field* max = find(fields, "max_delay")) {
        failValue(*max, "must not be below broker.reconnect.initial_delay (" +
                            std::to_string(config.initial_delay.count()) + "ms)");
      }
      failValue(*find(fields, "initial_delay"), "must not exceed broker.reconnect.max_delay (" +
                                                    std::to_string(config.max_delay.count()) +
                                                    "ms)");
    }
    return config;
  }

  fs::path readPlugins(const Field& plugins) {
    const SectionSpec& section = schemaSection("plugins");
    const Fields fields = entries(plugins, section);
    std::string text;
    if (find(fields, "dir") == nullptr || !read(fields, section, "dir", text)) throw Abandoned{};
    return withoutTrailingSlash((base_dir_ / text).lexically_normal());
  }

  LoggingConfig readLogging(const Field& logging) {
    const SectionSpec& section = schemaSection("logging");
    const Fields fields = entries(logging, section);
    LoggingConfig config;
    read(fields, section, "level", config.level);
    read(fields, section, "format", config.format);
    return config;
  }

  MetricsConfig readMetrics(const Field& metrics) {
    const SectionSpec& section = schemaSection("metrics");
    const Fields fields = entries(metrics, section);
    MetricsConfig config;
    read(fields, section, "enabled", config.enabled);
    if (const Field* listen = find(fields, "listen")) {
      attempt([&] {
        config.listen = readListenAddress(*listen, section.key("listen"));
        config.listen_mark = toSourceMark(valueMark(*listen));
      });
    }
    return config;
  }

  // HOST:PORT, HOST an IP address literal: names are not resolved here, so the
  // file means the same on every machine and the check needs no DNS.
  ListenAddress readListenAddress(const Field& field, const KeySpec& spec) {
    const std::string text = readString(field, spec);
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

  ShutdownConfig readShutdown(const Field& shutdown) {
    const SectionSpec& section = schemaSection("shutdown");
    const Fields fields = entries(shutdown, section);
    ShutdownConfig config;
    read(fields, section, "drain_timeout", config.drain_timeout);
    return config;
  }

  // --- queues

  std::vector<QueueConfig> readQueues(const Field& queues, const fs::path& plugin_dir) {
    if (!queues.value.IsSequence()) failType(queues, "a sequence of queues");
    if (queues.value.size() == 0) failValue(queues, "must list at least one queue");
    std::vector<QueueConfig> configs;
    std::map<std::string, int> first_line_by_name;
    std::size_t index = 0;
    for (const auto& item : queues.value) {
      const Field entry{"queues[" + std::to_string(index++) + "]", "", YAML::Node(), item};
      attempt([&] { configs.push_back(readQueue(entry, plugin_dir, first_line_by_name)); });
    }
    return configs;
  }

  // Every key is read, and each bad one reported, before the entry is
  // abandoned for any of them.
  QueueConfig readQueue(const Field& entry, const fs::path& plugin_dir,
                        std::map<std::string, int>& first_line_by_name) {
    const SectionSpec& section = schemaSection("queues[]");
    const std::size_t errors_before = errors_.size();
    const Fields fields = entries(entry, section);
    QueueConfig config;
    config.path = entry.path;
    config.mark = toSourceMark(entry.value.Mark());
    config.options_mark = config.mark;

    if (const Field* name = find(fields, "name")) {
      attempt([&] {
        config.name = readQueueName(*name, section.key("name"));
        const int line = toSourceMark(valueMark(*name)).line;
        if (const auto [first, added] = first_line_by_name.emplace(config.name, line); !added) {
          failValue(*name, "duplicate queue name \"" + config.name + "\"; first defined at line " +
                               std::to_string(first->second));
        }
      });
    }
    // Whether the handler is `exec`; unknown when it is missing or bad.
    std::optional<bool> exec;
    if (const Field* handler = find(fields, "handler")) {
      attempt([&] {
        config.handler = readHandler(*handler, section.key("handler"));
        config.handler_mark = toSourceMark(valueMark(*handler));
        exec = config.isExec();
        if (!*exec) config.plugin_path = plugin_dir / (config.handler + ".so");
      });
    }
    readIsolation(entry, fields, section, exec, config);
    readQueueSettings(fields, section, config);
    if (errors_.size() != errors_before) throw Abandoned{};
    return config;
  }

  // isolation, command, env, working_directory and worker_restart_backoff_max.
  // Each is checked on its own; against the handler only when `exec` says
  // what the handler is (nullopt: missing or bad, and already reported).
  void readIsolation(const Field& entry, const Fields& fields, const SectionSpec& section,
                     std::optional<bool> exec, QueueConfig& config) {
    std::string isolation = "none";
    const bool isolation_read = read(fields, section, "isolation", isolation);
    config.isolation = isolation == "process" ? Isolation::kProcess : Isolation::kNone;
    if (exec == true) {
      const Field* written = find(fields, "isolation");
      if (written != nullptr && isolation_read && config.isolation == Isolation::kNone) {
        attempt([&] {
          failValue(*written,
                    "`handler: exec` always runs in its own processes; remove `isolation` or set "
                    "it to process");
        });
      }
      config.isolation = Isolation::kProcess;
    }
    // A key that only an exec handler reads.
    const auto exec_only = [&](const Field& field) {
      if (exec == false) failValue(field, "`" + field.name + "` is only for `handler: exec`");
    };
    if (const Field* command = find(fields, "command")) {
      attempt([&] {
        exec_only(*command);
        config.command = readCommand(*command);
      });
    } else if (exec == true) {
      report(entry.value.Mark(), childPath(entry.path, "command"),
             "required key is missing: `handler: exec` runs the program it names, e.g. command: "
             "[python3, handler.py]");
    }
    if (const Field* env = find(fields, "env")) {
      attempt([&] {
        exec_only(*env);
        config.env = readEnv(*env);
      });
    }
    if (const Field* directory = find(fields, "working_directory")) {
      attempt([&] {
        exec_only(*directory);
        config.working_directory = readDirectory(*directory, section.key("working_directory"));
      });
    } else if (exec == true) {
      config.working_directory = withoutTrailingSlash(base_dir_.lexically_normal());
    }
    if (const Field* options = find(fields, "options"); options != nullptr && exec == true) {
      attempt([&] {
        failValue(*options,
                  "`options` are a plugin's; a program takes its settings from `command` or `env`");
      });
    }
    if (const Field* backoff = find(fields, "worker_restart_backoff_max")) {
      const bool backoff_read =
          read(fields, section, "worker_restart_backoff_max", config.worker_restart_backoff_max);
      if (backoff_read && isolation_read && exec == false && config.isolation == Isolation::kNone) {
        attempt([&] { failValue(*backoff, "only for `isolation: process` or `handler: exec`"); });
      }
    }
  }

  // The program and its arguments: a non-empty sequence of non-empty
  // scalars, each taken as written. Every bad item is reported.
  std::vector<std::string> readCommand(const Field& field) {
    if (!field.value.IsSequence()) {
      failType(field, "a sequence of strings: the program and its arguments");
    }
    if (field.value.size() == 0) failValue(field, "must name at least the program");
    std::vector<std::string> argv;
    bool all_read = true;
    std::size_t index = 0;
    for (const auto& item : field.value) {
      const Field argument{field.path + "[" + std::to_string(index++) + "]", "", YAML::Node(),
                           item};
      all_read = attempt([&] {
                   if (!argument.value.IsScalar()) failType(argument, "a string");
                   if (argument.value.Scalar().empty()) failValue(argument, "must not be empty");
                   argv.push_back(argument.value.Scalar());
                 }) &&
                 all_read;
    }
    if (!all_read) throw Abandoned{};
    return argv;
  }

  // NAME: value pairs in file order; names as a shell would take them, and
  // none of those warrend sets itself.
  std::vector<std::pair<std::string, std::string>> readEnv(const Field& field) {
    std::vector<std::pair<std::string, std::string>> variables;
    bool all_read = true;
    for (const Field& variable : entries(field)) {
      all_read = attempt([&] {
                   const std::string& name = variable.name;
                   if (!isEnvName(name)) {
                     fail(variable.key.Mark(), variable.path,
                          "an environment variable name is made of letters, digits and '_', not "
                          "starting with a digit; got '" +
                              name + "'");
                   }
                   if (name == "WARREN_QUEUE" || name == "WARREN_PROTOCOL") {
                     fail(variable.key.Mark(), variable.path,
                          "reserved: warrend sets WARREN_QUEUE and WARREN_PROTOCOL itself");
                   }
                   if (!variable.value.IsScalar()) failType(variable, "a scalar");
                   variables.emplace_back(name, variable.value.Scalar());
                 }) &&
                 all_read;
    }
    if (!all_read) throw Abandoned{};
    return variables;
  }

  // An existing directory, relative paths against the configuration file's.
  // Checked here, so that --check-config refuses what a start would refuse.
  fs::path readDirectory(const Field& field, const KeySpec& spec) {
    const fs::path directory =
        withoutTrailingSlash((base_dir_ / readString(field, spec)).lexically_normal());
    std::error_code error;
    const fs::file_status status = fs::status(directory, error);
    if (error) failValue(field, "cannot use '" + directory.string() + "': " + error.message());
    if (!fs::is_directory(status)) {
      failValue(field, "'" + directory.string() + "' is not a directory");
    }
    if (::access(directory.c_str(), X_OK) != 0) {
      const std::string why = std::error_code(errno, std::generic_category()).message();
      failValue(field, "cannot enter '" + directory.string() + "': " + why);
    }
    return directory;
  }

  // The optional keys of a queue entry.
  void readQueueSettings(const Fields& fields, const SectionSpec& section, QueueConfig& config) {
    read(fields, section, "consumers", config.consumers);
    read(fields, section, "prefetch", config.prefetch);
    read(fields, section, "max_body_bytes", config.max_body_bytes);
    read(fields, section, "max_reply_bytes", config.max_reply_bytes);
    read(fields, section, "handler_timeout", config.handler_timeout);
    read(fields, section, "durable", config.durable);
    read(fields, section, "auto_delete", config.auto_delete);
    if (const Field* arguments = find(fields, "arguments")) {
      attempt([&] { config.arguments = readArguments(*arguments); });
    }
    attempt([&] { readQueueKind(fields, section, config); });
    if (const Field* options = find(fields, "options")) {
      attempt([&] {
        config.options = readOptions(*options);
        config.options_mark = toSourceMark(options->key.Mark());
      });
    }
  }

  // type, delivery_limit and dead_letter, and the x-arguments they stand for.
  void readQueueKind(const Fields& fields, const SectionSpec& section, QueueConfig& config) {
    std::string type = "classic";
    if (!read(fields, section, "type", type)) throw Abandoned{};
    config.quorum = type == "quorum";
    // Each x-argument is set one way: by its key or in `arguments`.
    const auto claim = [&](const Field& field, const std::string& argument, QueueArgument value) {
      if (config.arguments.count(argument) != 0) {
        failValue(field, "sets " + argument + ", which `arguments` sets too: set it in one place");
      }
      config.arguments.emplace(argument, std::move(value));
    };
    if (config.quorum) {
      const Field& type_field = *find(fields, "type");
      if (const Field* durable = find(fields, "durable"); durable != nullptr && !config.durable) {
        failValue(*durable, "must be true for a quorum queue (quorum queues are always durable)");
      }
      if (config.auto_delete) {
        failValue(*find(fields, "auto_delete"), "quorum queues cannot be auto-delete");
      }
      config.durable = true;
      claim(type_field, "x-queue-type", std::string("quorum"));
    }
    if (const Field* limit = find(fields, "delivery_limit")) {
      std::int64_t value = 0;
      if (!read(fields, section, "delivery_limit", value)) throw Abandoned{};
      if (!config.quorum) {
        failValue(*limit,
                  "needs type: quorum (the broker counts deliveries on quorum queues only)");
      }
      claim(*limit, "x-delivery-limit", value);
    }
    if (const Field* dead_letter = find(fields, "dead_letter")) {
      const SectionSpec& dl_section = schemaSection("queues[].dead_letter");
      const Fields dl_fields = entries(*dead_letter, dl_section);
      // Both read, so that both are reported when both are bad.
      const bool exchange_read =
          read(dl_fields, dl_section, "exchange", config.dead_letter.exchange);
      const bool queue_read = read(dl_fields, dl_section, "queue", config.dead_letter.queue);
      const bool read_all = exchange_read && queue_read;
      if (!read_all || config.dead_letter.exchange.empty() || config.dead_letter.queue.empty()) {
        throw Abandoned{};
      }
      for (const char* key : {"exchange", "queue"}) {
        const Field& field = *find(dl_fields, key);
        if (field.value.Scalar().starts_with("amq.")) {
          failValue(field, "names starting with \"amq.\" are reserved by the broker");
        }
      }
      if (config.dead_letter.queue == config.name) {
        failValue(*find(dl_fields, "queue"), "must not be the served queue itself");
      }
      claim(*dead_letter, "x-dead-letter-exchange", config.dead_letter.exchange);
      claim(*dead_letter, "x-dead-letter-routing-key", config.name);
    }
  }

  std::string readQueueName(const Field& field, const KeySpec& spec) {
    std::string name = readString(field, spec);
    if (name.starts_with("amq.")) {
      failValue(field, "names starting with \"amq.\" are reserved by the broker");
    }
    return name;
  }

  std::string readHandler(const Field& field, const KeySpec& spec) {
    std::string handler = readString(field, spec);
    if (handler.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789_-") != std::string::npos) {
      failValue(field, "must be a plugin name made of letters, digits, '_' and '-', got " +
                           describe(field.value));
    }
    return handler;
  }

  std::map<std::string, QueueArgument> readArguments(const Field& arguments) {
    std::map<std::string, QueueArgument> values;
    for (const Field& argument : entries(arguments)) {
      attempt([&] { values.emplace(argument.name, readArgument(argument)); });
    }
    return values;
  }

  // A YAML scalar, typed as the core schema reads it; quoted ones stay strings.
  QueueArgument readArgument(const Field& field) {
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

  std::vector<QueueOption> readOptions(const Field& options) {
    std::vector<QueueOption> values;
    for (const Field& option : entries(options)) {
      attempt([&] {
        if (!option.value.IsScalar()) failType(option, "a scalar");
        values.push_back({option.name, option.value.Scalar(), toSourceMark(option.key.Mark())});
      });
    }
    return values;
  }

  std::vector<Error> errors_;
  fs::path file_;      // as given, for messages
  fs::path base_dir_;  // absolute directory of file_, for relative paths
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
         a.isolation == b.isolation && a.command == b.command && a.env == b.env &&
         a.working_directory == b.working_directory &&
         a.worker_restart_backoff_max == b.worker_restart_backoff_max &&
         a.consumers == b.consumers && a.prefetch == b.prefetch &&
         a.max_body_bytes == b.max_body_bytes && a.max_reply_bytes == b.max_reply_bytes &&
         a.handler_timeout == b.handler_timeout && a.durable == b.durable &&
         a.auto_delete == b.auto_delete && a.quorum == b.quorum && a.dead_letter == b.dead_letter &&
         a.arguments == b.arguments && same_options(a.options, b.options);
}

std::string ListenAddress::toString() const {
  const std::string port_text = ':' + std::to_string(port);
  return isIpv6() ? '[' + host + ']' + port_text : host + port_text;
}

bool ListenAddress::isIpv6() const { return host.find(':') != std::string::npos; }

ConfigError::ConfigError(const std::string& message)
    : ConfigError(std::vector<std::string>{message}) {}

namespace {
std::string joinLines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) {
    if (!text.empty()) text += '\n';
    text += line;
  }
  return text;
}
}  // namespace

ConfigError::ConfigError(std::vector<std::string> messages)
    : std::runtime_error(joinLines(messages)),
      errors_(std::make_shared<const std::vector<std::string>>(std::move(messages))) {}

Config parseConfig(const std::string& yaml, const std::filesystem::path& file) {
  return Parser(file).parse(yaml);
}

Config loadConfig(const std::filesystem::path& file) { return parseConfig(readFile(file), file); }

}  // namespace warren
