// SPDX-License-Identifier: Apache-2.0
// What to do with one delivery, decided without a broker: the consumer
// (queue_connection.h) gathers the facts, asks decide(), and only executes the
// answer. Tests drive it directly (tests/unit/request_policy_test.cpp).
#pragma once

#include "handler_reply.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren {

// What is known about a delivery before its handler runs.
struct RequestFacts {
  bool stopping = false;        // the queue is draining: nothing new starts
  bool has_reply_to = false;    // the request carries a reply_to property
  std::string_view reply_to;    // its value
  bool body_too_large = false;  // over max_body_bytes: the body was not kept
  bool redelivered = false;     // the broker's flag
  // What became of the reply to an earlier delivery of this request
  // (RefusedReplies::check()): only consulted for redeliveries.
  enum class EarlierReply {
    kNone,     // none known: answer it (again)
    kPending,  // published by a consumer that does not yet know whether the broker took it
    kRefused,  // published right before the broker closed that channel or connection:
               // publishing it again would only repeat that
  };
  EarlierReply earlier_reply = EarlierReply::kNone;
  bool dead_letter = false;         // the queue has an x-dead-letter-exchange
  bool deadline_malformed = false;  // an x-warren-deadline header that is not a deadline
  bool deadline_passed = false;     // its deadline (header) passed before it was delivered
};

enum class Decision {
  kRequeue,                // basic.reject with requeue: answered later, or by another consumer
  kAckWithoutReply,        // no reply_to: ack, log
  kReplyTooLarge,          // "too_large" error reply, handler not run
  kReplyBadDeadline,       // "invalid_argument" error reply, handler not run
  kReplyDeadlineExceeded,  // "deadline_exceeded" error reply, handler not run
  kRunHandler,             // run the handler, publish its reply, ack
  kRefuseAck,              // no reply can be delivered: ack without one, log
  kRefuseDeadLetter,  // same, but basic.reject without requeue to the queue's dead-letter target
};

Decision decide(const RequestFacts& facts) noexcept;

// The quorum queue header that counts a request's earlier deliveries.
inline constexpr std::string_view kDeliveryCountHeader = "x-delivery-count";

// A request's x-warren-deadline (wire::kDeadlineHeader), read from its headers (text values, as the
// assembler keeps them): milliseconds since the Unix epoch.
struct DeadlineHeader {
  bool present = false;
  bool malformed = false;  // present, but not an integer from 0 to 2^63-1
  std::int64_t at_ms = 0;  // when present and well-formed
};
DeadlineHeader findDeadline(
    const std::vector<std::pair<std::string, std::string>>& headers) noexcept;

// The value of header `key` (text values only), nullptr when absent.
const std::string* findHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                              std::string_view key) noexcept;

// How many times the broker delivered the request before: x-delivery-count
// when it is a count, else 1 when `redelivered`, 0 when not.
std::uint32_t deliveryCount(const std::vector<std::pair<std::string, std::string>>& headers,
                            bool redelivered) noexcept;

// True when `reply_to` can be published to without the broker failing the
// publish: a queue name, or a direct reply-to address the broker can decode.
// RabbitMQ decodes "amq.rabbitmq.reply-to.<PID>.<KEY>" with
// binary_to_term(base64:decode(PID)) and, when that throws, closes the
// publishing connection (541 INTERNAL_ERROR): such an address must never be
// published to. PID must be base64 of an Erlang external term of a pid.
bool replyToDeliverable(std::string_view reply_to) noexcept;

// A handler's success reply the broker could not take, or that is larger
// than the queue allows (`max_reply_bytes`): the `internal` error to send
// instead. A content_type is an AMQP shortstr, at most 255 bytes: a longer
// one cannot even be encoded, and the publish would fail the connection.
std::optional<HandlerError> unpublishableReply(const HandlerReply& reply,
                                               std::size_t max_reply_bytes);

// RabbitMQ's direct reply-to pseudo queue, in any form (a reply there must
// not be mandatory: the broker returns it although it delivered it).
bool isDirectReplyTo(std::string_view reply_to) noexcept;

// A request's identity across redeliveries: reply_to and correlation_id.
std::uint64_t replyIdentity(std::string_view reply_to, std::string_view correlation_id) noexcept;

// What became of the replies a queue's consumers published, for telling a
// redelivery whose reply killed a connection (answer it again and the broker
// closes the next connection too) from one whose reply was merely lost.
// Shared by the queue's consumers: a redelivery may reach another one, even
// before the consumer that published the reply has read the broker's close.
class RefusedReplies {
 public:
  explicit RefusedReplies(std::size_t capacity = 256) : capacity_(capacity) {}
  RefusedReplies(const RefusedReplies&) = delete;
  RefusedReplies& operator=(const RefusedReplies&) = delete;

  // Consumer `owner` published the reply to the request `identity`.
  void published(int owner, std::uint64_t identity);
  // The broker took owner's published replies (or they were lost with a
  // connection that failed for another reason): forget them.
  void settled(int owner);
  // The broker confirmed one of them (publisher confirms): forget it.
  void settled(int owner, std::uint64_t identity);
  // The broker closed owner's channel or connection after those replies:
  // they are refused (the oldest refusals are forgotten past `capacity`).
  void refused(int owner);
  // kRefused is reported once, then forgotten.
  RequestFacts::EarlierReply check(std::uint64_t identity);

 private:
  struct Entry {
    std::uint64_t identity;
    int owner;  // -1 once refused
  };
  const std::size_t capacity_;
  std::mutex mutex_;
  std::deque<Entry> entries_;      // under mutex_; pending ones and refused ones
  std::size_t refused_count_ = 0;  // under mutex_
};

}  // namespace warren
