// SPDX-License-Identifier: Apache-2.0
// Tests of the frame-by-frame message assembler (amqp/delivery_assembler.cpp).
// Frames are built by hand, as rabbitmq-c's amqp_simple_wait_frame() hands them over.
#include <gtest/gtest.h>

#include <amqp.h>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "delivery_assembler.h"

namespace warren {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

amqp_bytes_t bytesOf(std::string_view text) {
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}

amqp_basic_deliver_t deliver(std::uint64_t delivery_tag, bool redelivered = false) {
  amqp_basic_deliver_t method{};
  method.consumer_tag = bytesOf("ctag-1");
  method.delivery_tag = delivery_tag;
  method.redelivered = redelivered ? 1 : 0;
  method.exchange = bytesOf("");
  method.routing_key = bytesOf("rpc.sum");
  return method;
}

// Request properties with correlation_id, reply_to and content_type set; the
// strings must outlive the struct's use.
amqp_basic_properties_t requestProperties(std::string_view correlation_id,
                                          std::string_view reply_to,
                                          std::string_view content_type) {
  amqp_basic_properties_t properties{};
  properties._flags =
      AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  properties.correlation_id = bytesOf(correlation_id);
  properties.reply_to = bytesOf(reply_to);
  properties.content_type = bytesOf(content_type);
  return properties;
}

amqp_frame_t headerFrame(amqp_channel_t channel, std::uint64_t body_size,
                         const amqp_basic_properties_t& properties) {
  amqp_frame_t frame{};
  frame.frame_type = AMQP_FRAME_HEADER;
  frame.channel = channel;
  frame.payload.properties.class_id = AMQP_BASIC_CLASS;
  frame.payload.properties.body_size = body_size;
  frame.payload.properties.decoded = const_cast<amqp_basic_properties_t*>(&properties);
  return frame;
}

amqp_frame_t bodyFrame(amqp_channel_t channel, std::string_view fragment) {
  amqp_frame_t frame{};
  frame.frame_type = AMQP_FRAME_BODY;
  frame.channel = channel;
  frame.payload.body_fragment = bytesOf(fragment);
  return frame;
}

amqp_field_value_t fieldOf(std::uint8_t kind) {
  amqp_field_value_t value{};
  value.kind = kind;
  return value;
}

amqp_table_entry_t entryOf(std::string_view key, amqp_field_value_t value) {
  amqp_table_entry_t entry{};
  entry.key = bytesOf(key);
  entry.value = value;
  return entry;
}

TEST(DeliveryAssembler, AssemblesHeaderAndThreeBodyFramesIntoOneDelivery) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties =
      requestProperties("corr-1", "amq.rabbitmq.reply-to.g1h2", "application/json");

  assembler.beginDelivery(3, deliver(77, true));
  EXPECT_FALSE(assembler.feed(headerFrame(3, 13, properties)));
  EXPECT_FALSE(assembler.feed(bodyFrame(3, "{\"a\":")));
  EXPECT_FALSE(assembler.feed(bodyFrame(3, "1,\"b\"")));
  const std::optional<InboundMessage> message = assembler.feed(bodyFrame(3, ":2}"));

  ASSERT_TRUE(message);
  EXPECT_EQ(message->kind, InboundMessage::Kind::kDelivery);
  EXPECT_EQ(message->channel, 3);
  EXPECT_EQ(message->delivery_tag, 77u);
  EXPECT_TRUE(message->redelivered);
  EXPECT_EQ(message->correlation_id, "corr-1");
  EXPECT_EQ(message->reply_to, "amq.rabbitmq.reply-to.g1h2");
  EXPECT_TRUE(message->has_reply_to);
  EXPECT_EQ(message->content_type, "application/json");
  EXPECT_TRUE(message->headers.empty());
  EXPECT_EQ(message->body_size, 13u);
  EXPECT_FALSE(message->body_too_large);
  EXPECT_EQ(message->body, "{\"a\":1,\"b\":2}");
}

TEST(DeliveryAssembler, NotRedeliveredWhenTheFlagIsClear) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  assembler.beginDelivery(1, deliver(5, false));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 1, properties)));
  const std::optional<InboundMessage> message = assembler.feed(bodyFrame(1, "x"));
  ASSERT_TRUE(message);
  EXPECT_FALSE(message->redelivered);
  EXPECT_EQ(message->delivery_tag, 5u);
}

