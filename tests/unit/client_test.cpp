// SPDX-License-Identifier: Apache-2.0
// The client's bookkeeping, without a broker: correlation ids, deadlines,
// late replies, and how reply messages map to outcomes.
#include "pending_calls.h"
#include "reply_outcome.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace warren::client_detail {
namespace {

using namespace std::chrono_literals;

struct Recorder {
  std::vector<std::string> finished;
  Done done(const std::string& name) {
    return [this, name](CallOutcome&&) { finished.push_back(name); };
  }
};

TEST(PendingCalls, MatchesARepliesCorrelationIdToItsCallOnce) {
  PendingCalls calls("c1-");
  std::uint64_t tag = 0;  // publish tags, one per request
  const auto now = Clock::now();
  const std::string a = calls.add(now + 1s, "sum", nullptr, ++tag);
  const std::string b = calls.add(now + 1s, "sum", nullptr, ++tag);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("c1-", 0), 0u);
  EXPECT_EQ(calls.size(), 2u);
  auto taken = calls.take(b);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->queue, "sum");
  EXPECT_FALSE(calls.take(b)) << "a second reply with the same id matched again";
  EXPECT_EQ(calls.size(), 1u);
}

TEST(PendingCalls, IgnoresCorrelationIdsThatAreNotOurs) {
  PendingCalls calls("c1-");
  std::uint64_t tag = 0;  // publish tags, one per request
  const std::string id = calls.add(Clock::now() + 1s, "q", nullptr, ++tag);
  EXPECT_FALSE(calls.take("c2-1"));
  EXPECT_FALSE(calls.take("c1-"));
  EXPECT_FALSE(calls.take("c1-1x"));
  EXPECT_FALSE(calls.take("c1-99"));
  EXPECT_FALSE(calls.take(""));
  EXPECT_TRUE(calls.take(id));
}

TEST(PendingCalls, ExpiresOnlyCallsWhoseDeadlinePassedInDeadlineOrder) {
  PendingCalls calls("p-");
  std::uint64_t tag = 0;  // publish tags, one per request
  const auto now = Clock::now();
  calls.add(now + 30ms, "late", nullptr, ++tag);
  calls.add(now + 10ms, "early", nullptr, ++tag);
  calls.add(now + 5s, "far", nullptr, ++tag);
  EXPECT_TRUE(calls.expire(now).empty());
  auto expired = calls.expire(now + 30ms);
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_EQ(expired[0].queue, "early");
  EXPECT_EQ(expired[1].queue, "late");
  EXPECT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls.nextDeadline(), now + 5s);
}

TEST(PendingCalls, AReplyAfterItsTimeoutFindsNoCall) {
  PendingCalls calls("p-");
  std::uint64_t tag = 0;  // publish tags, one per request
  const auto now = Clock::now();
  const std::string id = calls.add(now + 10ms, "q", nullptr, ++tag);
  ASSERT_EQ(calls.expire(now + 10ms).size(), 1u);
  EXPECT_FALSE(calls.take(id)) << "a late reply was handed to a call that already timed out";
}

TEST(PendingCalls, AnsweredCallsNoLongerSetTheNextDeadline) {
  PendingCalls calls("p-");
  std::uint64_t tag = 0;  // publish tags, one per request
  const auto now = Clock::now();
  const std::string soon = calls.add(now + 10ms, "q", nullptr, ++tag);
  calls.add(now + 1s, "q", nullptr, ++tag);
  ASSERT_TRUE(calls.take(soon));
  EXPECT_EQ(calls.nextDeadline(), now + 1s);
  EXPECT_TRUE(calls.expire(now + 500ms).empty());
}

TEST(PendingCalls, KeepsItsDeadlineHeapBoundedUnderSteadyTraffic) {
  PendingCalls calls("p-");
  std::uint64_t tag = 0;  // publish tags, one per request
  const auto now = Clock::now();
  // A million answered calls with long timeouts must not keep a million
  // heap entries alive: the heap is rebuilt as they pile up.
  for (int i = 0; i < 1'000'000; ++i)
    ASSERT_TRUE(calls.take(calls.add(now + 1h, "q", nullptr, ++tag)));
  EXPECT_EQ(calls.size(), 0u);
  EXPECT_FALSE(calls.nextDeadline());
}

