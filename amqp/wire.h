// SPDX-License-Identifier: Apache-2.0
// The names warrend and its clients must agree on, in one place
// (docs/protocol.md describes them).
#pragma once

#include <string_view>

namespace warren::wire {

// Headers of an error reply: the code ("invalid_argument", ...) and what was wrong.
inline constexpr std::string_view kErrorCodeHeader = "x-warren-error-code";
inline constexpr std::string_view kErrorMessageHeader = "x-warren-error-message";

// Header of a request: when its caller stops waiting, an integer of
// milliseconds since the Unix epoch (UTC).
inline constexpr std::string_view kDeadlineHeader = "x-warren-deadline";

// RabbitMQ's direct reply-to pseudo queue; a caller consumes this name, and
// the broker hands out "<kDirectReplyTo>.<PID>.<KEY>" as the reply_to.
inline constexpr std::string_view kDirectReplyTo = "amq.rabbitmq.reply-to";

// The broker when none is configured: RabbitMQ's default guest account.
inline constexpr std::string_view kDefaultBrokerUrl = "amqp://guest:guest@localhost:5672/%2f";

}  // namespace warren::wire
