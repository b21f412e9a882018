// SPDX-License-Identifier: Apache-2.0
#include "broker_url.h"

#include <amqp.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace warren {
namespace {

constexpr std::string_view kHidden = "***";
// Where rabbitmq-c's URL parser ends a user name, password, host or port.
constexpr std::string_view kUrlDelimiters = ":@/?#[]";
// Where the path (or query, or fragment) of a URL begins.
constexpr std::string_view kPathStarts = "/?#";

constexpr const char* kExpectedForm =
    "expected amqp://user:password@host:port/vhost (or amqps:// for TLS), with any of @ : / ? # % "
    "[ ] in the user, "
    "password or vhost percent-encoded (%40 %3A %2F %3F %23 %25 %5B %5D)";

// amqp_parse_url decodes in place and points into the buffer it is given:
// the caller keeps `buffer` alive while it reads `info`.
bool parseInto(const std::string& url, std::vector<char>& buffer, amqp_connection_info& info) {
  buffer.assign(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_default_connection_info(&info);
  return amqp_parse_url(buffer.data(), &info) == AMQP_STATUS_OK;
}

std::string hide(const std::string& url, std::size_t from, std::size_t to) {
  return url.substr(0, from) + std::string(kHidden) +
         (to == std::string::npos ? std::string() : url.substr(to));
}

// A URL rabbitmq-c accepts: the password is exactly what rabbitmq-c takes
// for one, the text between the first two delimiters when they are ':' and
// then '@' (an escaped %2F is not a delimiter, a raw '/' is).
std::string redactParsed(const std::string& url, std::size_t authority) {
  const auto colon = url.find_first_of(kUrlDelimiters, authority);
  if (colon == std::string::npos || url[colon] != ':') return url;
  const auto at = url.find_first_of(kUrlDelimiters, colon + 1);
  if (at == std::string::npos || url[at] != '@') return url;
  return hide(url, colon + 1, at);
}

// A URL rabbitmq-c refuses, often for a raw delimiter in the password: where
// that password ends is a guess, so everything that may belong to it is
// hidden, from the first ':' of the authority to the '@' before the host.
std::string redactMalformed(const std::string& url, std::size_t authority) {
  const auto colon = url.find(':', authority);
  if (colon == std::string::npos) return url;
  // A ':' after the path has begun is in the path: there is no password.
  if (url.find_first_of(kPathStarts, authority) < colon) return url;
  const auto path = url.find_first_of(kPathStarts, colon + 1);
  // The '@' before the host: the last one before the path, or, when the
  // password itself holds a raw '/', '?' or '#', the last one of all.
  auto at = url.rfind('@', path);
  if (at == std::string::npos || at < colon) at = url.rfind('@');
  if (at != std::string::npos && at > colon) return hide(url, colon + 1, at);
  // No '@' after the ':': host:port, or user:password with the host missing.
  const auto port_end = path == std::string::npos ? url.size() : path;
  const std::string_view port(url.data() + colon + 1, port_end - colon - 1);
  const bool is_port = !port.empty() && std::all_of(port.begin(), port.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
  return is_port ? url : hide(url, colon + 1, std::string::npos);
}

// user:password@host:port, between the scheme and the path.
std::string_view authorityPart(std::string_view url) {
  const auto scheme = url.find("://");
  const std::size_t authority = scheme == std::string_view::npos ? 0 : scheme + 3;
  const auto path = url.find_first_of(kPathStarts, authority);
  return url.substr(authority,
                    path == std::string_view::npos ? std::string_view::npos : path - authority);
}

// The host (and port) of the authority: after its last '@', before the path.
std::string_view hostPart(std::string_view url) {
  std::string_view text = authorityPart(url);
  if (const auto at = text.rfind('@'); at != std::string_view::npos) text.remove_prefix(at + 1);
  return text;
}

}  // namespace

std::string BrokerAddress::endpoint() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return std::string(tls ? "amqps://" : "amqp://") + (ipv6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

BrokerAddress parseBrokerUrl(const std::string& url) {
  // rabbitmq-c takes amqp://h1:5672,h2:5672/ as the host h1 alone, and
  // amqp://h1,h2/ as one host named "h1,h2": a list of brokers would be
  // silently cut to one, or fail later at name resolution.
  if (hostPart(url).find(',') != std::string_view::npos) {
    throw std::invalid_argument("'" + redactBrokerUrl(url) +
                                "' has a ',' in its host: one URL names one broker, "
                                "amqp://user:password@host:port/vhost");
  }
  std::vector<char> buffer;
  amqp_connection_info info;
  if (!parseInto(url, buffer, info)) {
    // Never the URL itself: it may hold a password.
    throw std::invalid_argument("'" + redactBrokerUrl(url) + "' is not a valid AMQP URL; " +
                                kExpectedForm);
  }
  BrokerAddress address;
  address.host = info.host;
  address.port = info.port;
  address.vhost = info.vhost;
  address.user = info.user;
  address.password = info.password;
  address.tls = info.ssl != 0;
  // rabbitmq-c fills in guest:guest when the URL names nobody.
  const std::string_view authority = authorityPart(url);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    address.url_has_user = !userinfo.empty() && userinfo.front() != ':';
    address.url_has_password = userinfo.find(':') != std::string_view::npos;
  }
  return address;
}

std::vector<std::string> splitBrokerUrls(const std::string& text) {
  std::vector<std::string> urls;
  std::size_t from = 0;
  constexpr std::string_view kSpace = " \t\r\n";
  while ((from = text.find_first_not_of(kSpace, from)) != std::string::npos) {
    const std::size_t end = text.find_first_of(kSpace, from);
    urls.push_back(text.substr(from, end == std::string::npos ? std::string::npos : end - from));
    from = end;
  }
  if (urls.empty()) throw std::invalid_argument("no broker URL given");
  return urls;
}

std::string redactBrokerUrl(const std::string& url) {
  const auto scheme = url.find("://");
  const std::size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
  std::vector<char> buffer;
  amqp_connection_info info;
  return parseInto(url, buffer, info) ? redactParsed(url, authority)
                                      : redactMalformed(url, authority);
}

}  // namespace warren
