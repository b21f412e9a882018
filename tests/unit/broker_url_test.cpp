// SPDX-License-Identifier: Apache-2.0
// Tests of broker URL parsing and redaction (amqp/broker_url.cpp).
#include <gtest/gtest.h>

#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

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

// rabbitmq-c accepts both, as the host h1 alone and as a host named "h1,h2".
TEST(ParseBrokerUrl, RefusesACommaInTheHost) {
  const std::string why =
      "' has a ',' in its host: one URL names one broker, amqp://user:password@host:port/vhost";
  EXPECT_EQ(parseError("amqp://h1:5672,h2:5672/"), "'amqp://h1:5672,h2:5672/" + why);
  EXPECT_EQ(parseError("amqp://h1,h2/"), "'amqp://h1,h2/" + why);
  EXPECT_EQ(parseError("amqp://svc:topsecret@h1:5672,h2:5672/%2f"),
            "'amqp://svc:***@h1:5672,h2:5672/%2f" + why);
  // A ',' in the password or the vhost is not in the host.
  EXPECT_EQ(parseBrokerUrl("amqp://svc:top,secret@h1:5672/a,b").password, "top,secret");
  EXPECT_EQ(parseBrokerUrl("amqp://svc:top,secret@h1:5672/a,b").vhost, "a,b");
}

TEST(ParseBrokerUrl, RejectsAnotherScheme) {
  EXPECT_THROW(parseBrokerUrl("http://x"), std::invalid_argument);
}

TEST(ParseBrokerUrl, AmqpsIsTlsOnPort5671ByDefault) {
  const BrokerAddress address = parseBrokerUrl("amqps://svc:topsecret@rabbit.example.org/%2f");
  EXPECT_TRUE(address.tls);
  EXPECT_EQ(address.port, 5671);
  EXPECT_EQ(address.endpoint(), "amqps://rabbit.example.org:5671");
  EXPECT_FALSE(parseBrokerUrl("amqp://rabbit").tls);
  EXPECT_EQ(parseBrokerUrl("amqps://rabbit:5000").port, 5000);
}

TEST(ParseBrokerUrl, TellsWhetherTheUrlNamedTheUserAndPassword) {
  const BrokerAddress bare = parseBrokerUrl("amqp://rabbit/jobs");
  EXPECT_FALSE(bare.url_has_user);
  EXPECT_FALSE(bare.url_has_password);
  EXPECT_EQ(bare.user, "guest");  // rabbitmq-c's default, replaced by broker.user
  const BrokerAddress user = parseBrokerUrl("amqp://svc@rabbit/jobs");
  EXPECT_TRUE(user.url_has_user);
  EXPECT_FALSE(user.url_has_password);
  const BrokerAddress both = parseBrokerUrl("amqp://svc:p%40ss@rabbit/jobs");
  EXPECT_TRUE(both.url_has_user);
  EXPECT_TRUE(both.url_has_password);
  // An '@' in the vhost is not user information.
  EXPECT_FALSE(parseBrokerUrl("amqp://rabbit/team%40jobs").url_has_user);
}