TEST(DeliveryAssembler, CompletesAnEmptyBodyOnTheHeaderFrame) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("corr-e", "reply-q", "text/plain");

  assembler.beginDelivery(1, deliver(1));
  const std::optional<InboundMessage> message = assembler.feed(headerFrame(1, 0, properties));

  ASSERT_TRUE(message);
  EXPECT_EQ(message->body_size, 0u);
  EXPECT_TRUE(message->body.empty());
  EXPECT_FALSE(message->body_too_large);
  EXPECT_EQ(message->correlation_id, "corr-e");
}

TEST(DeliveryAssembler, AcceptsABodyExactlyAtTheLimit) {
  DeliveryAssembler assembler(4);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 4, properties)));
  const std::optional<InboundMessage> message = assembler.feed(bodyFrame(1, "abcd"));
  ASSERT_TRUE(message);
  EXPECT_FALSE(message->body_too_large);
  EXPECT_EQ(message->body, "abcd");
}

TEST(DeliveryAssembler, DropsABodyOverTheLimitButKeepsItsSize) {
  DeliveryAssembler assembler(4);
  const amqp_basic_properties_t properties = requestProperties("corr-big", "reply-q", "t");

  assembler.beginDelivery(2, deliver(9));
  EXPECT_FALSE(assembler.feed(headerFrame(2, 10, properties)));
  EXPECT_FALSE(assembler.feed(bodyFrame(2, "abcde")));
  EXPECT_FALSE(assembler.feed(bodyFrame(2, "fghi")));
  const std::optional<InboundMessage> message = assembler.feed(bodyFrame(2, "j"));

  ASSERT_TRUE(message);
  EXPECT_TRUE(message->body_too_large);
  EXPECT_TRUE(message->body.empty());
  EXPECT_EQ(message->body_size, 10u);
  EXPECT_EQ(message->correlation_id, "corr-big");
  EXPECT_EQ(message->reply_to, "reply-q");
  EXPECT_EQ(message->delivery_tag, 9u);
}

TEST(DeliveryAssembler, MissingReplyToMeansNoReplyTo) {
  DeliveryAssembler assembler(1024);
  amqp_basic_properties_t properties = requestProperties("corr", "ignored", "t");
  properties._flags &= ~AMQP_BASIC_REPLY_TO_FLAG;

  assembler.beginDelivery(1, deliver(1));
  const std::optional<InboundMessage> message = assembler.feed(headerFrame(1, 0, properties));

  ASSERT_TRUE(message);
  EXPECT_FALSE(message->has_reply_to);
  EXPECT_TRUE(message->reply_to.empty());
}

TEST(DeliveryAssembler, EmptyReplyToStringMeansNoReplyTo) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("corr", "", "t");

  assembler.beginDelivery(1, deliver(1));
  const std::optional<InboundMessage> message = assembler.feed(headerFrame(1, 0, properties));

  ASSERT_TRUE(message);
  EXPECT_FALSE(message->has_reply_to);
}

TEST(DeliveryAssembler, ReadsThePersistenceOfTheRequest) {
  for (const std::uint8_t mode : {1, 2}) {
    DeliveryAssembler assembler(1024);
    amqp_basic_properties_t properties = requestProperties("corr", "reply-q", "t");
    properties._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    properties.delivery_mode = mode;

    assembler.beginDelivery(1, deliver(1));
    const std::optional<InboundMessage> message = assembler.feed(headerFrame(1, 0, properties));

    ASSERT_TRUE(message);
    EXPECT_EQ(message->persistent, mode == 2) << "delivery_mode " << int{mode};
  }
}

TEST(DeliveryAssembler, LeavesAbsentPropertiesEmpty) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties{};  // no flags at all

  assembler.beginDelivery(1, deliver(1));
  const std::optional<InboundMessage> message = assembler.feed(headerFrame(1, 0, properties));

  ASSERT_TRUE(message);
  EXPECT_TRUE(message->correlation_id.empty());
  EXPECT_TRUE(message->content_type.empty());
  EXPECT_FALSE(message->has_reply_to);
  EXPECT_FALSE(message->persistent);
  EXPECT_TRUE(message->headers.empty());
}

