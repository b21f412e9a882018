// SPDX-License-Identifier: Apache-2.0
#include "json_log_sink.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace warren {
namespace {

// The length of the UTF-8 sequence starting at text[at], or 0 when the
// bytes there are not one (overlong forms and surrogates included).
std::size_t utf8Length(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  std::size_t length = 0;
  unsigned int low = 0x80, high = 0xbf;  // the allowed range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  if (byte(at + 1) < low || byte(at + 1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if ((byte(at + i) & 0xc0) != 0x80) return 0;
  }
  return length;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (std::size_t at = 0; at < text.size();) {
    const auto c = static_cast<unsigned char>(text[at]);
    if (c >= 0x80) {
      const std::size_t length = utf8Length(text, at);
      if (length == 0) {
        out += "\\ufffd";
        ++at;
      } else {
        out.append(text.substr(at, length));
        at += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", c);
          out += escape;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++at;
  }
  out += '"';
}

std::string jsonLogLine(const spdlog::details::log_msg& record, const LogFields& fields) {
  const auto since_epoch = record.time.time_since_epoch();
  const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char time[96];  // room for any int the compiler imagines in each field
  std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  const auto level = spdlog::level::to_string_view(record.level);

  std::string line = "{\"time\":\"";
  line += time;
  line += "\",\"level\":";
  appendJsonString(line, std::string_view(level.data(), level.size()));
  line += ",\"logger\":";
  appendJsonString(line, std::string_view(record.logger_name.data(), record.logger_name.size()));
  for (const auto& [key, value] : fields) {
    line += ',';
    appendJsonString(line, key);
    line += ':';
    appendJsonString(line, value);
  }
  line += ",\"message\":";
  appendJsonString(line, std::string_view(record.payload.data(), record.payload.size()));
  line += '}';
  return line;
}

void JsonLogSink::sink_it_(const spdlog::details::log_msg& record) {
  const std::string line = jsonLogLine(record, fields_);
  spdlog::details::log_msg formatted(record.time, record.source, record.logger_name, record.level,
                                     spdlog::string_view_t(line.data(), line.size()));
  output_->log(formatted);
}

}  // namespace warren
