// SPDX-License-Identifier: Apache-2.0
// Fuzzes parseBrokerUrl() and redactBrokerUrl(). parseBrokerUrl() throws
// std::invalid_argument and nothing else; for a URL that parses with a
// password, the redacted form must not give the password away.
#include "broker_url.h"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace {

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string url(reinterpret_cast<const char*>(data), size);
  const std::string redacted = warren::redactBrokerUrl(url);
  warren::BrokerAddress address;
  try {
    address = warren::parseBrokerUrl(url);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  const std::string& password = address.password;
  // "guest" is also what a URL without a password yields; "***" and any
  // password with '*' could be mistaken for the mask itself.
  if (password.empty() || password == "guest" || password.find('*') != std::string::npos) {
    return 0;
  }
  // A password that stands in the URL once, as written, is not in the
  // redacted URL. Shorter ones, or with a delimiter, may equal other parts of
  // the URL ("a" is in "amqp"); and in a URL with any '%' escape the decoded
  // password is not what was written ("8s%39ss" is "8s9ss", which the host may
  // hold): the check below covers those.
  const bool as_written = password.size() >= 6 && url.find('%') == std::string::npos &&
                          password.find_first_of(":@/?#[]") == std::string::npos &&
                          occurrences(url, password) == 1;
  if (as_written && redacted.find(password) != std::string::npos) __builtin_trap();
  // Parsing the redacted URL must not give the password back.
  try {
    if (warren::parseBrokerUrl(redacted).password == password) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
