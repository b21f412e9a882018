// The broker address from an amqp:// URL, and its log-safe form.
#pragma once

#include <string>

namespace warren {

struct BrokerAddress {
  std::string host;
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
};

// Parses amqp://user:password@host:port/vhost (vhost percent-encoded, "%2f"
// for "/"). Throws std::invalid_argument saying what is wrong.
BrokerAddress parseBrokerUrl(const std::string& url);

// The URL with the password replaced by "***", for logs and error messages.
// For a URL parseBrokerUrl() refuses, where the password ends is a guess:
// everything that may belong to it is hidden.
std::string redactBrokerUrl(const std::string& url);

}  // namespace warren
