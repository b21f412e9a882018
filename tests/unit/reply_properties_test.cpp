// SPDX-License-Identifier: Apache-2.0
// Tests of the AMQP properties of replies (daemon/engine/reply_properties.cpp).
#include <gtest/gtest.h>

#include <amqp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reply_properties.h"

namespace warren {
namespace {

std::string_view textOf(amqp_bytes_t bytes) {
  return std::string_view(static_cast<const char*>(bytes.bytes), bytes.len);
}

HandlerReply successReply(std::string body, std::string content_type) {
  HandlerReply reply;
  reply.body = std::move(body);
  reply.content_type = std::move(content_type);
  return reply;
}

HandlerReply errorReply(warren_error_code code, std::string message) {
  HandlerReply reply;
  reply.body = "ignored";
  reply.content_type = "application/json";  // an error reply is always text/plain
  reply.error = HandlerError{code, std::move(message)};
  return reply;
}

// Owns a rabbitmq-c memory pool for the length of a test.
class Pool {
 public:
  Pool() { init_amqp_pool(&pool_, 4096); }
  ~Pool() { empty_amqp_pool(&pool_); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  amqp_pool_t* get() { return &pool_; }

 private:
  amqp_pool_t pool_{};
};

TEST(ErrorCodeName, NamesEveryErrorCodeAsDocumented) {
  EXPECT_EQ(errorCodeName(WARREN_ERROR_INVALID_ARGUMENT), "invalid_argument");
  EXPECT_EQ(errorCodeName(WARREN_ERROR_OUT_OF_RANGE), "out_of_range");
  EXPECT_EQ(errorCodeName(WARREN_ERROR_TOO_LARGE), "too_large");
  EXPECT_EQ(errorCodeName(WARREN_ERROR_INTERNAL), "internal");
  EXPECT_EQ(errorCodeName(WARREN_ERROR_UNAVAILABLE), "unavailable");
  EXPECT_EQ(errorCodeName(WARREN_ERROR_DEADLINE_EXCEEDED), "deadline_exceeded");
}

TEST(ErrorCodeName, MapsAnUnknownCodeToInternal) {
  // 0 lies within the enum's value range (so UBSan accepts it) but names no code.
  EXPECT_EQ(errorCodeName(static_cast<warren_error_code>(0)), "internal");
}

TEST(ErrorCodeName, NamesTheHostsOwnCodes) {
  EXPECT_EQ(errorCodeName(WARREN_ERROR_DEADLINE_EXCEEDED), "deadline_exceeded");
  EXPECT_EQ(errorCodeName(WARREN_ERROR_HANDLER_CRASHED), "handler_crashed");
}

TEST(ErrorReplyBody, IsErrorThenCodeThenMessage) {
  EXPECT_EQ(errorReplyBody(HandlerError{WARREN_ERROR_TOO_LARGE, "body is 2000 bytes"}),
            "error: too_large: body is 2000 bytes");
  EXPECT_EQ(errorReplyBody(HandlerError{WARREN_ERROR_INVALID_ARGUMENT, "expected a number"}),
            "error: invalid_argument: expected a number");
}

TEST(ErrorReplyBody, KeepsAnEmptyMessage) {
  EXPECT_EQ(errorReplyBody(HandlerError{WARREN_ERROR_INTERNAL, ""}), "error: internal: ");
}

TEST(ReplyProperties, SuccessCarriesCorrelationIdTransientModeAndContentType) {
  const HandlerReply reply = successReply("{\"sum\":3}", "application/json");
  const ReplyProperties properties("req-42", reply, ReplyProperties::Persistence::kTransient);
  const amqp_basic_properties_t* p = properties.get();

  EXPECT_EQ(p->_flags, AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                           AMQP_BASIC_CONTENT_TYPE_FLAG);
  EXPECT_EQ(textOf(p->correlation_id), "req-42");
  EXPECT_EQ(p->delivery_mode, 1);
  EXPECT_EQ(textOf(p->content_type), "application/json");
}

TEST(ReplyProperties, APersistentRequestGetsAPersistentReply) {
  const HandlerReply success = successReply("3", "text/plain");
  const ReplyProperties persistent("req-p", success, ReplyProperties::Persistence::kPersistent);
  EXPECT_TRUE(persistent.get()->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG);
  EXPECT_EQ(persistent.get()->delivery_mode, 2);

  const HandlerReply error = errorReply(WARREN_ERROR_INTERNAL, "boom");
  const ReplyProperties persistent_error("req-q", error, ReplyProperties::Persistence::kPersistent);
  EXPECT_EQ(persistent_error.get()->delivery_mode, 2);
  EXPECT_TRUE(persistent_error.get()->_flags & AMQP_BASIC_HEADERS_FLAG);
}

TEST(ReplyProperties, SuccessWithoutContentTypeOmitsTheContentTypeFlag) {
  const HandlerReply reply = successReply("3", "");
  const ReplyProperties properties("req-1", reply, ReplyProperties::Persistence::kTransient);
  const amqp_basic_properties_t* p = properties.get();

  EXPECT_EQ(p->_flags, AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG);
  EXPECT_EQ(textOf(p->correlation_id), "req-1");
  EXPECT_EQ(p->delivery_mode, 1);
  EXPECT_FALSE(p->_flags & AMQP_BASIC_HEADERS_FLAG);
}

TEST(ReplyProperties, EmptyCorrelationIdLeavesTheFlagOut) {
  const HandlerReply reply = successReply("3", "text/plain");
  const ReplyProperties properties("", reply, ReplyProperties::Persistence::kTransient);
  const amqp_basic_properties_t* p = properties.get();

  EXPECT_FALSE(p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG);
  EXPECT_EQ(p->_flags, AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG);
  EXPECT_EQ(p->delivery_mode, 1);
}

TEST(ReplyProperties, ErrorIsTextPlainWithExactlyTheTwoErrorHeaders) {
  const HandlerReply reply = errorReply(WARREN_ERROR_OUT_OF_RANGE, "n must be below 100");
  const ReplyProperties properties("req-7", reply, ReplyProperties::Persistence::kTransient);
  const amqp_basic_properties_t* p = properties.get();

  EXPECT_EQ(p->_flags, AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                           AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG);
  EXPECT_EQ(textOf(p->correlation_id), "req-7");
  EXPECT_EQ(p->delivery_mode, 1);
  EXPECT_EQ(textOf(p->content_type), "text/plain");

  ASSERT_EQ(p->headers.num_entries, 2);
  const amqp_table_entry_t& code = p->headers.entries[0];
  const amqp_table_entry_t& message = p->headers.entries[1];
  EXPECT_EQ(textOf(code.key), "x-warren-error-code");
  EXPECT_EQ(code.value.kind, AMQP_FIELD_KIND_UTF8);
  EXPECT_EQ(textOf(code.value.value.bytes), "out_of_range");
  EXPECT_EQ(textOf(message.key), "x-warren-error-message");
  EXPECT_EQ(message.value.kind, AMQP_FIELD_KIND_UTF8);
  EXPECT_EQ(textOf(message.value.value.bytes), "n must be below 100");
}

TEST(ReplyProperties, ErrorWithEmptyCorrelationIdStillCarriesTheHeaders) {
  const HandlerReply reply = errorReply(WARREN_ERROR_INTERNAL, "boom");
  const ReplyProperties properties("", reply, ReplyProperties::Persistence::kTransient);
  const amqp_basic_properties_t* p = properties.get();

  EXPECT_FALSE(p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG);
  EXPECT_TRUE(p->_flags & AMQP_BASIC_HEADERS_FLAG);
  ASSERT_EQ(p->headers.num_entries, 2);
  EXPECT_EQ(textOf(p->headers.entries[0].value.value.bytes), "internal");
  EXPECT_EQ(textOf(p->headers.entries[1].value.value.bytes), "boom");
}

TEST(ReplyProperties, ErrorHeadersSurviveAnAmqpEncodeDecodeRoundTrip) {
  const std::string text = "caf\xc3\xa9 is not a number";  // UTF-8 on the wire
  const HandlerReply reply = errorReply(WARREN_ERROR_INVALID_ARGUMENT, text);
  const ReplyProperties properties("req-9", reply, ReplyProperties::Persistence::kTransient);

  std::vector<char> buffer(4096);
  const amqp_bytes_t out{buffer.size(), buffer.data()};
  std::size_t written = 0;
  ASSERT_EQ(amqp_encode_table(out, const_cast<amqp_table_t*>(&properties.get()->headers), &written),
            AMQP_STATUS_OK);
  ASSERT_GT(written, 4u);  // more than the empty table's length prefix

  Pool pool;
  amqp_table_t decoded{};
  std::size_t read = 0;
  ASSERT_EQ(amqp_decode_table(amqp_bytes_t{written, buffer.data()}, pool.get(), &decoded, &read),
            AMQP_STATUS_OK);
  EXPECT_EQ(read, written);

  ASSERT_EQ(decoded.num_entries, 2);
  EXPECT_EQ(textOf(decoded.entries[0].key), "x-warren-error-code");
  EXPECT_EQ(decoded.entries[0].value.kind, AMQP_FIELD_KIND_UTF8);
  EXPECT_EQ(textOf(decoded.entries[0].value.value.bytes), "invalid_argument");
  EXPECT_EQ(textOf(decoded.entries[1].key), "x-warren-error-message");
  EXPECT_EQ(decoded.entries[1].value.kind, AMQP_FIELD_KIND_UTF8);
  EXPECT_EQ(textOf(decoded.entries[1].value.value.bytes), text);
}

}  // namespace
}  // namespace warren
