// SPDX-License-Identifier: Apache-2.0
// Tests of escapeForLog (daemon/engine/log_escape.cpp).
#include <gtest/gtest.h>

#include <string>

#include "log_escape.h"

namespace warren {
namespace {

TEST(EscapeForLog, KeepsPlainText) {
  EXPECT_EQ(escapeForLog("amq.gen-abc 42"), "amq.gen-abc 42");
  EXPECT_EQ(escapeForLog("grüße"), "grüße");
}

TEST(EscapeForLog, ANewlineCannotStartALineOfItsOwn) {
  const std::string forged = "x'\n[2026-01-01 00:00:00.000] [warrend] [info] all good";
  const std::string escaped = escapeForLog(forged);
  EXPECT_EQ(escaped.find('\n'), std::string::npos);
  EXPECT_EQ(escaped, "x'\\n[2026-01-01 00:00:00.000] [warrend] [info] all good");
}

TEST(EscapeForLog, EscapesControlBytesAndBackslash) {
  EXPECT_EQ(escapeForLog(std::string("a\r\tb\\c\x1b[31m\x7f\0", 13)),
            "a\\r\\tb\\\\c\\x1b[31m\\x7f\\x00");
}

TEST(EscapeForLog, CutsLongValues) {
  EXPECT_EQ(escapeForLog(std::string(10, 'a'), 4), "aaaa...");
  EXPECT_EQ(escapeForLog(std::string(4, 'a'), 4), "aaaa");
}

}  // namespace
}  // namespace warren