TEST(PendingCalls, TakeAllReturnsEveryCallInSubmissionOrder) {
  PendingCalls calls("p-");
  std::uint64_t tag = 0;  // publish tags, one per request
  const auto now = Clock::now();
  calls.add(now + 3s, "first", nullptr, ++tag);
  calls.add(now + 1s, "second", nullptr, ++tag);
  calls.add(now + 2s, "third", nullptr, ++tag);
  const auto all = calls.takeAll();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].queue, "first");
  EXPECT_EQ(all[2].queue, "third");
  EXPECT_EQ(calls.size(), 0u);
  EXPECT_FALSE(calls.nextDeadline());
}

TEST(PendingCalls, AConfirmMarksItsCallsAndMultipleCoversEveryEarlierTag) {
  PendingCalls calls("p-");
  const auto now = Clock::now();
  const std::string a = calls.add(now + 1s, "a", nullptr, 1);
  const std::string b = calls.add(now + 1s, "b", nullptr, 2);
  const std::string c = calls.add(now + 1s, "c", nullptr, 3);
  const std::string d = calls.add(now + 1s, "d", nullptr, 4);
  EXPECT_EQ(calls.unconfirmed(), 4u);
  calls.confirm(3, 3);  // basic.ack 3
  calls.confirm(1, 2);  // basic.ack 2, multiple
  EXPECT_EQ(calls.unconfirmed(), 1u);
  EXPECT_TRUE(calls.take(a)->confirmed);
  EXPECT_TRUE(calls.take(b)->confirmed);
  EXPECT_TRUE(calls.take(c)->confirmed);
  EXPECT_FALSE(calls.take(d)->confirmed);
  EXPECT_EQ(calls.unconfirmed(), 0u);
}

TEST(PendingCalls, ARefusalRemovesItsWaitingCallsOnly) {
  PendingCalls calls("p-");
  const auto now = Clock::now();
  calls.add(now + 1s, "a", nullptr, 1);
  const std::string b = calls.add(now + 1s, "b", nullptr, 2);
  calls.add(now + 1s, "c", nullptr, 3);
  const std::string d = calls.add(now + 1s, "d", nullptr, 4);
  ASSERT_TRUE(calls.take(b));  // answered before the broker's nack arrived
  const auto refused = calls.refuse(1, 3);
  ASSERT_EQ(refused.size(), 2u);
  EXPECT_EQ(refused[0].queue, "a");
  EXPECT_EQ(refused[1].queue, "c");
  EXPECT_FALSE(refused[0].confirmed);
  EXPECT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls.refuse(3, 3).empty()) << "refused twice";
  EXPECT_TRUE(calls.take(d));
}

TEST(PendingCalls, KeepsARequestsBodyUntilTheBrokerTakesIt) {
  PendingCalls calls("p-");
  PendingCall request;
  request.deadline = Clock::now() + 1s;
  request.queue = "q";
  request.body = "1,2";
  request.publish_tag = 1;
  const std::string kept = calls.add(request).correlation_id;
  request.publish_tag = 2;
  const std::string refused = calls.add(request).correlation_id;
  calls.confirm(1, 1);
  EXPECT_TRUE(calls.take(kept)->body.empty()) << "a queued request is never sent again";
  const auto again = calls.refuse(2, 2);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].body, "1,2") << "a refused request is published again";
  EXPECT_FALSE(calls.take(refused));
}

TEST(PendingCalls, ForgottenConfirmsLeaveTheirCallsWaitingUnconfirmed) {
  PendingCalls calls("p-");
  const auto now = Clock::now();
  const std::string a = calls.add(now + 1s, "a", nullptr, 1);
  const std::string b = calls.add(now + 1s, "b", nullptr, 2);
  calls.forgetConfirms(1, 1);
  EXPECT_EQ(calls.unconfirmed(), 1u);
  calls.confirm(1, 2);
  EXPECT_FALSE(calls.take(a)->confirmed);
  EXPECT_TRUE(calls.take(b)->confirmed);
}