TEST(DeliveryAssembler, AssemblesInterleavedMessagesOnTwoChannelsIndependently) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t first = requestProperties("corr-a", "reply-a", "text/a");
  const amqp_basic_properties_t second = requestProperties("corr-b", "reply-b", "text/b");

  assembler.beginDelivery(1, deliver(10));
  assembler.beginDelivery(2, deliver(20));
  EXPECT_FALSE(assembler.feed(headerFrame(2, 4, second)));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 6, first)));
  EXPECT_FALSE(assembler.feed(bodyFrame(2, "BB")));
  EXPECT_FALSE(assembler.feed(bodyFrame(1, "aaa")));
  const std::optional<InboundMessage> a = assembler.feed(bodyFrame(1, "AAA"));
  const std::optional<InboundMessage> b = assembler.feed(bodyFrame(2, "bb"));

  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->channel, 1);
  EXPECT_EQ(a->delivery_tag, 10u);
  EXPECT_EQ(a->correlation_id, "corr-a");
  EXPECT_EQ(a->reply_to, "reply-a");
  EXPECT_EQ(a->content_type, "text/a");
  EXPECT_EQ(a->body, "aaaAAA");
  EXPECT_EQ(b->channel, 2);
  EXPECT_EQ(b->delivery_tag, 20u);
  EXPECT_EQ(b->correlation_id, "corr-b");
  EXPECT_EQ(b->reply_to, "reply-b");
  EXPECT_EQ(b->content_type, "text/b");
  EXPECT_EQ(b->body, "BBbb");
}

TEST(DeliveryAssembler, AssemblesABasicReturnWithCodeTextAndRoutingKey) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("corr-r", "", "text/plain");
  amqp_basic_return_t returned{};
  returned.reply_code = 312;
  returned.reply_text = bytesOf("NO_ROUTE");
  returned.exchange = bytesOf("");
  returned.routing_key = bytesOf("amq.rabbitmq.reply-to.gone");

  assembler.beginReturn(1, returned);
  EXPECT_FALSE(assembler.feed(headerFrame(1, 5, properties)));
  const std::optional<InboundMessage> message = assembler.feed(bodyFrame(1, "hello"));

  ASSERT_TRUE(message);
  EXPECT_EQ(message->kind, InboundMessage::Kind::kReturn);
  EXPECT_EQ(message->channel, 1);
  EXPECT_EQ(message->reply_code, 312);
  EXPECT_EQ(message->reply_text, "NO_ROUTE");
  EXPECT_EQ(message->routing_key, "amq.rabbitmq.reply-to.gone");
  EXPECT_EQ(message->correlation_id, "corr-r");
  EXPECT_EQ(message->body, "hello");
}

TEST(DeliveryAssembler, CopiesTextHeadersOfTheRequest) {
  DeliveryAssembler assembler(1024);
  amqp_field_value_t trace = fieldOf(AMQP_FIELD_KIND_UTF8);
  trace.value.bytes = bytesOf("abc123");
  amqp_field_value_t retries = fieldOf(AMQP_FIELD_KIND_I32);
  retries.value.i32 = 2;
  std::array<amqp_table_entry_t, 2> entries{entryOf("x-trace", trace),
                                            entryOf("x-retries", retries)};
  amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  properties._flags |= AMQP_BASIC_HEADERS_FLAG;
  properties.headers.num_entries = static_cast<int>(entries.size());
  properties.headers.entries = entries.data();

  assembler.beginDelivery(1, deliver(1));
  const std::optional<InboundMessage> message = assembler.feed(headerFrame(1, 0, properties));

  ASSERT_TRUE(message);
  EXPECT_EQ(message->headers, (Headers{{"x-trace", "abc123"}, {"x-retries", "2"}}));
}

TEST(DeliveryAssembler, ThrowsOnABodyFrameWithoutAMethod) {
  DeliveryAssembler assembler(1024);
  EXPECT_THROW(assembler.feed(bodyFrame(1, "stray")), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnAHeaderFrameWithoutAMethod) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  EXPECT_THROW(assembler.feed(headerFrame(1, 3, properties)), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnAMethodOnOneChannelAndContentOnAnother) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_THROW(assembler.feed(headerFrame(2, 3, properties)), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnABodyFrameBeforeTheHeader) {
  DeliveryAssembler assembler(1024);
  assembler.beginDelivery(1, deliver(1));
  EXPECT_THROW(assembler.feed(bodyFrame(1, "early")), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnASecondHeader) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 3, properties)));
  EXPECT_THROW(assembler.feed(headerFrame(1, 3, properties)), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnABodyLongerThanDeclared) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 3, properties)));
  EXPECT_THROW(assembler.feed(bodyFrame(1, "abcd")), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnABodyLongerThanDeclaredEvenWhenTooLarge) {
  DeliveryAssembler assembler(2);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 3, properties)));
  EXPECT_FALSE(assembler.feed(bodyFrame(1, "ab")));
  EXPECT_THROW(assembler.feed(bodyFrame(1, "cd")), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnContentAfterTheMessageCompleted) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("c", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 2, properties)));
  EXPECT_TRUE(assembler.feed(bodyFrame(1, "ok")));
  EXPECT_THROW(assembler.feed(bodyFrame(1, "more")), std::runtime_error);
}

