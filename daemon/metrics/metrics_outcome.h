// SPDX-License-Identifier: Apache-2.0
// How a request ended: the `outcome` label of warren_requests_finished_total.
#pragma once

#include <warren/plugin.h>

#include <array>
#include <cstddef>
#include <string_view>

namespace warren {

enum class Outcome {
  kOk,               // a success reply was published
  kInvalidArgument,  // error replies, one per warren_error_code ...
  kOutOfRange,
  kTooLarge,
  kInternal,
  kUnavailable,
  kDeadlineExceeded,
  kHandlerCrashed,
  kNoReplyTo,     // no reply_to: acked without a reply
  kRequeued,      // handed back to the broker unhandled (drain at shutdown or queue removal)
  kReplyRefused,  // no reply can reach reply_to: acked (or dead-lettered) without one
  kLost,  // not acked: reply publish failed, connection lost or closed at the drain deadline
};

inline constexpr std::array<Outcome, 12> kAllOutcomes = {
    Outcome::kOk,
    Outcome::kInvalidArgument,
    Outcome::kOutOfRange,
    Outcome::kTooLarge,
    Outcome::kInternal,
    Outcome::kUnavailable,
    Outcome::kDeadlineExceeded,
    Outcome::kHandlerCrashed,
    Outcome::kNoReplyTo,
    Outcome::kRequeued,
    Outcome::kReplyRefused,
    Outcome::kLost,
};

// warren_error_code, in one table: its wire name (docs/protocol.md), the
// outcome of a reply with it, and what it means.
struct ErrorCodeInfo {
  warren_error_code code;
  std::string_view name;
  Outcome outcome;
  std::string_view meaning;
};

inline constexpr std::array<ErrorCodeInfo, 7> kErrorCodes = {{
    {WARREN_ERROR_INVALID_ARGUMENT, "invalid_argument", Outcome::kInvalidArgument,
     "the request is malformed"},
    {WARREN_ERROR_OUT_OF_RANGE, "out_of_range", Outcome::kOutOfRange,
     "well-formed, but a value is out of range"},
    {WARREN_ERROR_TOO_LARGE, "too_large", Outcome::kTooLarge, "the request body exceeds the limit"},
    {WARREN_ERROR_INTERNAL, "internal", Outcome::kInternal,
     "the handler failed, or its reply could not be sent"},
    {WARREN_ERROR_UNAVAILABLE, "unavailable", Outcome::kUnavailable,
     "a dependency of the handler is down"},
    {WARREN_ERROR_DEADLINE_EXCEEDED, "deadline_exceeded", Outcome::kDeadlineExceeded,
     "the request's deadline passed before its reply was ready"},
    {WARREN_ERROR_HANDLER_CRASHED, "handler_crashed", Outcome::kHandlerCrashed,
     "the handler's worker process died or broke the worker protocol"},
}};

// The row of `code`; a code this host does not know is "internal", as it is
// on the wire.
const ErrorCodeInfo& errorCodeInfo(warren_error_code code) noexcept;

// The label value. Error outcomes carry the wire names of the error codes
// (docs/protocol.md): "invalid_argument", "too_large", ...
std::string_view outcomeName(Outcome outcome) noexcept;

// The outcome of an error reply with `code`. A code this host does not know
// is "internal", as it is on the wire.
Outcome outcomeOf(warren_error_code code) noexcept;

// Index of `outcome` in kAllOutcomes, for arrays of per-outcome series.
constexpr std::size_t outcomeIndex(Outcome outcome) noexcept {
  return static_cast<std::size_t>(outcome);
}

}  // namespace warren
