// SPDX-License-Identifier: Apache-2.0
// logging.format: json (daemon/logging/json_log_sink.cpp): one JSON object
// per record, every byte a plugin or caller put in the message escaped.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <string>

#include "json_log_sink.h"

namespace warren {
namespace {

std::string json(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

TEST(JsonLog, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json("plain"), "\"plain\"");
  EXPECT_EQ(json("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
  EXPECT_EQ(json("a\nb\rc\td"), "\"a\\nb\\rc\\td\"");
  EXPECT_EQ(json(std::string("\x1b[31m\x7f\0", 7)), "\"\\u001b[31m\\u007f\\u0000\"");
}

TEST(JsonLog, KeepsUtf8AndReplacesWhatIsNot) {
  EXPECT_EQ(json("grüße 日本 🐇"), "\"grüße 日本 🐇\"");
  // A lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate: each invalid byte becomes U+FFFD, the rest is kept.
  EXPECT_EQ(json("a\x80z"), "\"a\\ufffdz\"");
  EXPECT_EQ(json("a\xe6\x97"), "\"a\\ufffd\\ufffd\"");
  EXPECT_EQ(json("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
  EXPECT_EQ(json("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
}

// Through a real logger: the line has the time in UTC, the level, the
// logger, the fields in order, then the message; one line per record.
TEST(JsonLog, ALoggerWritesOneObjectPerLineWithItsFields) {
  std::ostringstream stream;
  auto output = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream);
  output->set_pattern("%v");
  spdlog::logger logger(
      "sum", std::make_shared<JsonLogSink>(output, LogFields{{"queue", "sum"}, {"plugin", "sum"}}));
  logger.warn("worker: {}", "line one\nline \"two\"");
  logger.info("second");
  const std::string text = stream.str();
  std::istringstream lines(text);
  std::string first, second, none;
  ASSERT_TRUE(std::getline(lines, first));
  ASSERT_TRUE(std::getline(lines, second));
  EXPECT_FALSE(std::getline(lines, none)) << text;
  const std::string expected_tail =
      "\",\"level\":\"warning\",\"logger\":\"sum\",\"queue\":\"sum\",\"plugin\":\"sum\","
      "\"message\":\"worker: line one\\nline \\\"two\\\"\"}";
  ASSERT_GT(first.size(), expected_tail.size());
  EXPECT_EQ(first.substr(first.size() - expected_tail.size()), expected_tail) << first;
  // {"time":"2026-12-06T22:10:54.123Z"
  EXPECT_EQ(first.rfind("{\"time\":\"", 0), 0u) << first;
  EXPECT_EQ(first.size() - expected_tail.size(), std::string("{\"time\":\"").size() + 24) << first;
  EXPECT_EQ(first[9 + 4], '-');
  EXPECT_EQ(first[9 + 10], 'T');
  EXPECT_EQ(first[9 + 23], 'Z');
  EXPECT_NE(second.find("\"level\":\"info\""), std::string::npos) << second;
}

}  // namespace
}  // namespace warren
