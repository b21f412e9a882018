// SPDX-License-Identifier: Apache-2.0
// TLS to the broker (amqps://), against a private broker with a test CA
// generated at start-up (scripts/make-test-certs): verified by default,
// refused clearly, never downgraded; EXTERNAL login with a client certificate.
#include "child_process.h"
#include "config_file.h"
#include "daemon_harness.h"
#include "private_broker.h"

#include <gtest/gtest.h>
#include <warren/client.hpp>

#include <memory>
#include <string>
#include <vector>

namespace warren::test {
namespace {

using namespace std::chrono_literals;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { broker_ = startTlsBroker().release(); }
  static void TearDownTestSuite() {
    if (broker_ != nullptr && ::testing::UnitTest::GetInstance()->failed_test_count() > 0) {
      std::fprintf(stderr, "\n--- RabbitMQ log (a test failed) ---\n%s\n", broker_->log().c_str());
    }
    delete broker_;
    broker_ = nullptr;
  }

  static std::unique_ptr<PrivateBroker> startTlsBroker();
  static PrivateBroker& broker() { return *broker_; }
  static std::string cert(const std::string& name) { return (broker().certDir() / name).string(); }
  // amqps:// to the TLS port by `host` (the certificate names localhost).
  static std::string tlsUrl(const std::string& host = "localhost",
                            const std::string& credentials = "guest:guest@") {
    return "amqps://" + credentials + host + ":" + std::to_string(broker().tlsPort()) + "/%2f";
  }

  static ClientOptions clientOptions(const std::string& url, const std::string& ca) {
    ClientOptions options;
    options.broker_url = url;
    options.tls.ca_file = ca;
    options.connect_timeout = 5s;
    return options;
  }

  // The message of the CallError connecting with `options` throws.
  static std::string connectError(const ClientOptions& options) {
    try {
      Client client(options);
    } catch (const CallError& e) {
      EXPECT_EQ(e.status(), CallStatus::kNotConnected);
      return e.what();
    }
    return "(connected)";
  }

  // warrend's YAML for the TLS broker: `broker_lines` under broker:.
  static std::string yaml(const std::string& url, const std::string& broker_lines) {
    std::string text =
        daemonYaml(broker().port(), "  - name: tls_sum\n    handler: sum\n", broker_lines);
    const std::string plain = broker().url();
    const auto at = text.find("amqp://guest:guest@127.0.0.1:" + std::to_string(broker().port()));
    text.replace(at, text.find('\n', at) - at, url);
    return text;
  }

