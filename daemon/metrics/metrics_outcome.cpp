// SPDX-License-Identifier: Apache-2.0
#include "metrics_outcome.h"

namespace warren {

static_assert(
    [] {
      for (std::size_t i = 0; i < kAllOutcomes.size(); ++i) {
        if (outcomeIndex(kAllOutcomes[i]) != i) return false;
      }
      return true;
    }(),
    "kAllOutcomes must list the outcomes in declaration order");

const ErrorCodeInfo& errorCodeInfo(warren_error_code code) noexcept {
  for (const ErrorCodeInfo& info : kErrorCodes) {
    if (info.code == code) return info;
  }
  return errorCodeInfo(WARREN_ERROR_INTERNAL);
}

std::string_view outcomeName(Outcome outcome) noexcept {
  for (const ErrorCodeInfo& info : kErrorCodes) {
    if (info.outcome == outcome) return info.name;
  }
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kNoReplyTo:
      return "no_reply_to";
    case Outcome::kRequeued:
      return "requeued";
    case Outcome::kReplyRefused:
      return "reply_refused";
    case Outcome::kLost:
      return "lost";
    default:  // the error outcomes, named by kErrorCodes above
      break;
  }
  return "internal";
}

Outcome outcomeOf(warren_error_code code) noexcept { return errorCodeInfo(code).outcome; }

}  // namespace warren
