// SPDX-License-Identifier: Apache-2.0
#include "duration.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

namespace warren {
namespace {

// Milliseconds per unit, or 0 for an unknown unit.
std::int64_t unitMilliseconds(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return std::int64_t{60} * 1000;
  if (unit == "h") return std::int64_t{60} * 60 * 1000;
  return 0;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The leading run of digits of `text`.
std::string_view leadingDigits(std::string_view text) {
  std::size_t n = 0;
  while (n < text.size() && isDigit(text[n])) ++n;
  return text.substr(0, n);
}

std::optional<std::int64_t> toInteger(std::string_view digits) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

}  // namespace

std::variant<std::chrono::milliseconds, DurationError> parseDurationText(std::string_view text) {
  constexpr DurationError kMalformed = DurationError::kMalformed;
  const std::string_view whole = leadingDigits(text);
  if (whole.empty()) return kMalformed;
  text.remove_prefix(whole.size());

  std::string_view fraction;
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    fraction = leadingDigits(text);
    if (fraction.empty()) return kMalformed;
    text.remove_prefix(fraction.size());
    while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  }

  const std::int64_t per_unit = unitMilliseconds(text);
  // More than 9 significant fraction digits is finer than a millisecond for every unit.
  if (per_unit == 0 || fraction.size() > 9) return kMalformed;
  const std::optional<std::int64_t> whole_value = toInteger(whole);
  if (!whole_value) return DurationError::kTooLarge;  // only digits: too many of them

  std::int64_t fraction_ms = 0;
  if (!fraction.empty()) {
    std::int64_t scale = 1;
    for (std::size_t i = 0; i < fraction.size(); ++i) scale *= 10;
    const std::int64_t scaled = *toInteger(fraction) * per_unit;
    if (scaled % scale != 0) return kMalformed;  // finer than a millisecond
    fraction_ms = scaled / scale;
  }

  // Checked before multiplying: the product itself could overflow.
  const std::int64_t limit = kMaxDurationText.count();
  if (*whole_value > (limit - fraction_ms) / per_unit) return DurationError::kTooLarge;
  return std::chrono::milliseconds{*whole_value * per_unit + fraction_ms};
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  const auto parsed = parseDurationText(text);
  if (const auto* value = std::get_if<std::chrono::milliseconds>(&parsed)) return *value;
  return std::nullopt;
}

std::string formatDuration(std::chrono::milliseconds value) {
  const std::int64_t ms = value.count();
  for (const auto& [unit, per_unit] :
       {std::pair<const char*, std::int64_t>{"h", 3600000}, {"m", 60000}, {"s", 1000}}) {
    if (ms != 0 && ms % per_unit == 0) return std::to_string(ms / per_unit) + unit;
  }
  return ms == 0 ? "0s" : std::to_string(ms) + "ms";
}

}  // namespace warren
