// SPDX-License-Identifier: Apache-2.0
#include "upper_case.h"

#include <string>
#include <string_view>

namespace warren::upper {
namespace {

constexpr std::string_view kModeUpper = "upper";
constexpr std::string_view kModeLower = "lower";

// ASCII only, on purpose: std::toupper depends on the locale and would
// corrupt UTF-8 sequences byte by byte.
char toUpper(char c) noexcept {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}
char toLower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

Settings readSettings(const warren::Options& options) {
  options.rejectUnknown({"mode", "prefix"});
  Settings settings;
  const std::string mode = options.get("mode", kModeUpper);
  if (mode == kModeUpper) {
    settings.mode = Mode::kUpper;
  } else if (mode == kModeLower) {
    settings.mode = Mode::kLower;
  } else {
    throw warren::OptionError("mode", "must be one of: upper, lower; got '" + mode + "'");
  }
  settings.prefix = options.get("prefix", "");
  if (settings.prefix.size() > kMaxPrefixBytes) {
    throw warren::OptionError("prefix", "must be at most " + std::to_string(kMaxPrefixBytes) +
                                            " bytes, got " +
                                            std::to_string(settings.prefix.size()));
  }
  return settings;
}

std::string_view modeName(Mode mode) noexcept {
  return mode == Mode::kUpper ? kModeUpper : kModeLower;
}

std::string convert(const Settings& settings, std::string_view body) {
  if (const std::size_t nul = body.find('\0'); nul != std::string_view::npos) {
    throw warren::Error(WARREN_ERROR_INVALID_ARGUMENT,
                        "the body is not text: NUL byte at offset " + std::to_string(nul));
  }
  std::string reply;
  reply.reserve(settings.prefix.size() + body.size());
  reply += settings.prefix;
  const auto map = settings.mode == Mode::kUpper ? toUpper : toLower;
  for (const char c : body) reply += map(c);
  return reply;
}

}  // namespace warren::upper
