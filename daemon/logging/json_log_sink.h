// SPDX-License-Identifier: Apache-2.0
// logging.format: json. Each record becomes one JSON object on one line,
// for log shippers (Vector, Fluent Bit, Promtail, journald's own JSON
// output reads it as a message):
//   {"time":"2026-12-06T22:10:54.123Z","level":"info","logger":"sum",
//    "queue":"sum","plugin":"sum","message":"consuming 'sum' ..."}
// A queue's logger carries its queue and plugin as fields; warrend's own
// has none.
#pragma once

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren {

using LogFields = std::vector<std::pair<std::string, std::string>>;

// `text` as a JSON string, quotes included: `"` `\` and control characters
// escaped, bytes that are not UTF-8 replaced by U+FFFD (a plugin's stderr
// may hold anything), so that every line stays valid JSON.
void appendJsonString(std::string& out, std::string_view text);

// The line (without its newline) for one record.
std::string jsonLogLine(const spdlog::details::log_msg& record, const LogFields& fields);

// One per logger: formats its records and hands each finished line to
// `output`, a sink shared by every logger whose pattern is "%v" (it holds
// the lock and writes). Keeps no state of its own, hence no mutex.
class JsonLogSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  JsonLogSink(std::shared_ptr<spdlog::sinks::sink> output, LogFields fields)
      : output_(std::move(output)), fields_(std::move(fields)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& record) override;
  void flush_() override { output_->flush(); }

 private:
  std::shared_ptr<spdlog::sinks::sink> output_;
  LogFields fields_;
};

}  // namespace warren
