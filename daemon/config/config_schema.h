// SPDX-License-Identifier: Apache-2.0
// The configuration file's keys, declared once: for each section a table of
// keys with type, default, bounds and a one-line description.
//
// The loader (config.cpp) takes from it which keys a map allows (and the
// "allowed:" list of an unknown-key error), which are required, the type each
// value must have, the bounds of integers, sizes, durations and string
// lengths, and the words a string may be; the key tables of
// docs/configuration.md are rendered from it (renderKeyTable, withKeyTables;
// the config_doc tool rewrites them), and a unit test keeps the two equal.
// Defaults are not repeated here: each is read from the initialiser of its
// field in config.h, the one place it is set. The idea is fluent-bit's
// flb_config_map.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace warren {

enum class KeyType {
  kString,
  kInteger,
  kSize,  // an integer count of bytes
  kBool,
  kDuration,  // bounds in milliseconds
  kMap,
  kSequence,
  kStrings,  // one string, or a sequence of them
};

struct KeySpec {
  std::string_view name;
  KeyType type;
  bool required = false;
  // The default as the docs show it, read from a default-constructed Config;
  // nullptr when the key is required or has none.
  std::string (*default_text)() = nullptr;
  // Inclusive bounds of an integer or size (the value), a duration (in
  // milliseconds) or a string (its length in bytes; max 0: no upper bound);
  // unused for other types.
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::string_view description;
  // The accepted values of a string, when it is one of a few words.
  std::span<const std::string_view> choices = {};
  // Replaces "must be at most MAX" when the bound has a reason worth saying.
  std::string_view max_message = {};
};

struct SectionSpec {
  std::string_view path;        // "" (the top level), "broker", "broker.reconnect", "queues[]"
  std::string_view doc_prefix;  // what the docs put before each key: "broker." or ""
  std::span<const KeySpec> keys;

  // The key named `name`; std::logic_error when the schema has none (a bug).
  const KeySpec& key(std::string_view name) const;
  bool has(std::string_view name) const;
  // "url, heartbeat, connect_timeout, reconnect": the keys in schema order.
  std::string allowed() const;
};

// Every section, in the order the docs show them.
std::span<const SectionSpec> configSchema();

// The section at `path`; std::logic_error when there is none (a bug).
const SectionSpec& schemaSection(std::string_view path);

// "string", "duration", ...: the type as the docs name it.
std::string_view typeName(KeyType type);

// "1 to 65535", "0s to 1h", "": the bounds as the docs and messages show them.
std::string boundsText(const KeySpec& key);

// The Markdown table of a section's keys, as docs/configuration.md holds it
// between "<!-- keys: PATH -->" and "<!-- end keys -->".
std::string renderKeyTable(const SectionSpec& section);

// Every section's table with its markers, one after the other.
std::string renderKeyTables();

// `doc` with the text between each "<!-- keys: PATH -->" line and the next
// "<!-- end keys -->" line replaced by renderKeyTable(PATH). Throws
// std::invalid_argument when a marker names no section, is not closed, or a
// section has no marker: every section is documented.
std::string withKeyTables(std::string_view doc);

}  // namespace warren
