// SPDX-License-Identifier: Apache-2.0
// Tests of what warrend does with a delivery (daemon/engine/request_policy.cpp),
// without a broker.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "request_policy.h"

namespace warren {
namespace {

RequestFacts plainRequest(std::string_view reply_to = "amq.gen-reply") {
  RequestFacts facts;
  facts.has_reply_to = true;
  facts.reply_to = reply_to;
  return facts;
}

TEST(RequestPolicy, RunsTheHandlerForAnOrdinaryRequest) {
  EXPECT_EQ(decide(plainRequest()), Decision::kRunHandler);
  RequestFacts redelivered = plainRequest();
  redelivered.redelivered = true;
  EXPECT_EQ(decide(redelivered), Decision::kRunHandler);
}

TEST(RequestPolicy, HandsEverythingBackWhileStopping) {
  RequestFacts facts = plainRequest("amq.rabbitmq.reply-to.AAAA.BBBB");
  facts.stopping = true;
  EXPECT_EQ(decide(facts), Decision::kRequeue);
}

TEST(RequestPolicy, AcksARequestWithoutReplyTo) {
  RequestFacts facts;
  EXPECT_EQ(decide(facts), Decision::kAckWithoutReply);
}

TEST(RequestPolicy, AnswersTooLargeWithoutRunningTheHandler) {
  RequestFacts facts = plainRequest();
  facts.body_too_large = true;
  EXPECT_EQ(decide(facts), Decision::kReplyTooLarge);
}

TEST(RequestPolicy, AnswersAPassedOrMalformedDeadlineWithoutRunningTheHandler) {
  RequestFacts late = plainRequest();
  late.deadline_passed = true;
  EXPECT_EQ(decide(late), Decision::kReplyDeadlineExceeded);
  RequestFacts malformed = plainRequest();
  malformed.deadline_malformed = true;
  EXPECT_EQ(decide(malformed), Decision::kReplyBadDeadline);
  // Nothing to answer to, or nothing to start: those win.
  late.has_reply_to = false;
  EXPECT_EQ(decide(late), Decision::kAckWithoutReply);
  malformed.stopping = true;
  EXPECT_EQ(decide(malformed), Decision::kRequeue);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

TEST(RequestPolicy, ReadsTheDeadlineHeaderAsMillisecondsSinceTheEpoch) {
  EXPECT_FALSE(findDeadline({}).present);
  const DeadlineHeader deadline = findDeadline(Headers{{"x-warren-deadline", "1764950400000"}});
  EXPECT_TRUE(deadline.present);
  EXPECT_FALSE(deadline.malformed);
  EXPECT_EQ(deadline.at_ms, 1764950400000);
  EXPECT_EQ(findDeadline(Headers{{"x-warren-deadline", "9223372036854775807"}}).at_ms,
            9223372036854775807);
  for (const char* bad :
       {"", "-1", "12.5", "1e3", " 12", "soon", "9223372036854775808", "99999999999999999999999"}) {
    const DeadlineHeader parsed = findDeadline(Headers{{"x-warren-deadline", bad}});
    EXPECT_TRUE(parsed.present && parsed.malformed) << "'" << bad << "'";
  }
}

TEST(RequestPolicy, CountsDeliveriesFromTheQuorumHeaderElseTheRedeliveredFlag) {
  EXPECT_EQ(deliveryCount({}, false), 0u);
  EXPECT_EQ(deliveryCount({}, true), 1u);
  EXPECT_EQ(deliveryCount(Headers{{"x-delivery-count", "3"}}, true), 3u);
  EXPECT_EQ(deliveryCount(Headers{{"x-delivery-count", "junk"}}, true), 1u);
}

TEST(RequestPolicy, RefusesAnUndeliverableReplyToAckingOrDeadLettering) {
  RequestFacts facts = plainRequest("amq.rabbitmq.reply-to.AAAA.BBBB");
  EXPECT_EQ(decide(facts), Decision::kRefuseAck);
  facts.dead_letter = true;
  EXPECT_EQ(decide(facts), Decision::kRefuseDeadLetter);
  facts.body_too_large = true;  // no reply of any kind can go there
  EXPECT_EQ(decide(facts), Decision::kRefuseDeadLetter);
}

TEST(RequestPolicy, RefusesARedeliveryWhoseReplyTheBrokerClosedOn) {
  RequestFacts facts = plainRequest("amq.rabbitmq.reply-to.g1gA.BBBB");
  facts.earlier_reply = RequestFacts::EarlierReply::kRefused;
  EXPECT_EQ(decide(facts), Decision::kRunHandler) << "not redelivered: a different request";
  facts.redelivered = true;
  EXPECT_EQ(decide(facts), Decision::kRefuseAck);
}

TEST(RequestPolicy, RequeuesARedeliveryWhoseEarlierReplyIsStillUndecided) {
  RequestFacts facts = plainRequest();
  facts.redelivered = true;
  facts.earlier_reply = RequestFacts::EarlierReply::kPending;
  EXPECT_EQ(decide(facts), Decision::kRequeue);
}

TEST(RequestPolicy, TellsDeliverableReplyToAddresses) {
  EXPECT_TRUE(replyToDeliverable("amq.gen-JzTY20BRgKO-HjmUJj0wLg"));
  EXPECT_TRUE(replyToDeliverable("replies.of.client-7"));
  // NEW_PID_EXT (OTP 23+) and PID_EXT (older) pids, as RabbitMQ encodes them.
  EXPECT_TRUE(
      replyToDeliverable("amq.rabbitmq.reply-to.g1hkAAxyYWJiaXRAbG9jYWw=.Zm8k3Jg/xYdi+B4H"));
  EXPECT_TRUE(replyToDeliverable(
      "amq.rabbitmq.reply-to.g2dkABNyYWJiaXRAbG9jYWxob3N0AAAS8QAAAAAB.Zm8k3Jg/xYdiEB4H7rc1EQ=="));

  EXPECT_FALSE(replyToDeliverable(""));
  EXPECT_FALSE(replyToDeliverable(std::string(256, 'q')));
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to"));
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to."));
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to.AAAA.BBBB"));   // not a term
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to.g1hk.BB.CC"));  // three parts
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to.g1hk"));        // no key
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to.g1h*.BBBB"));   // not base64
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to.g1hkA.BBBB"));  // bad length
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-to.g2hk.BBBB"));   // a tuple, not a pid
  EXPECT_FALSE(replyToDeliverable("amq.rabbitmq.reply-tox.g1hk.BBBB"));
}

TEST(RequestPolicy, AReplyTheBrokerCannotTakeBecomesAnInternalError) {
  HandlerReply reply;
  reply.body = std::string(100, 'b');
  reply.content_type = std::string(255, 't');
  EXPECT_FALSE(unpublishableReply(reply, 100));

  reply.content_type = std::string(256, 't');
  auto error = unpublishableReply(reply, 100);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, WARREN_ERROR_INTERNAL);
  EXPECT_EQ(error->message,
            "the handler's reply content_type of 256 bytes exceeds AMQP's limit of 255 bytes");

  reply.content_type = "text/plain";
  error = unpublishableReply(reply, 99);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->message, "the handler's reply of 100 bytes exceeds max_reply_bytes (99)");

