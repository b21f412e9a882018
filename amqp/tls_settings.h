// SPDX-License-Identifier: Apache-2.0
// How a connection to an amqps:// broker sets up TLS.
#pragma once

#include <string>

namespace warren {

struct TlsSettings {
  // PEM file of the CA certificates the broker's certificate must chain to;
  // empty: the system's trust store (/etc/ssl/certs).
  std::string ca_file;
  // PEM client certificate (chain) and its private key, both or neither:
  // presented to a broker that asks for one (peer verification, EXTERNAL).
  std::string cert_file;
  std::string key_file;
  // Check the broker's certificate chain and that it names the URL's host.
  // Off only by an explicit choice, which the caller logs.
  bool verify = true;
  bool operator==(const TlsSettings&) const = default;
};

// How the connection logs in.
enum class LoginMechanism {
  kPlain,     // user name and password (SASL PLAIN)
  kExternal,  // the TLS client certificate names the user (SASL EXTERNAL)
};

}  // namespace warren
