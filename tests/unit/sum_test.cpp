// SPDX-License-Identifier: Apache-2.0
// Unit tests of the sum handler's logic (warren::sum::compute), no dlopen.
#include "sum_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

using warren::sum::compute;
using warren::sum::Outcome;

void expectSum(std::string_view body, const std::string& expected) {
  const Outcome outcome = compute(body);
  EXPECT_TRUE(outcome.ok) << "body '" << body << "': " << outcome.text;
  EXPECT_EQ(outcome.text, expected) << "body '" << body << "'";
}

void expectError(std::string_view body, warren_error_code code, const std::string& fragment) {
  const Outcome outcome = compute(body);
  EXPECT_FALSE(outcome.ok) << "body '" << body << "' gave " << outcome.text;
  EXPECT_EQ(outcome.code, code) << "body '" << body << "': " << outcome.text;
  EXPECT_NE(outcome.text.find(fragment), std::string::npos)
      << "body '" << body << "': message '" << outcome.text << "' lacks '" << fragment << "'";
}

TEST(SumCompute, AddsTwoIntegers) {
  expectSum("3,4", "7");
  expectSum("-5,2", "-3");
  expectSum("0,0", "0");
  expectSum("-3,3", "0");
  expectSum("1000000,2345678", "3345678");
}

TEST(SumCompute, AllowsSurroundingBlanksAndSigns) {
  expectSum(" 3 , +4 ", "7");
  expectSum("\t-1\t,\t+1\t", "0");
  expectSum("+5,-7", "-2");
  expectSum("007,-003", "4");
  expectSum("3,4\n", "7");  // like Python's int(), a trailing newline is whitespace
}

TEST(SumCompute, Int64Boundaries) {
  expectSum("9223372036854775807,0", "9223372036854775807");
  expectSum("-9223372036854775808,0", "-9223372036854775808");
  expectSum("-9223372036854775807,-1", "-9223372036854775808");
  expectSum("9223372036854775806,1", "9223372036854775807");
  expectSum("9223372036854775807,-9223372036854775808", "-1");
  expectSum("+9223372036854775807,0", "9223372036854775807");
}

TEST(SumCompute, EmptyBody) {
  const Outcome outcome = compute("");
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, WARREN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(outcome.text, "empty body: expected two integers 'a,b'");
  expectError("   ", WARREN_ERROR_INVALID_ARGUMENT, "empty body");
  expectError(" \t\r\n", WARREN_ERROR_INVALID_ARGUMENT, "empty body");
}

TEST(SumCompute, WrongFieldCount) {
  expectError("5", WARREN_ERROR_INVALID_ARGUMENT,
              "expected two comma-separated integers 'a,b', got 1 field");
  expectError("1 2", WARREN_ERROR_INVALID_ARGUMENT, "got 1 field");
  expectError("1,2,3", WARREN_ERROR_INVALID_ARGUMENT, "got 3 fields");
  expectError(",,", WARREN_ERROR_INVALID_ARGUMENT, "got 3 fields");
  expectError("1,2,3,4", WARREN_ERROR_INVALID_ARGUMENT, "got 4 fields");
}

TEST(SumCompute, EmptyField) {
  expectError(",5", WARREN_ERROR_INVALID_ARGUMENT, "first field is empty");
  expectError("5,", WARREN_ERROR_INVALID_ARGUMENT, "second field is empty");
  expectError(" ,5", WARREN_ERROR_INVALID_ARGUMENT, "first field is empty");
  expectError("5, \t", WARREN_ERROR_INVALID_ARGUMENT, "second field is empty");
  expectError(",", WARREN_ERROR_INVALID_ARGUMENT, "first field is empty");
}