  HandlerReply failed;
  failed.content_type = std::string(300, 't');  // unused by an error reply
  failed.error = HandlerError{WARREN_ERROR_INVALID_ARGUMENT, "bad"};
  EXPECT_FALSE(unpublishableReply(failed, 1));
}

TEST(RequestPolicy, IdentityDependsOnReplyToAndCorrelationId) {
  EXPECT_EQ(replyIdentity("q", "1"), replyIdentity("q", "1"));
  EXPECT_NE(replyIdentity("q", "1"), replyIdentity("q", "2"));
  EXPECT_NE(replyIdentity("q1", ""), replyIdentity("q", "1"));
}

TEST(RequestPolicy, RepliesArePendingUntilSettledOrRefused) {
  using EarlierReply = RequestFacts::EarlierReply;
  RefusedReplies replies;
  replies.published(/*owner=*/0, 1);
  replies.published(/*owner=*/1, 2);
  EXPECT_EQ(replies.check(1), EarlierReply::kPending);
  replies.settled(0);
  EXPECT_EQ(replies.check(1), EarlierReply::kNone);
  EXPECT_EQ(replies.check(2), EarlierReply::kPending);
  replies.refused(1);
  EXPECT_EQ(replies.check(2), EarlierReply::kRefused);
  EXPECT_EQ(replies.check(2), EarlierReply::kNone) << "reported once";
}

TEST(RequestPolicy, AConfirmedReplySettlesOnlyItself) {
  using EarlierReply = RequestFacts::EarlierReply;
  RefusedReplies replies;
  replies.published(/*owner=*/0, 1);
  replies.published(/*owner=*/0, 2);
  replies.published(/*owner=*/1, 3);
  replies.settled(0, 1);
  replies.settled(0, 3);  // another owner's: untouched
  EXPECT_EQ(replies.check(1), EarlierReply::kNone);
  EXPECT_EQ(replies.check(2), EarlierReply::kPending);
  EXPECT_EQ(replies.check(3), EarlierReply::kPending);
  replies.refused(0);  // only the unconfirmed one is refused
  EXPECT_EQ(replies.check(2), EarlierReply::kRefused);
  EXPECT_EQ(replies.check(1), EarlierReply::kNone);
}

TEST(RequestPolicy, RefusedRepliesAreBounded) {
  using EarlierReply = RequestFacts::EarlierReply;
  RefusedReplies replies(/*capacity=*/2);
  for (std::uint64_t identity = 1; identity <= 3; ++identity) {
    replies.published(0, identity);
    replies.refused(0);
  }
  EXPECT_EQ(replies.check(1), EarlierReply::kNone) << "the oldest is forgotten";
  EXPECT_EQ(replies.check(2), EarlierReply::kRefused);
  EXPECT_EQ(replies.check(3), EarlierReply::kRefused);
}

TEST(HandlerReplyBuffers, AreFreedAfterALargeReplyAndKeptOtherwise) {
  HandlerReply reply;
  reply.body.assign(1000, 'b');
  const std::size_t small = reply.body.capacity();
  releaseLargeBuffers(reply, 4096);
  EXPECT_EQ(reply.body.capacity(), small) << "an ordinary reply keeps its buffer";
  reply.body.assign(1 << 20, 'b');
  releaseLargeBuffers(reply, 4096);
  EXPECT_LE(reply.body.capacity(), 4096u);
  EXPECT_TRUE(reply.body.empty());
}

}  // namespace
}  // namespace warren