TEST(DeliveryAssembler, ThrowsOnANonContentFrameInsideAMessage) {
  DeliveryAssembler assembler(1024);
  assembler.beginDelivery(1, deliver(1));
  amqp_frame_t frame{};
  frame.frame_type = AMQP_FRAME_METHOD;
  frame.channel = 1;
  EXPECT_THROW(assembler.feed(frame), std::runtime_error);
}

TEST(DeliveryAssembler, ResetForgetsMessagesInProgress) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t properties = requestProperties("old", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 10, properties)));
  EXPECT_FALSE(assembler.feed(bodyFrame(1, "part")));

  assembler.reset();

  EXPECT_THROW(assembler.feed(bodyFrame(1, "rest!!")), std::runtime_error);
}

TEST(DeliveryAssembler, StartsAFreshMessageAfterReset) {
  DeliveryAssembler assembler(1024);
  const amqp_basic_properties_t old_properties = requestProperties("old", "r", "t");
  assembler.beginDelivery(1, deliver(1));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 10, old_properties)));
  EXPECT_FALSE(assembler.feed(bodyFrame(1, "part")));

  assembler.reset();

  const amqp_basic_properties_t properties = requestProperties("new", "r", "t");
  assembler.beginDelivery(1, deliver(2));
  EXPECT_FALSE(assembler.feed(headerFrame(1, 3, properties)));
  const std::optional<InboundMessage> message = assembler.feed(bodyFrame(1, "new"));
  ASSERT_TRUE(message);
  EXPECT_EQ(message->delivery_tag, 2u);
  EXPECT_EQ(message->correlation_id, "new");
  EXPECT_EQ(message->body, "new");
}

TEST(DeliveryAssembler, CopiesPropertiesOutOfTheFrame) {
  DeliveryAssembler assembler(1024);
  assembler.beginDelivery(1, deliver(1));
  {
    // Stands in for rabbitmq-c's frame pool, which is recycled after each frame.
    std::string correlation_id = "corr-scope";
    std::string reply_to = "reply-scope";
    std::string content_type = "application/scope";
    std::string header_value = "header-scope";
    amqp_field_value_t value = fieldOf(AMQP_FIELD_KIND_UTF8);
    value.value.bytes = bytesOf(header_value);
    std::array<amqp_table_entry_t, 1> entries{entryOf("x-scope", value)};
    amqp_basic_properties_t properties = requestProperties(correlation_id, reply_to, content_type);
    properties._flags |= AMQP_BASIC_HEADERS_FLAG;
    properties.headers.num_entries = 1;
    properties.headers.entries = entries.data();

    EXPECT_FALSE(assembler.feed(headerFrame(1, 4, properties)));

    correlation_id.assign(correlation_id.size(), 'X');
    reply_to.assign(reply_to.size(), 'X');
    content_type.assign(content_type.size(), 'X');
    header_value.assign(header_value.size(), 'X');
    properties = amqp_basic_properties_t{};
  }
  const std::optional<InboundMessage> message = assembler.feed(bodyFrame(1, "body"));

  ASSERT_TRUE(message);
  EXPECT_EQ(message->correlation_id, "corr-scope");
  EXPECT_EQ(message->reply_to, "reply-scope");
  EXPECT_EQ(message->content_type, "application/scope");
  EXPECT_EQ(message->headers, (Headers{{"x-scope", "header-scope"}}));
  EXPECT_EQ(message->body, "body");
}

TEST(DeliveryAssembler, CopiesTheReturnTextOutOfTheMethod) {
  DeliveryAssembler assembler(1024);
  {
    std::string reply_text = "NO_ROUTE";
    std::string routing_key = "some.queue";
    amqp_basic_return_t returned{};
    returned.reply_code = 312;
    returned.reply_text = bytesOf(reply_text);
    returned.routing_key = bytesOf(routing_key);
    assembler.beginReturn(1, returned);
    reply_text.assign(reply_text.size(), 'X');
    routing_key.assign(routing_key.size(), 'X');
  }
  const amqp_basic_properties_t properties{};
  const std::optional<InboundMessage> message = assembler.feed(headerFrame(1, 0, properties));

  ASSERT_TRUE(message);
  EXPECT_EQ(message->reply_text, "NO_ROUTE");
  EXPECT_EQ(message->routing_key, "some.queue");
}

