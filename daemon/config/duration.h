// SPDX-License-Identifier: Apache-2.0
// Durations as written in configuration: "250ms", "10s", "1.5s", "2m".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace warren {

// The longest duration any text may denote: what a steady_clock deadline
// (now() + duration, in nanoseconds) can hold with centuries to spare. A
// longer one would overflow that arithmetic; each key also has its own, much
// smaller, bound in the configuration schema.
inline constexpr std::chrono::milliseconds kMaxDurationText = std::chrono::hours(24 * 365 * 100);

enum class DurationError {
  kMalformed,  // not a number with a unit, or finer than a millisecond
  kTooLarge,   // well formed, but above kMaxDurationText
};

// Parses a non-negative duration with a unit (ms, s, m, h).
std::variant<std::chrono::milliseconds, DurationError> parseDurationText(std::string_view text);

// parseDurationText without the reason: nullopt for anything else, including
// a bare number and a value above kMaxDurationText.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

// "250ms", "10s", "2m", "1h": the largest unit that gives a whole number, for
// messages and docs.
std::string formatDuration(std::chrono::milliseconds value);

}  // namespace warren
