// SPDX-License-Identifier: Apache-2.0
// Fuzzes parseDuration(): a parsed duration is never negative, and writing it
// back in milliseconds parses to the same value.
#include "duration.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = warren::parseDuration(text);
  if (!parsed) return 0;
  if (parsed->count() < 0) __builtin_trap();
  const auto again = warren::parseDuration(std::to_string(parsed->count()) + "ms");
  if (!again || *again != *parsed) __builtin_trap();
  return 0;
}
