// SPDX-License-Identifier: Apache-2.0
#include "request_policy.h"

#include "wire.h"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string>

namespace warren {
namespace {

// The form the broker hands out: "amq.rabbitmq.reply-to.<PID>.<KEY>".
constexpr std::size_t kDirectReplyToPrefixBytes = wire::kDirectReplyTo.size() + 1;

// Erlang's external term format: version byte, then the tag of a pid.
constexpr unsigned char kTermVersion = 131;
constexpr unsigned char kNewPidExt = 88;
constexpr unsigned char kPidExt = 103;

int base64Value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict base64 (padding required, as Erlang's base64:decode/1 wants it);
// writes the first two decoded bytes. False when `text` is not base64 or
// decodes to fewer than two bytes.
bool base64Prefix(std::string_view text, std::array<unsigned char, 2>& first) noexcept {
  if (text.size() < 4 || text.size() % 4 != 0) return false;
  std::size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    if (base64Value(text[i]) < 0) return false;
  }
  const int a = base64Value(text[0]);
  const int b = base64Value(text[1]);
  const int c = base64Value(text[2]);
  if (c < 0) return false;  // "xx==": one byte only
  first[0] = static_cast<unsigned char>((a << 2) | (b >> 4));
  first[1] = static_cast<unsigned char>(((b & 0x0f) << 4) | (c >> 2));
  return true;
}

}  // namespace

Decision decide(const RequestFacts& facts) noexcept {
  if (facts.stopping) return Decision::kRequeue;
  if (!facts.has_reply_to) return Decision::kAckWithoutReply;
  using EarlierReply = RequestFacts::EarlierReply;
  // Wait until the consumer that published the earlier reply has heard from
  // the broker: requeued, this comes back within moments.
  if (facts.redelivered && facts.earlier_reply == EarlierReply::kPending) {
    return Decision::kRequeue;
  }
  const bool refused = (facts.redelivered && facts.earlier_reply == EarlierReply::kRefused) ||
                       !replyToDeliverable(facts.reply_to);
  if (refused) return facts.dead_letter ? Decision::kRefuseDeadLetter : Decision::kRefuseAck;
  if (facts.body_too_large) return Decision::kReplyTooLarge;
  if (facts.deadline_malformed) return Decision::kReplyBadDeadline;
  if (facts.deadline_passed) return Decision::kReplyDeadlineExceeded;
  return Decision::kRunHandler;
}

namespace {

// A decimal integer from 0 to `max`, digits only.
std::optional<std::uint64_t> parseCount(std::string_view text, std::uint64_t max) noexcept {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace

const std::string* findHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                              std::string_view key) noexcept {
  for (const auto& [name, value] : headers) {
    if (name == key) return &value;
  }
  return nullptr;
}

DeadlineHeader findDeadline(
    const std::vector<std::pair<std::string, std::string>>& headers) noexcept {
  DeadlineHeader deadline;
  const std::string* value = findHeader(headers, wire::kDeadlineHeader);
  if (value == nullptr) return deadline;
  deadline.present = true;
  const auto parsed = parseCount(*value, std::numeric_limits<std::int64_t>::max());
  if (!parsed) {
    deadline.malformed = true;
    return deadline;
  }
  deadline.at_ms = static_cast<std::int64_t>(*parsed);
  return deadline;
}

std::uint32_t deliveryCount(const std::vector<std::pair<std::string, std::string>>& headers,
                            bool redelivered) noexcept {
  if (const std::string* value = findHeader(headers, kDeliveryCountHeader)) {
    if (const auto count = parseCount(*value, std::numeric_limits<std::uint32_t>::max())) {
      return static_cast<std::uint32_t>(*count);
    }
  }
  return redelivered ? 1 : 0;
}

std::optional<HandlerError> unpublishableReply(const HandlerReply& reply,
                                               std::size_t max_reply_bytes) {
  if (reply.error) return std::nullopt;
  constexpr std::size_t kMaxShortString = 255;
  if (reply.content_type.size() > kMaxShortString) {
    return HandlerError{WARREN_ERROR_INTERNAL, "the handler's reply content_type of " +
                                                   std::to_string(reply.content_type.size()) +
                                                   " bytes exceeds AMQP's limit of 255 bytes"};
  }
  if (reply.body.size() > max_reply_bytes) {
    return HandlerError{WARREN_ERROR_INTERNAL, "the handler's reply of " +
                                                   std::to_string(reply.body.size()) +
                                                   " bytes exceeds max_reply_bytes (" +
                                                   std::to_string(max_reply_bytes) + ")"};
  }
  return std::nullopt;
}

bool isDirectReplyTo(std::string_view reply_to) noexcept {
  return reply_to.substr(0, wire::kDirectReplyTo.size()) == wire::kDirectReplyTo;
}

bool replyToDeliverable(std::string_view reply_to) noexcept {
  // The default exchange takes any routing key up to a shortstr's 255 bytes.
  if (reply_to.empty() || reply_to.size() > 255) return false;
  if (!isDirectReplyTo(reply_to)) return true;
  if (reply_to.size() <= kDirectReplyToPrefixBytes ||
      reply_to[wire::kDirectReplyTo.size()] != '.') {
    return false;
  }
  const std::string_view encoded = reply_to.substr(kDirectReplyToPrefixBytes);
  const std::size_t dot = encoded.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == encoded.size()) return false;
  // The broker splits at every dot and wants exactly two parts.
  if (encoded.find('.', dot + 1) != std::string_view::npos) return false;
  std::array<unsigned char, 2> first{};
  if (!base64Prefix(encoded.substr(0, dot), first)) return false;
  return first[0] == kTermVersion && (first[1] == kNewPidExt || first[1] == kPidExt);
}

std::uint64_t replyIdentity(std::string_view reply_to, std::string_view correlation_id) noexcept {
  // FNV-1a: stable, cheap, and collisions only cost a rare wrong match
  // between two requests with the same reply_to.
  std::uint64_t hash = 14695981039346656037ULL;
  const auto mix = [&hash](std::string_view text) {
    for (const char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ULL;
    }
  };
  mix(reply_to);
  mix(std::string_view("\0", 1));
  mix(correlation_id);
  return hash;
}

void RefusedReplies::published(int owner, std::uint64_t identity) {
  const std::lock_guard lock(mutex_);
  entries_.push_back(Entry{identity, owner});
}

void RefusedReplies::settled(int owner) {
  const std::lock_guard lock(mutex_);
  std::erase_if(entries_, [owner](const Entry& entry) { return entry.owner == owner; });
}

void RefusedReplies::settled(int owner, std::uint64_t identity) {
  const std::lock_guard lock(mutex_);
  const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& entry) {
    return entry.owner == owner && entry.identity == identity;
  });
  if (it != entries_.end()) entries_.erase(it);
}

void RefusedReplies::refused(int owner) {
  const std::lock_guard lock(mutex_);
  for (Entry& entry : entries_) {
    if (entry.owner != owner) continue;
    entry.owner = -1;
    ++refused_count_;
  }
  while (refused_count_ > capacity_) {
    const auto oldest = std::find_if(entries_.begin(), entries_.end(),
                                     [](const Entry& entry) { return entry.owner < 0; });
    entries_.erase(oldest);
    --refused_count_;
  }
}

RequestFacts::EarlierReply RefusedReplies::check(std::uint64_t identity) {
  const std::lock_guard lock(mutex_);
  bool pending = false;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->identity != identity) continue;
    if (it->owner < 0) {
      entries_.erase(it);
      --refused_count_;
      return RequestFacts::EarlierReply::kRefused;
    }
    pending = true;
  }
  return pending ? RequestFacts::EarlierReply::kPending : RequestFacts::EarlierReply::kNone;
}

}  // namespace warren
