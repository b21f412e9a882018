// SPDX-License-Identifier: Apache-2.0
// A value of a queue's x-arguments table, typed as written in YAML.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

namespace warren {

using QueueArgument = std::variant<std::int64_t, double, bool, std::string>;

}  // namespace warren
