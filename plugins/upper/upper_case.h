// SPDX-License-Identifier: Apache-2.0
// The upper handler's logic, apart from the plugin glue so that it is
// unit-tested directly: the queue's options -> Settings, a body -> the reply.
#pragma once

#include <warren/plugin.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace warren::upper {

enum class Mode { kUpper, kLower };

// The longest `prefix` option accepted, in bytes.
inline constexpr std::size_t kMaxPrefixBytes = 1024;

struct Settings {
  Mode mode = Mode::kUpper;
  std::string prefix;  // written before the converted body, as is
};

// Reads a queue's `options`: `mode` (upper or lower; default upper) and
// `prefix` (any text up to kMaxPrefixBytes; default empty). Throws
// warren::OptionError naming the key for an unknown key or a bad value.
Settings readSettings(const warren::Options& options);

// The name of a mode as the `mode` option spells it.
std::string_view modeName(Mode mode) noexcept;

// The reply body: the prefix, then the body with its ASCII letters converted.
// Every other byte, UTF-8 sequences included, is copied unchanged. Throws
// warren::Error (invalid_argument) for a body that is not text: one holding
// a NUL byte.
std::string convert(const Settings& settings, std::string_view body);

}  // namespace warren::upper
