// SPDX-License-Identifier: Apache-2.0
// The broker address from an amqp:// or amqps:// URL, and its log-safe form.
#pragma once

#include <string>
#include <vector>

namespace warren {

struct BrokerAddress {
  std::string host;
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
  bool tls = false;           // amqps://
  bool url_has_user = false;  // the URL named the user ("guest" is the default)
  bool url_has_password = false;

  // "amqps://host:port": where a connection went, for logs (no credentials).
  std::string endpoint() const;
  bool operator==(const BrokerAddress&) const = default;
};

// Parses amqp://user:password@host:port/vhost or amqps://... (vhost
// percent-encoded, "%2f" for "/"; amqps:// defaults to port 5671). Throws
// std::invalid_argument saying what is wrong.
BrokerAddress parseBrokerUrl(const std::string& url);

// Several URLs in one string, separated by whitespace (a raw space is never
// part of a URL): the form of $WARREN_BROKER_URL for a cluster. Throws
// std::invalid_argument for an empty list.
std::vector<std::string> splitBrokerUrls(const std::string& text);

// The URL with the password replaced by "***", for logs and error messages.
// For a URL parseBrokerUrl() refuses, where the password ends is a guess:
// everything that may belong to it is hidden.
std::string redactBrokerUrl(const std::string& url);

}  // namespace warren