  static PrivateBroker* broker_;
};

PrivateBroker* TlsTest::broker_ = nullptr;

std::unique_ptr<PrivateBroker> TlsTest::startTlsBroker() {
  PrivateBroker::Options options;
  options.tls = true;
  return std::make_unique<PrivateBroker>(options);
}

TEST_F(TlsTest, WarrendAndTheClientTalkTlsVerifiedAgainstTheTestCa) {
  RunningDaemon daemon(yaml(tlsUrl(), "  tls:\n    ca_file: " + cert("ca.pem") + "\n"));
  EXPECT_TRUE(
      daemon.log().waitFor("on amqps://localhost:" + std::to_string(broker().tlsPort()), 1s))
      << daemon.log().text();
  Client client(clientOptions(tlsUrl(), cert("ca.pem")));
  EXPECT_EQ(client.call("tls_sum", "3,4").body, "7");
  // The broker saw TLS connections: warrend's and the client's.
  const std::string connections = broker().ctl("list_connections ssl name");
  EXPECT_NE(connections.find("true"), std::string::npos) << connections;
  EXPECT_EQ(connections.find("false"), std::string::npos) << connections;
}

TEST_F(TlsTest, ABrokerSignedByAnotherCaIsRefused) {
  const std::string error = connectError(clientOptions(tlsUrl(), cert("other-ca.pem")));
  EXPECT_NE(error.find("the broker's TLS certificate is not signed by a CA in '" +
                       cert("other-ca.pem") + "'"),
            std::string::npos)
      << error;
  // warrend says the same, and keeps retrying.
  RunningDaemon daemon(yaml(tlsUrl(), "  tls:\n    ca_file: " + cert("other-ca.pem") + "\n"),
                       /*wait_consuming=*/false);
  EXPECT_TRUE(daemon.log().waitFor("is not signed by a CA in", 30s)) << daemon.log().text();
  EXPECT_TRUE(daemon.log().waitFor("retry in", 30s)) << daemon.log().text();
}

TEST_F(TlsTest, ACertificateForAnotherHostNameIsRefused) {
  // The server certificate names localhost only; 127.0.0.1 is another name.
  const std::string error = connectError(clientOptions(tlsUrl("127.0.0.1"), cert("ca.pem")));
  EXPECT_NE(error.find("the broker's TLS certificate is not for the host name '127.0.0.1'"),
            std::string::npos)
      << error;
}

TEST_F(TlsTest, PlaintextAtTheTlsPortFailsClearlyWithoutHanging) {
  ClientOptions options;
  options.broker_url =
      "amqp://guest:guest@localhost:" + std::to_string(broker().tlsPort()) + "/%2f";
  options.connect_timeout = 5s;
  const std::string error = connectError(options);
  EXPECT_NE(error.find("if this is the broker's TLS port, use amqps://"), std::string::npos)
      << error;
}

TEST_F(TlsTest, TlsAtThePlaintextPortFailsClearlyAndNeverDowngrades) {
  const std::string url =
      "amqps://guest:guest@localhost:" + std::to_string(broker().port()) + "/%2f";
  const std::string error = connectError(clientOptions(url, cert("ca.pem")));
  EXPECT_NE(error.find("the TLS handshake failed"), std::string::npos) << error;
  EXPECT_NE(error.find("is this the broker's TLS port"), std::string::npos) << error;
}

TEST_F(TlsTest, ExternalLoginWithTheClientCertificate) {
  // The client certificate's CN is warren-client: the broker's user of that
  // name (scripts/rabbitmq-private made it), whose password nobody uses.
  const std::string tls = "  tls:\n    ca_file: " + cert("ca.pem") +
                          "\n    cert_file: " + cert("client.pem") +
                          "\n    key_file: " + cert("client.key") + "\n";
  RunningDaemon daemon(yaml(tlsUrl("localhost", ""), "  auth_mechanism: external\n" + tls));

  ClientOptions options = clientOptions(tlsUrl("localhost", ""), cert("ca.pem"));
  options.tls.cert_file = cert("client.pem");
  options.tls.key_file = cert("client.key");
  options.external_login = true;
  Client client(options);
  EXPECT_EQ(client.call("tls_sum", "20,22").body, "42");
  const std::string users = broker().ctl("list_connections user auth_mechanism");
  EXPECT_NE(users.find("warren-client\tEXTERNAL"), std::string::npos) << users;
}

TEST_F(TlsTest, VerificationOffIsAnExplicitLoggedChoice) {
  RunningDaemon daemon(yaml(tlsUrl("127.0.0.1"), "  tls:\n    verify: false\n"));
  EXPECT_NE(daemon.log().text().find("broker.tls.verify is false"), std::string::npos)
      << daemon.log().text();
  ClientOptions options = clientOptions(tlsUrl("127.0.0.1"), cert("other-ca.pem"));
  options.tls.verify = false;
  Client client(options);
  EXPECT_EQ(client.call("tls_sum", "1,1").body, "2");
}

TEST_F(TlsTest, WarrenCallTakesTheTlsOptions) {
  RunningDaemon daemon(yaml(tlsUrl(), "  tls:\n    ca_file: " + cert("ca.pem") + "\n"));
  ChildProcess call(
      {WARREN_CALL_BINARY, "--broker", tlsUrl(), "--ca-file", cert("ca.pem"), "tls_sum", "2,3"});
  EXPECT_EQ(call.waitExit(30s), 0) << call.output();
  EXPECT_NE(call.output().find('5'), std::string::npos) << call.output();
  ChildProcess refused({WARREN_CALL_BINARY, "--broker", tlsUrl(), "--ca-file", cert("other-ca.pem"),
                        "tls_sum", "2,3"});
  EXPECT_NE(refused.waitExit(30s), 0) << refused.output();
  EXPECT_NE(refused.output().find("not signed by a CA"), std::string::npos) << refused.output();
}

}  // namespace
}  // namespace warren::test