TEST(SumCompute, NotAnInteger) {
  expectError("x,1", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: 'x'");
  expectError("1,y", WARREN_ERROR_INVALID_ARGUMENT, "second field is not an integer: 'y'");
  expectError("1.5,2", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '1.5'");
  expectError("1 2,3", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '1 2'");
  expectError("0x10,1", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '0x10'");
  expectError("--1,2", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '--1'");
  expectError("+-1,2", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '+-1'");
  expectError("+,1", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '+'");
  expectError("1,-", WARREN_ERROR_INVALID_ARGUMENT, "second field is not an integer: '-'");
  expectError("1,- 1", WARREN_ERROR_INVALID_ARGUMENT, "second field is not an integer: '- 1'");
  expectError("1e3,1", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '1e3'");
  expectError("1_000,1", WARREN_ERROR_INVALID_ARGUMENT, "first field is not an integer: '1_000'");
  expectError("1,2x", WARREN_ERROR_INVALID_ARGUMENT, "second field is not an integer: '2x'");
}

TEST(SumCompute, BadFieldReportedBeforeRangeOfOtherField) {
  // The first field is checked completely before the second one.
  expectError("99999999999999999999,x", WARREN_ERROR_OUT_OF_RANGE, "first field");
  expectError("x,99999999999999999999", WARREN_ERROR_INVALID_ARGUMENT, "first field");
  // Junk after a long run of digits is invalid, not out of range.
  expectError("99999999999999999999x,1", WARREN_ERROR_INVALID_ARGUMENT, "not an integer");
}

TEST(SumCompute, OperandOutOfRange) {
  expectError("9223372036854775808,0", WARREN_ERROR_OUT_OF_RANGE,
              "first field is out of the 64-bit integer range: '9223372036854775808'");
  expectError("0,-9223372036854775809", WARREN_ERROR_OUT_OF_RANGE,
              "second field is out of the 64-bit integer range: '-9223372036854775809'");
  expectError("+99999999999999999999999,0", WARREN_ERROR_OUT_OF_RANGE,
              "first field is out of the 64-bit integer range");
}

TEST(SumCompute, SumOverflows) {
  expectError("9223372036854775807,1", WARREN_ERROR_OUT_OF_RANGE,
              "the sum 9223372036854775807 + 1 overflows the 64-bit integer range");
  expectError("-9223372036854775808,-1", WARREN_ERROR_OUT_OF_RANGE,
              "the sum -9223372036854775808 + -1 overflows");
  expectError("9223372036854775807,9223372036854775807", WARREN_ERROR_OUT_OF_RANGE, "overflows");
}

TEST(SumCompute, QuotesControlAndNonUtf8BytesSafely) {
  using namespace std::string_literals;
  expectError("\x01\xff,1"s, WARREN_ERROR_INVALID_ARGUMENT,
              "first field is not an integer: '\\x01\\xff'");
  expectError("1,a\0b"s, WARREN_ERROR_INVALID_ARGUMENT,
              "second field is not an integer: 'a\\x00b'");
  expectError("1,\xc3\xa9"s, WARREN_ERROR_INVALID_ARGUMENT, "'\\xc3\\xa9'");
  expectError("it's,1", WARREN_ERROR_INVALID_ARGUMENT, "'it\\'s'");
  expectError("a\\b,1", WARREN_ERROR_INVALID_ARGUMENT, "'a\\\\b'");
  expectError("1\x7f,1", WARREN_ERROR_INVALID_ARGUMENT, "'1\\x7f'");
}

TEST(SumCompute, TruncatesLongFieldsInMessages) {
  const std::string field = std::string(40, 'a');
  const Outcome outcome = compute(field + ",1");
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, WARREN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(outcome.text, "first field is not an integer: '" + std::string(32, 'a') + "...'");

  expectError(std::string(32, 'b') + ",1", WARREN_ERROR_INVALID_ARGUMENT,
              "'" + std::string(32, 'b') + "'");

  const std::string digits(100000, '9');
  const Outcome huge = compute(digits + ",1");
  EXPECT_FALSE(huge.ok);
  EXPECT_EQ(huge.code, WARREN_ERROR_OUT_OF_RANGE);
  EXPECT_LT(huge.text.size(), 120U) << huge.text;
  EXPECT_NE(huge.text.find("...'"), std::string::npos) << huge.text;
}

TEST(SumCompute, LeadingZerosBeyondNineteenDigitsStillFit) {
  expectSum("0000000000000000000000000001,2", "3");
  expectSum("-00000000000000000000009223372036854775808,0", "-9223372036854775808");
}

}  // namespace
