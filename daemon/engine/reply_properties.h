// SPDX-License-Identifier: Apache-2.0
// The AMQP properties of a reply (docs/protocol.md, "Replies").
//
// A success reply carries the request's correlation_id, the handler's
// content_type and the request's persistence (delivery_mode 2 when the
// request had it: a caller that made its request survive a broker restart
// wants the reply to survive it too, in a durable reply queue). An error reply also carries the
// headers
//   x-warren-error-code     (string: "invalid_argument", "too_large", ...)
//   x-warren-error-message  (string: what was wrong)
// and content_type text/plain, with the message as body so that a client that
// knows nothing of warren still sees why.
#pragma once

#include "handler_reply.h"
#include "wire.h"

#include <amqp.h>

#include <array>
#include <string>
#include <string_view>

namespace warren {

inline constexpr std::string_view kErrorCodeHeader = wire::kErrorCodeHeader;
inline constexpr std::string_view kErrorMessageHeader = wire::kErrorMessageHeader;

// The wire name of an error code; unknown values map to "internal".
std::string_view errorCodeName(warren_error_code code) noexcept;

// The body of an error reply: "error: <code>: <message>".
std::string errorReplyBody(const HandlerError& error);

// Builds the rabbitmq-c properties of one reply. The returned struct points
// into this object and `reply`: both must outlive its use (one publish).
class ReplyProperties {
 public:
  enum class Persistence { kTransient, kPersistent };
  ReplyProperties(std::string_view correlation_id, const HandlerReply& reply,
                  Persistence persistence);
  ReplyProperties(const ReplyProperties&) = delete;
  ReplyProperties& operator=(const ReplyProperties&) = delete;

  const amqp_basic_properties_t* get() const noexcept { return &properties_; }

 private:
  amqp_basic_properties_t properties_{};
  std::array<amqp_table_entry_t, 2> headers_{};
};

}  // namespace warren