TEST(SplitBrokerUrls, SplitsOnWhitespaceAndRefusesNothing) {
  EXPECT_EQ(splitBrokerUrls(" amqp://a:1/%2f  amqps://b:2/%2f\n"),
            (std::vector<std::string>{"amqp://a:1/%2f", "amqps://b:2/%2f"}));
  EXPECT_EQ(splitBrokerUrls("amqp://a"), (std::vector<std::string>{"amqp://a"}));
  EXPECT_THROW(splitBrokerUrls("  "), std::invalid_argument);
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

// A password made of two marked halves around `separator`: neither half may
// appear in any redacted URL or error message.
constexpr const char* kSecretHalves[] = {"PWfirst", "PWsecond"};
std::string secretWith(const std::string& separator) {
  return std::string(kSecretHalves[0]) + separator + kSecretHalves[1];
}
::testing::AssertionResult revealsNoSecret(const std::string& text) {
  for (const char* half : kSecretHalves) {
    if (text.find(half) != std::string::npos) {
      return ::testing::AssertionFailure() << "'" << half << "' appears in: " << text;
    }
  }
  return ::testing::AssertionSuccess();
}

// Characters that end the password in URL syntax, or start an escape: raw
// ones make a URL rabbitmq-c refuses, encoded ones make a valid URL.
const std::string kRawSeparators[] = {"/", "?", "#", "@", "%", ":", "[", "]", "%zz", "%ff"};
const std::string kEncodedSeparators[] = {"%2F", "%3F", "%23", "%40", "%25", "%3A", "%2f"};

TEST(RedactBrokerUrl, HidesAPasswordHoldingRawDelimiters) {
  for (const std::string& separator : kRawSeparators) {
    const std::string url = "amqp://svc:" + secretWith(separator) + "@rabbit:5672/jobs";
    const std::string redacted = redactBrokerUrl(url);
    EXPECT_TRUE(revealsNoSecret(redacted)) << url;
    EXPECT_EQ(redacted, "amqp://svc:***@rabbit:5672/jobs") << url;
  }
}

TEST(RedactBrokerUrl, HidesAPasswordHoldingEncodedDelimiters) {
  for (const std::string& separator : kEncodedSeparators) {
    const std::string url = "amqp://svc:" + secretWith(separator) + "@rabbit:5672/jobs";
    const std::string redacted = redactBrokerUrl(url);
    EXPECT_TRUE(revealsNoSecret(redacted)) << url;
    EXPECT_EQ(redacted, "amqp://svc:***@rabbit:5672/jobs") << url;
  }
}

TEST(RedactBrokerUrl, HidesAPasswordWhenThePathAlsoHasAnAtSign) {
  const std::string url = "amqp://svc:" + secretWith("/") + "@rabbit/team@jobs";
  EXPECT_TRUE(revealsNoSecret(redactBrokerUrl(url)));
}

TEST(RedactBrokerUrl, HidesAPasswordWithoutAScheme) {
  EXPECT_EQ(redactBrokerUrl("svc:" + secretWith("/") + "@rabbit"), "svc:***@rabbit");
  EXPECT_TRUE(revealsNoSecret(redactBrokerUrl("amqp:/svc:" + secretWith("?") + "@rabbit")));
}

TEST(ParseBrokerUrl, ErrorsNeverRevealAPasswordHoldingDelimiters) {
  std::vector<std::string> separators(std::begin(kRawSeparators), std::end(kRawSeparators));
  separators.insert(separators.end(), std::begin(kEncodedSeparators), std::end(kEncodedSeparators));
  for (const std::string& separator : separators) {
    const std::string secret = secretWith(separator);
    // Each is malformed after (or because of) the password.
    for (const std::string& url : {
             "amqp://svc:" + secret + "@rabbit:notaport/jobs",
             "amqp://svc:" + secret + "@rabbit:99999/jobs",
             "amqp://svc:" + secret + "@rabbit/jobs/more",
             "amqp://svc:" + secret + "@rabbit/jobs?heartbeat=5",
             "amqp://svc:" + secret + "@rabbit/jobs#top",
             "amqp://svc:" + secret + "@[::1/jobs",
             "amqp://svc:" + secret + "@rabbit@other/jobs",
             "amqps://svc:" + secret + "@rabbit:notaport/jobs",
             "http://svc:" + secret + "@rabbit/jobs",
         }) {
      const std::string message = parseError(url);
      EXPECT_FALSE(message.empty()) << url;
      EXPECT_TRUE(revealsNoSecret(message)) << url;
    }
  }
}

TEST(ParseBrokerUrl, ErrorsNeverRevealAPasswordWhoseHostIsMissing) {
  for (const std::string separator : {"/", "?", "#", "%", "%2F"}) {
    const std::string url = "amqp://svc:" + secretWith(separator);
    const std::string message = parseError(url);
    EXPECT_TRUE(revealsNoSecret(message)) << url;
    EXPECT_NE(message.find("amqp://svc:***"), std::string::npos) << message;
  }
  // A number after the ':' is a port, shown as written.
  EXPECT_NE(parseError("amqp://rabbit:99999/jobs").find("amqp://rabbit:99999/jobs"),
            std::string::npos);
}

TEST(ParseBrokerUrl, ADelimiterInThePasswordIsExplained) {
  const std::string message = parseError("amqp://svc:" + secretWith("/") + "@rabbit/jobs");
  EXPECT_NE(message.find("amqp://svc:***@rabbit/jobs"), std::string::npos) << message;
  EXPECT_NE(message.find("percent-encode"), std::string::npos) << message;
}

TEST(ParseBrokerUrl, DecodesEveryEncodedDelimiterInThePassword) {
  const BrokerAddress address = parseBrokerUrl("amqp://svc:a%2Fb%3Fc%23d%40e%25f%3Ag@rabbit/jobs");
  EXPECT_EQ(address.password, "a/b?c#d@e%f:g");
  EXPECT_EQ(address.host, "rabbit");
  EXPECT_EQ(address.vhost, "jobs");
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
  EXPECT_EQ(redactBrokerUrl("amqp://host/a:b@c"), "amqp://host/a:b@c");
}

// rabbitmq-c refuses a raw '@' in a vhost, and then host:5672/team@jobs reads
// just like user:1234/pass@host (a password with a raw '/'): the part that
// may be a password is hidden.
TEST(RedactBrokerUrl, HidesWhatMayBeAPasswordInAnAmbiguousMalformedUrl) {
  EXPECT_EQ(redactBrokerUrl("amqp://host:5672/team@jobs"), "amqp://host:***@jobs");
  EXPECT_EQ(redactBrokerUrl("amqp://svc:1234/pass@rabbit"), "amqp://svc:***@rabbit");
}

TEST(RedactBrokerUrl, StillRedactsWhenThePathHasAnAtSign) {
  EXPECT_EQ(redactBrokerUrl("amqp://user:secret@host:5672/team@jobs"),
            "amqp://user:***@host:5672/team@jobs");
}

}  // namespace
}  // namespace warren
