// SPDX-License-Identifier: Apache-2.0
// The broker options warren-call and warren-bench share: where the broker
// is, TLS, and where the password is kept. Never a password itself: ps and
// shell history would show it.
#pragma once

#include <warren/client.hpp>

#include <CLI/CLI.hpp>

#include <string>

namespace warren {

struct BrokerFlags {
  std::string url;
  std::string password_file;
  ClientTlsOptions tls;
  bool no_verify = false;
  bool external = false;
};

inline void addBrokerFlags(CLI::App& app, BrokerFlags& flags) {
  app.add_option("--broker", flags.url,
                 "Broker URL, amqp:// or amqps:// (TLS); several nodes of one cluster as one "
                 "argument separated by spaces. Default: $WARREN_BROKER_URL, else "
                 "amqp://guest:guest@localhost:5672/%2f")
      ->type_name("URL");
  app.add_option("--password-file", flags.password_file,
                 "File holding the broker password, for a URL without one (default: "
                 "$WARREN_BROKER_PASSWORD_FILE)")
      ->type_name("FILE");
  app.add_option("--ca-file", flags.tls.ca_file,
                 "amqps://: PEM CA file the broker's certificate must chain to (default: the "
                 "system trust store)")
      ->type_name("FILE");
  auto* cert = app.add_option("--cert-file", flags.tls.cert_file,
                              "amqps://: PEM client certificate, with --key-file")
                   ->type_name("FILE");
  auto* key = app.add_option("--key-file", flags.tls.key_file, "amqps://: PEM key of --cert-file")
                  ->type_name("FILE");
  cert->needs(key);
  key->needs(cert);
  app.add_flag("--no-verify", flags.no_verify,
               "amqps://: accept any broker certificate (tests only: anyone on the path can pose "
               "as the broker)");
  app.add_flag("--external", flags.external,
               "Log in with the client certificate (SASL EXTERNAL) instead of a password")
      ->needs(cert);
}

inline void applyBrokerFlags(const BrokerFlags& flags, ClientOptions& options) {
  options.broker_url = defaultBrokerUrl(flags.url);
  options.password_file = defaultPasswordFile(flags.password_file);
  options.tls = flags.tls;
  options.tls.verify = !flags.no_verify;
  options.external_login = flags.external;
}

}  // namespace warren
