// SPDX-License-Identifier: Apache-2.0
// The frames and their meaning (docs/exec-handlers.md), both directions.
#include "worker_frame.h"
#include "worker_protocol.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace warren {
namespace {

std::string prefix(std::uint32_t header, std::uint32_t body) {
  std::string out;
  for (const std::uint32_t value : {header, body}) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
  }
  return out;
}

TEST(WorkerFrame, EncodesLengthsBigEndianThenHeaderThenBody) {
  std::string out;
  encodeFrame({{"id", "1"}, {"status", "ok"}}, "7", out);
  EXPECT_EQ(out, prefix(17, 1) + "id: 1\nstatus: ok\n7");
}

TEST(WorkerFrame, LeavesOutFieldsThatCannotBeWritten) {
  std::string out;
  encodeFrame({{"ok", "a"}, {"bad name", "b"}, {"value", "two\nlines"}, {"", "c"}}, "", out);
  EXPECT_EQ(out, prefix(6, 0) + "ok: a\n");
}

TEST(WorkerFrame, ReassemblesFramesFedByteByByte) {
  std::string stream;
  encodeFrame({{"id", "1"}}, "first", stream);
  encodeFrame({{"id", "2"}, {"note", "a: b "}}, "", stream);
  FrameReader reader(1024);
  std::vector<WorkerFrame> frames;
  for (const char byte : stream) {
    reader.feed(std::string_view(&byte, 1));
    while (auto frame = reader.next()) frames.push_back(std::move(*frame));
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].field("id"), "1");
  EXPECT_EQ(frames[0].body, "first");
  EXPECT_EQ(frames[1].field("note"), "a: b ");  // everything after the first ": "
  EXPECT_EQ(frames[1].body, "");
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(WorkerFrame, TheFirstOfARepeatedFieldCounts) {
  FrameReader reader(16);
  reader.feed(prefix(10, 0) + "a: 1\na: 2\n");
  const auto frame = reader.next();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->field("a"), "1");
  EXPECT_FALSE(frame->field("b"));
}

TEST(WorkerFrame, RefusesWhatIsNoFrame) {
  const auto refused = [](const std::string& bytes, std::size_t max_body = 16) {
    FrameReader reader(max_body);
    reader.feed(bytes);
    try {
      reader.next();
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(refused("this is not a frame at all\n"), "");  // a huge header length
  EXPECT_NE(refused(prefix(0, 17)), "");                   // body over the limit
  EXPECT_NE(refused(prefix(4, 0) + "id 1"), "");           // no newline
  EXPECT_NE(refused(prefix(5, 0) + "id:1\n"), "");         // no ": "
  EXPECT_NE(refused(prefix(7, 0) + "i d: 1\n"), "");       // a space in the name
  EXPECT_NE(refused(prefix(7, 0) + "id: 1\r\n"), "");      // a carriage return
}

TEST(WorkerFrame, WaitsForTheWholeFrame) {
  FrameReader reader(16);
  reader.feed(prefix(6, 3) + "id: 1\nab");
  EXPECT_FALSE(reader.next());
  reader.feed("c");
  const auto frame = reader.next();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->body, "abc");
}

warren_str str(std::string_view text) { return {text.data(), text.size()}; }

TEST(WorkerProtocol, ARequestFrameCarriesWhatAHandlerSees) {
  const warren_header headers[] = {
      {str("x-tenant"), str("acme")}, {str("bad name"), str("dropped")}, {str("Retry"), str("2")}};
  warren_request request{};
  request.body = str("3,4");
  request.content_type = str("text/plain");
  request.headers = headers;
  request.header_count = 3;
  request.correlation_id = str("c-17");
  request.deadline_ms = 1767225605000;
  request.delivery_count = 2;
  std::string out;
  encodeRequestFrame(41, "sum", request, out);

  FrameReader reader(16);
  reader.feed(out);
  auto frame = reader.next();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->field("id"), "41");
  EXPECT_EQ(frame->field("queue"), "sum");
  EXPECT_EQ(frame->field("correlation-id"), "c-17");
  EXPECT_EQ(frame->field("content-type"), "text/plain");
  EXPECT_EQ(frame->field("deadline-ms"), "1767225605000");
  EXPECT_EQ(frame->field("delivery-count"), "2");
  EXPECT_EQ(frame->field("header.x-tenant"), "acme");
  EXPECT_EQ(frame->field("header.Retry"), "2");
  EXPECT_FALSE(frame->field("header.bad name"));
  EXPECT_EQ(frame->body, "3,4");

  // And back, as the plugin worker reads it.
  const DecodedRequest decoded(std::move(*frame));
  const warren_request& seen = decoded.request();
  EXPECT_EQ(decoded.id(), "41");
  EXPECT_EQ(std::string_view(seen.body.data, seen.body.size), "3,4");
  EXPECT_EQ(std::string_view(seen.correlation_id.data, seen.correlation_id.size), "c-17");
  EXPECT_EQ(seen.deadline_ms, 1767225605000);
  EXPECT_EQ(seen.delivery_count, 2u);
  EXPECT_EQ(seen.redelivered, 1);
  ASSERT_EQ(seen.header_count, 2u);
  EXPECT_EQ(std::string_view(seen.headers[1].key.data, seen.headers[1].key.size), "Retry");
}

