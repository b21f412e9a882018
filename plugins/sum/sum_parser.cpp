// SPDX-License-Identifier: Apache-2.0
#include "sum_parser.h"

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace warren::sum {
namespace {

constexpr std::string_view kExpected = "expected two integers 'a,b'";
constexpr std::size_t kQuoteLimit = 32;  // bytes of a field quoted in a message

// The ASCII whitespace Python's int() strips around a number.
bool isSpace(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The field between single quotes, safe to print: non-printable bytes (and
// the quote and backslash) are escaped, and a long field is cut with "...".
std::string quote(std::string_view field) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "'";
  const std::string_view shown = field.substr(0, kQuoteLimit);
  for (const char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4U];
      out += kHex[byte & 0x0fU];
    } else {
      out += c;
    }
  }
  if (shown.size() < field.size()) out += "...";
  out += '\'';
  return out;
}

Outcome failure(warren_error_code code, std::string message) {
  return Outcome{false, std::move(message), code};
}

// Parses one trimmed field: an optional sign then one or more decimal digits.
// On failure fills `error` and returns false.
bool parseField(std::string_view field, std::string_view which, std::int64_t& value,
                Outcome& error) {
  if (field.empty()) {
    error = failure(WARREN_ERROR_INVALID_ARGUMENT,
                    std::string(which) + " field is empty: " + std::string(kExpected));
    return false;
  }
  // At most one sign; from_chars takes '-' but not '+', so '+' is dropped.
  const bool negative = field.front() == '-';
  const bool has_sign = negative || field.front() == '+';
  const std::string_view digits = has_sign ? field.substr(1) : field;
  const std::string_view number = negative ? field : digits;
  bool valid = !digits.empty();
  for (const char c : digits) valid = valid && c >= '0' && c <= '9';
  if (!valid) {
    error = failure(WARREN_ERROR_INVALID_ARGUMENT,
                    std::string(which) + " field is not an integer: " + quote(field));
    return false;
  }
  const char* const end = number.data() + number.size();
  const auto [ptr, ec] = std::from_chars(number.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    error =
        failure(WARREN_ERROR_OUT_OF_RANGE,
                std::string(which) + " field is out of the 64-bit integer range: " + quote(field));
    return false;
  }
  if (ec != std::errc() || ptr != end) {  // not reached after the digit check
    error = failure(WARREN_ERROR_INVALID_ARGUMENT,
                    std::string(which) + " field is not an integer: " + quote(field));
    return false;
  }
  return true;
}

std::string decimal(std::int64_t value) {
  std::array<char, 24> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return {buffer.data(), result.ptr};
}

}  // namespace

Outcome compute(std::string_view body) {
  if (trim(body).empty()) {
    return failure(WARREN_ERROR_INVALID_ARGUMENT, "empty body: " + std::string(kExpected));
  }
  std::size_t fields = 1;
  for (const char c : body) fields += c == ',' ? 1 : 0;
  if (fields != 2) {
    return failure(WARREN_ERROR_INVALID_ARGUMENT,
                   "expected two comma-separated integers 'a,b', got " + std::to_string(fields) +
                       (fields == 1 ? " field" : " fields"));
  }
  const std::size_t comma = body.find(',');
  std::int64_t a = 0;
  std::int64_t b = 0;
  Outcome error;
  if (!parseField(trim(body.substr(0, comma)), "first", a, error) ||
      !parseField(trim(body.substr(comma + 1)), "second", b, error)) {
    return error;
  }
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return failure(WARREN_ERROR_OUT_OF_RANGE, "the sum " + decimal(a) + " + " + decimal(b) +
                                                  " overflows the 64-bit integer range");
  }
  return Outcome{true, decimal(sum), WARREN_ERROR_INVALID_ARGUMENT};
}

}  // namespace warren::sum
