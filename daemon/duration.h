// Durations as written in configuration: "250ms", "10s", "1.5s", "2m".
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace warren {

// Parses a non-negative duration with a unit (ms, s, m, h). Returns nullopt
// for anything else, including a bare number.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

}  // namespace warren
