// SPDX-License-Identifier: Apache-2.0
#include "reply_outcome.h"

#include "wire.h"

#include <string_view>

namespace warren::client_detail {
namespace {

constexpr std::string_view kErrorCodeHeader = wire::kErrorCodeHeader;
constexpr std::string_view kErrorMessageHeader = wire::kErrorMessageHeader;

}  // namespace

CallOutcome outcomeOfReply(InboundMessage&& reply) {
  CallOutcome outcome;
  for (const auto& [key, value] : reply.headers) {
    if (key == kErrorCodeHeader) {
      outcome.status = CallStatus::kRemoteError;
      outcome.error_code = value;
    } else if (key == kErrorMessageHeader) {
      outcome.message = value;
    }
  }
  if (outcome.status == CallStatus::kRemoteError && outcome.message.empty()) {
    outcome.message = reply.body;
  }
  if (outcome.status == CallStatus::kOk) outcome.message.clear();
  outcome.reply.body = std::move(reply.body);
  outcome.reply.content_type = std::move(reply.content_type);
  outcome.reply.headers = std::move(reply.headers);
  return outcome;
}

}  // namespace warren::client_detail
