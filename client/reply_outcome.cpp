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
  for (auto& [key, value] : reply.headers) {
    if (key == kErrorCodeHeader) {
      outcome.status = CallStatus::kRemoteError;
      outcome.error_code = std::move(value);
    } else if (key == kErrorMessageHeader) {
      outcome.message = std::move(value);
    }
  }
  if (outcome.status == CallStatus::kRemoteError) {
    if (outcome.message.empty()) outcome.message = std::move(reply.body);
    return outcome;
  }
  outcome.message.clear();
  outcome.reply.body = std::move(reply.body);
  outcome.reply.content_type = std::move(reply.content_type);
  return outcome;
}

}  // namespace warren::client_detail
