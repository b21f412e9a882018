// Tests of broker URL parsing and redaction (daemon/broker_url.cpp).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "broker_url.h"

namespace warren {
namespace {

// The message of the std::invalid_argument that parseBrokerUrl(url) throws,
// or a failure if it throws nothing.
std::string parseError(const std::string& url) {
  try {
    parseBrokerUrl(url);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  ADD_FAILURE() << "parseBrokerUrl(\"" << url << "\") did not throw";
  return "";
}

TEST(ParseBrokerUrl, ParsesTheDefaultLocalBroker) {
  const BrokerAddress address = parseBrokerUrl("amqp://guest:guest@localhost:5672/%2f");
  EXPECT_EQ(address.host, "localhost");
  EXPECT_EQ(address.port, 5672);
  EXPECT_EQ(address.vhost, "/");
  EXPECT_EQ(address.user, "guest");
  EXPECT_EQ(address.password, "guest");
}

TEST(ParseBrokerUrl, ParsesANamedVhostAndPort) {
  const BrokerAddress address = parseBrokerUrl("amqp://svc:pw@rabbit.example.org:5673/production");
  EXPECT_EQ(address.host, "rabbit.example.org");
  EXPECT_EQ(address.port, 5673);
  EXPECT_EQ(address.vhost, "production");
  EXPECT_EQ(address.user, "svc");
  EXPECT_EQ(address.password, "pw");
}

TEST(ParseBrokerUrl, DefaultsThePortTo5672WhenOmitted) {
  const BrokerAddress address = parseBrokerUrl("amqp://svc:pw@rabbit.example.org/jobs");
  EXPECT_EQ(address.host, "rabbit.example.org");
  EXPECT_EQ(address.port, 5672);
  EXPECT_EQ(address.vhost, "jobs");
}

TEST(ParseBrokerUrl, DefaultsCredentialsAndVhostWhenOmitted) {
  const BrokerAddress address = parseBrokerUrl("amqp://localhost");
  EXPECT_EQ(address.host, "localhost");
  EXPECT_EQ(address.port, 5672);
  EXPECT_EQ(address.vhost, "/");
  EXPECT_EQ(address.user, "guest");
  EXPECT_EQ(address.password, "guest");
}

TEST(ParseBrokerUrl, DecodesPercentEncodedUserPasswordAndVhost) {
  const BrokerAddress address =
      parseBrokerUrl("amqp://us%40er:p%3Aa%2Fs%40s@host:5672/team%2fjobs");
  EXPECT_EQ(address.user, "us@er");
  EXPECT_EQ(address.password, "p:a/s@s");
  EXPECT_EQ(address.host, "host");
  EXPECT_EQ(address.vhost, "team/jobs");
}

TEST(ParseBrokerUrl, RejectsSomethingThatIsNotAUrl) {
  EXPECT_THROW(parseBrokerUrl("not a url"), std::invalid_argument);
  EXPECT_THROW(parseBrokerUrl(""), std::invalid_argument);
}

TEST(ParseBrokerUrl, RejectsAnotherScheme) {
  EXPECT_THROW(parseBrokerUrl("http://x"), std::invalid_argument);
}

TEST(ParseBrokerUrl, RejectsAmqpsAsNotSupported) {
  const std::string message = parseError("amqps://svc:topsecret@rabbit.example.org:5671/%2f");
  EXPECT_NE(message.find("amqps"), std::string::npos) << message;
  EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
}

TEST(ParseBrokerUrl, RejectsABadPortWithoutRevealingThePassword) {
  const std::string message = parseError("amqp://svc:topsecret@rabbit.example.org:notaport/%2f");
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
}

TEST(ParseBrokerUrl, RejectsAnotherSchemeWithoutRevealingThePassword) {
  const std::string message = parseError("http://svc:topsecret@rabbit.example.org/");
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
}

TEST(RedactBrokerUrl, ReplacesThePasswordWithStars) {
  EXPECT_EQ(redactBrokerUrl("amqp://user:secret@host:5672/%2f"), "amqp://user:***@host:5672/%2f");
  EXPECT_EQ(redactBrokerUrl("amqp://user:secret@host"), "amqp://user:***@host");
}

TEST(RedactBrokerUrl, HidesAPercentEncodedPassword) {
  EXPECT_EQ(redactBrokerUrl("amqp://user:p%40ss%3Aw@host:5672/vh"), "amqp://user:***@host:5672/vh");
}

TEST(RedactBrokerUrl, LeavesAUrlWithoutAPasswordUnchanged) {
  EXPECT_EQ(redactBrokerUrl("amqp://host:5672/%2f"), "amqp://host:5672/%2f");
  EXPECT_EQ(redactBrokerUrl("amqp://user@host:5672/%2f"), "amqp://user@host:5672/%2f");
  EXPECT_EQ(redactBrokerUrl("amqp://localhost"), "amqp://localhost");
  EXPECT_EQ(redactBrokerUrl("not a url"), "not a url");
}

TEST(RedactBrokerUrl, IgnoresAColonThatAppearsOnlyInThePath) {
  EXPECT_EQ(redactBrokerUrl("amqp://user@host/team:jobs"), "amqp://user@host/team:jobs");
  EXPECT_EQ(redactBrokerUrl("amqp://host/team:jobs"), "amqp://host/team:jobs");
}

TEST(RedactBrokerUrl, IgnoresAnAtSignThatAppearsOnlyInThePath) {
  EXPECT_EQ(redactBrokerUrl("amqp://host/team@jobs"), "amqp://host/team@jobs");
  EXPECT_EQ(redactBrokerUrl("amqp://host:5672/team@jobs"), "amqp://host:5672/team@jobs");
  EXPECT_EQ(redactBrokerUrl("amqp://host/a:b@c"), "amqp://host/a:b@c");
}

TEST(RedactBrokerUrl, StillRedactsWhenThePathHasAnAtSign) {
  EXPECT_EQ(redactBrokerUrl("amqp://user:secret@host:5672/team@jobs"),
            "amqp://user:***@host:5672/team@jobs");
}

}  // namespace
}  // namespace warren
