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

std::string_view outcomeName(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kInvalidArgument:
      return "invalid_argument";
    case Outcome::kOutOfRange:
      return "out_of_range";
    case Outcome::kTooLarge:
      return "too_large";
    case Outcome::kInternal:
      return "internal";
    case Outcome::kUnavailable:
      return "unavailable";
    case Outcome::kNoReplyTo:
      return "no_reply_to";
    case Outcome::kRequeued:
      return "requeued";
    case Outcome::kReplyRefused:
      return "reply_refused";
    case Outcome::kLost:
      return "lost";
  }
  return "internal";
}

Outcome outcomeOf(warren_error_code code) noexcept {
  switch (code) {
    case WARREN_ERROR_INVALID_ARGUMENT:
      return Outcome::kInvalidArgument;
    case WARREN_ERROR_OUT_OF_RANGE:
      return Outcome::kOutOfRange;
    case WARREN_ERROR_TOO_LARGE:
      return Outcome::kTooLarge;
    case WARREN_ERROR_UNAVAILABLE:
      return Outcome::kUnavailable;
    case WARREN_ERROR_INTERNAL:
      break;
  }
  return Outcome::kInternal;
}

}  // namespace warren