TEST(PendingCalls, CallsThatEndBeforeTheirConfirmLeaveNoTagBehind) {
  PendingCalls calls("p-");
  const auto now = Clock::now();
  // A broker that never confirms (a quorum queue without a majority) must
  // not make the client hold a tag per call for ever.
  std::uint64_t tag = 0;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(calls.take(calls.add(now + 1h, "q", nullptr, ++tag)));
  for (int i = 0; i < 1000; ++i) calls.add(now + 1ms, "q", nullptr, ++tag);
  EXPECT_EQ(calls.expire(now + 1ms).size(), 1000u);
  EXPECT_EQ(calls.unconfirmed(), 0u);
  calls.confirm(1, tag);  // late confirms find nothing
  EXPECT_EQ(calls.size(), 0u);
}

InboundMessage replyWith(std::string body,
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
  InboundMessage message;
  message.body = std::move(body);
  message.content_type = "text/plain";
  message.headers = std::move(headers);
  return message;
}

TEST(ReplyOutcome, APlainReplyIsASuccessWithItsBody) {
  const CallOutcome outcome = outcomeOfReply(replyWith("7"));
  EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(outcome.reply.body, "7");
  EXPECT_EQ(outcome.reply.content_type, "text/plain");
  EXPECT_TRUE(outcome.error_code.empty());
}

TEST(ReplyOutcome, TheErrorCodeHeaderMakesARemoteErrorWhateverTheBody) {
  const CallOutcome outcome =
      outcomeOfReply(replyWith("error: invalid_argument: first field is not an integer: 'x'",
                               {{"x-warren-error-code", "invalid_argument"},
                                {"x-warren-error-message", "first field is not an integer: 'x'"}}));
  EXPECT_EQ(outcome.status, CallStatus::kRemoteError);
  EXPECT_EQ(outcome.error_code, "invalid_argument");
  EXPECT_EQ(outcome.message, "first field is not an integer: 'x'");
  // The error reply as received, for callers that show it (warren-call --verbose).
  EXPECT_EQ(outcome.reply.body, "error: invalid_argument: first field is not an integer: 'x'");
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"x-warren-error-code", "invalid_argument"},
      {"x-warren-error-message", "first field is not an integer: 'x'"}};
  EXPECT_EQ(outcome.reply.headers, headers);
}

TEST(ReplyOutcome, AnErrorWithoutAMessageHeaderUsesTheBody) {
  const CallOutcome outcome =
      outcomeOfReply(replyWith("it broke", {{"x-warren-error-code", "internal"}}));
  EXPECT_EQ(outcome.status, CallStatus::kRemoteError);
  EXPECT_EQ(outcome.message, "it broke");
}

TEST(ReplyOutcome, OtherHeadersDoNotMakeAnError) {
  const CallOutcome outcome = outcomeOfReply(replyWith("42", {{"x-trace", "abc"}}));
  EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(outcome.reply.body, "42");
  const std::vector<std::pair<std::string, std::string>> headers = {{"x-trace", "abc"}};
  EXPECT_EQ(outcome.reply.headers, headers);
}

TEST(CallStatus, EveryStatusHasAName) {
  EXPECT_EQ(callStatusName(CallStatus::kOk), "ok");
  EXPECT_EQ(callStatusName(CallStatus::kRemoteError), "remote_error");
  EXPECT_EQ(callStatusName(CallStatus::kTimeout), "timeout");
  EXPECT_EQ(callStatusName(CallStatus::kNoRoute), "no_route");
  EXPECT_EQ(callStatusName(CallStatus::kConnectionLost), "connection_lost");
  EXPECT_EQ(callStatusName(CallStatus::kNotConnected), "not_connected");
  EXPECT_EQ(callStatusName(CallStatus::kRejected), "rejected");
}

TEST(DefaultBrokerUrl, PrefersTheFlagThenTheEnvironmentThenLocalhost) {
  ::unsetenv("WARREN_BROKER_URL");
  EXPECT_EQ(defaultBrokerUrl(), "amqp://guest:guest@localhost:5672/%2f");
  ::setenv("WARREN_BROKER_URL", "amqp://u:p@broker:5673/v", 1);
  EXPECT_EQ(defaultBrokerUrl(), "amqp://u:p@broker:5673/v");
  EXPECT_EQ(defaultBrokerUrl("amqp://flag"), "amqp://flag");
  ::unsetenv("WARREN_BROKER_URL");
}

TEST(Client, RefusesABadUrlWithoutConnecting) {
  ClientOptions options;
  options.broker_url = "http://nope";
  try {
    Client client(options);
    FAIL() << "constructed";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("not a valid AMQP URL"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace warren::client_detail
