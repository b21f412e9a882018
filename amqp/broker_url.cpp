#include "broker_url.h"

#include <amqp.h>

#include <stdexcept>
#include <vector>

namespace warren {

BrokerAddress parseBrokerUrl(const std::string& url) {
  if (url.rfind("amqps://", 0) == 0) {
    throw std::invalid_argument("amqps:// (TLS) is not supported yet; use amqp://");
  }
  // amqp_parse_url decodes in place and points into the buffer it is given.
  std::vector<char> buffer(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) {
    throw std::invalid_argument("'" + redactBrokerUrl(url) +
                                "' is not a valid AMQP URL; expected "
                                "amqp://user:password@host:port/vhost");
  }
  BrokerAddress address;
  address.host = info.host;
  address.port = info.port;
  address.vhost = info.vhost;
  address.user = info.user;
  address.password = info.password;
  return address;
}

std::string redactBrokerUrl(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  // user:password@ can only stand in the authority, before the path.
  const auto authority = scheme + 3;
  const auto path = url.find_first_of("/?#", authority);
  const auto at = url.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at == std::string::npos || at < authority) return url;
  const auto colon = url.find(':', authority);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

}  // namespace warren
