// SPDX-License-Identifier: Apache-2.0
// Unit tests of the upper handler's logic (plugins/upper/upper_case.cpp):
// option validation and the conversion, no dlopen.
#include "upper_case.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using warren::upper::convert;
using warren::upper::Mode;
using warren::upper::readSettings;
using warren::upper::Settings;

// A queue's `options` map as warrend hands it to create().
class OptionMap {
 public:
  OptionMap(std::initializer_list<std::pair<std::string, std::string>> entries)
      : entries_(entries) {
    for (const auto& [key, value] : entries_) {
      raw_.push_back({{key.data(), key.size()}, {value.data(), value.size()}});
    }
  }
  warren::Options options() const { return warren::Options(raw_.data(), raw_.size()); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
  std::vector<warren_option> raw_;
};

// readSettings() must throw an OptionError naming `key` with exactly `message`.
void expectOptionError(const OptionMap& map, const std::string& key, const std::string& message) {
  try {
    readSettings(map.options());
    ADD_FAILURE() << "expected an OptionError for '" << key << "'";
  } catch (const warren::OptionError& e) {
    EXPECT_EQ(e.key(), key);
    EXPECT_EQ(std::string(e.what()), message);
  }
}

Settings settings(Mode mode, std::string prefix = "") { return Settings{mode, std::move(prefix)}; }

TEST(UpperSettings, DefaultsToUpperWithoutPrefix) {
  const Settings read = readSettings(OptionMap{}.options());
  EXPECT_EQ(read.mode, Mode::kUpper);
  EXPECT_EQ(read.prefix, "");
}

TEST(UpperSettings, ReadsModeAndPrefix) {
  const Settings lower = readSettings(OptionMap{{"mode", "lower"}, {"prefix", "> "}}.options());
  EXPECT_EQ(lower.mode, Mode::kLower);
  EXPECT_EQ(lower.prefix, "> ");
  EXPECT_EQ(readSettings(OptionMap{{"mode", "upper"}}.options()).mode, Mode::kUpper);
}

TEST(UpperSettings, RefusesAnUnknownMode) {
  expectOptionError(OptionMap{{"mode", "sideways"}}, "mode",
                    "must be one of: upper, lower; got 'sideways'");
  // Values are case-sensitive.
  expectOptionError(OptionMap{{"mode", "Upper"}}, "mode",
                    "must be one of: upper, lower; got 'Upper'");
  expectOptionError(OptionMap{{"mode", ""}}, "mode", "must be one of: upper, lower; got ''");
}

TEST(UpperSettings, RefusesAnUnknownKeyNamingTheAllowedOnes) {
  expectOptionError(OptionMap{{"mode", "upper"}, {"case", "upper"}}, "case",
                    "unknown option 'case'; allowed: mode, prefix");
}

TEST(UpperSettings, RefusesATooLongPrefix) {
  const std::string longest(warren::upper::kMaxPrefixBytes, 'x');
  EXPECT_EQ(readSettings(OptionMap{{"prefix", longest}}.options()).prefix, longest);
  expectOptionError(OptionMap{{"prefix", longest + "x"}}, "prefix",
                    "must be at most 1024 bytes, got 1025");
}

TEST(UpperConvert, ConvertsAsciiLetters) {
  EXPECT_EQ(convert(settings(Mode::kUpper), "Hello, World 42!"), "HELLO, WORLD 42!");
  EXPECT_EQ(convert(settings(Mode::kLower), "Hello, World 42!"), "hello, world 42!");
  EXPECT_EQ(convert(settings(Mode::kUpper), "azAZ@[`{"), "AZAZ@[`{");
  EXPECT_EQ(convert(settings(Mode::kLower), "azAZ@[`{"), "azaz@[`{");
}

TEST(UpperConvert, CopiesNonAsciiBytesUnchanged) {
  // UTF-8 "grüße" and "ÀÉ": only the ASCII letters change.
  EXPECT_EQ(convert(settings(Mode::kUpper),
                    "gr\xc3\xbc\xc3\x9f"
                    "e"),
            "GR\xc3\xbc\xc3\x9f"
            "E");
  EXPECT_EQ(convert(settings(Mode::kLower), "\xc3\x80\xc3\x89 X"), "\xc3\x80\xc3\x89 x");
  EXPECT_EQ(convert(settings(Mode::kUpper), "\xff\x80\x7f"), "\xff\x80\x7f");
}

TEST(UpperConvert, WritesThePrefixAsIs) {
  EXPECT_EQ(convert(settings(Mode::kUpper, "Echo: "), "abc"), "Echo: ABC");
  EXPECT_EQ(convert(settings(Mode::kLower, "Echo: "), "ABC"), "Echo: abc");
  EXPECT_EQ(convert(settings(Mode::kUpper, "Echo: "), ""), "Echo: ");
  EXPECT_EQ(convert(settings(Mode::kUpper), ""), "");
}

TEST(UpperConvert, RefusesABodyWithANulByte) {
  try {
    convert(settings(Mode::kUpper), std::string_view("ab\0cd", 5));
    ADD_FAILURE() << "expected a warren::Error";
  } catch (const warren::Error& e) {
    EXPECT_EQ(e.code(), WARREN_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(std::string(e.what()), "the body is not text: NUL byte at offset 2");
  }
}

}  // namespace