TEST(TextHeaders, RendersStringsBooleansIntegersAndTimestampsAsText) {
  amqp_field_value_t utf8 = fieldOf(AMQP_FIELD_KIND_UTF8);
  utf8.value.bytes = bytesOf("caf\xc3\xa9");
  amqp_field_value_t bytes = fieldOf(AMQP_FIELD_KIND_BYTES);
  bytes.value.bytes = bytesOf("raw");
  amqp_field_value_t yes = fieldOf(AMQP_FIELD_KIND_BOOLEAN);
  yes.value.boolean = 1;
  amqp_field_value_t no = fieldOf(AMQP_FIELD_KIND_BOOLEAN);
  no.value.boolean = 0;
  amqp_field_value_t i8 = fieldOf(AMQP_FIELD_KIND_I8);
  i8.value.i8 = -8;
  amqp_field_value_t u8 = fieldOf(AMQP_FIELD_KIND_U8);
  u8.value.u8 = 200;
  amqp_field_value_t i16 = fieldOf(AMQP_FIELD_KIND_I16);
  i16.value.i16 = -1234;
  amqp_field_value_t u16 = fieldOf(AMQP_FIELD_KIND_U16);
  u16.value.u16 = 60000;
  amqp_field_value_t i32 = fieldOf(AMQP_FIELD_KIND_I32);
  i32.value.i32 = -100000;
  amqp_field_value_t u32 = fieldOf(AMQP_FIELD_KIND_U32);
  u32.value.u32 = 4000000000u;
  amqp_field_value_t i64 = fieldOf(AMQP_FIELD_KIND_I64);
  i64.value.i64 = -9000000000;
  amqp_field_value_t u64 = fieldOf(AMQP_FIELD_KIND_U64);
  u64.value.u64 = 18000000000000000000u;
  amqp_field_value_t timestamp = fieldOf(AMQP_FIELD_KIND_TIMESTAMP);
  timestamp.value.u64 = 1700000000;  // rabbitmq-c decodes timestamps into u64
  std::array<amqp_table_entry_t, 13> entries{
      entryOf("utf8", utf8),   entryOf("bytes", bytes), entryOf("yes", yes), entryOf("no", no),
      entryOf("i8", i8),       entryOf("u8", u8),       entryOf("i16", i16), entryOf("u16", u16),
      entryOf("i32", i32),     entryOf("u32", u32),     entryOf("i64", i64), entryOf("u64", u64),
      entryOf("ts", timestamp)};
  const amqp_table_t table{static_cast<int>(entries.size()), entries.data()};

  EXPECT_EQ(textHeaders(table), (Headers{{"utf8", "caf\xc3\xa9"},
                                         {"bytes", "raw"},
                                         {"yes", "true"},
                                         {"no", "false"},
                                         {"i8", "-8"},
                                         {"u8", "200"},
                                         {"i16", "-1234"},
                                         {"u16", "60000"},
                                         {"i32", "-100000"},
                                         {"u32", "4000000000"},
                                         {"i64", "-9000000000"},
                                         {"u64", "18000000000000000000"},
                                         {"ts", "1700000000"}}));
}

TEST(TextHeaders, SkipsNestedTablesArraysAndFloats) {
  amqp_table_t inner_table{};
  amqp_field_value_t nested = fieldOf(AMQP_FIELD_KIND_TABLE);
  nested.value.table = inner_table;
  amqp_field_value_t array = fieldOf(AMQP_FIELD_KIND_ARRAY);
  array.value.array = amqp_array_t{0, nullptr};
  amqp_field_value_t f32 = fieldOf(AMQP_FIELD_KIND_F32);
  f32.value.f32 = 1.5f;
  amqp_field_value_t f64 = fieldOf(AMQP_FIELD_KIND_F64);
  f64.value.f64 = 2.5;
  amqp_field_value_t kept_before = fieldOf(AMQP_FIELD_KIND_UTF8);
  kept_before.value.bytes = bytesOf("first");
  amqp_field_value_t kept_after = fieldOf(AMQP_FIELD_KIND_I32);
  kept_after.value.i32 = 7;
  std::array<amqp_table_entry_t, 6> entries{entryOf("before", kept_before),
                                            entryOf("nested", nested),
                                            entryOf("array", array),
                                            entryOf("f32", f32),
                                            entryOf("f64", f64),
                                            entryOf("after", kept_after)};
  const amqp_table_t table{static_cast<int>(entries.size()), entries.data()};

  EXPECT_EQ(textHeaders(table), (Headers{{"before", "first"}, {"after", "7"}}));
}

TEST(TextHeaders, ReturnsNothingForAnEmptyTable) {
  const amqp_table_t table{0, nullptr};
  EXPECT_TRUE(textHeaders(table).empty());
}

}  // namespace
}  // namespace warren