TEST(WorkerProtocol, ARequestWithoutOptionalFieldsLeavesThemOut) {
  warren_request request{};
  request.deadline_ms = 5;
  std::string out;
  encodeRequestFrame(1, "q", request, out);
  EXPECT_EQ(out, prefix(48, 0) + "id: 1\nqueue: q\ndeadline-ms: 5\ndelivery-count: 0\n");
}

TEST(WorkerProtocol, RepliesRoundTripOkAndError) {
  HandlerReply ok;
  ok.body = "7";
  ok.content_type = "text/plain";
  std::string out;
  encodeReplyFrame("3", ok, out);
  FrameReader reader(16);
  reader.feed(out);
  HandlerReply read;
  EXPECT_EQ(decodeReplyFrame(*reader.next(), 3, read), std::nullopt);
  EXPECT_EQ(read.body, "7");
  EXPECT_EQ(read.content_type, "text/plain");
  EXPECT_FALSE(read.error);

  out.clear();
  HandlerReply refused;
  refused.error = HandlerError{WARREN_ERROR_OUT_OF_RANGE, "a\nb"};
  encodeReplyFrame("4", refused, out);
  reader.feed(out);
  EXPECT_EQ(decodeReplyFrame(*reader.next(), 4, read), std::nullopt);
  ASSERT_TRUE(read.error);
  EXPECT_EQ(read.error->code, WARREN_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(read.error->message, "a b");  // one line
}

TEST(WorkerProtocol, AReplyToAnotherRequestOrWithoutStatusIsAViolation) {
  const auto decode = [](const std::string& header) {
    FrameReader reader(16);
    reader.feed(prefix(static_cast<std::uint32_t>(header.size()), 0) + header);
    HandlerReply reply;
    return decodeReplyFrame(*reader.next(), 5, reply);
  };
  EXPECT_TRUE(decode("id: 6\nstatus: ok\n"));
  EXPECT_TRUE(decode("status: ok\n"));
  EXPECT_TRUE(decode("id: 5\n"));
  EXPECT_TRUE(decode("id: 5\nstatus: fine\n"));
  EXPECT_FALSE(decode("id: 5\nstatus: ok\nnew-field: ignored\n"));
}

TEST(WorkerProtocol, AnUnknownOrHostOnlyCodeIsInternalWithTheMessageKept) {
  for (const std::string code : {"teapot", "handler_crashed"}) {
    const std::string header = "id: 1\nstatus: error\nerror: " + code + "\nmessage: m\n";
    FrameReader reader(16);
    reader.feed(prefix(static_cast<std::uint32_t>(header.size()), 0) + header);
    HandlerReply reply;
    EXPECT_EQ(decodeReplyFrame(*reader.next(), 1, reply), std::nullopt);
    ASSERT_TRUE(reply.error);
    EXPECT_EQ(reply.error->code, WARREN_ERROR_INTERNAL) << code;
    EXPECT_EQ(reply.error->message, "error code '" + code + "': m");
  }
}

}  // namespace
}  // namespace warren
