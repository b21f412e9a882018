// SPDX-License-Identifier: Apache-2.0
// Assembles basic.deliver / basic.return + content header + body frames into
// messages, one channel at a time, without ever blocking for a frame.
//
// rabbitmq-c's amqp_read_message() waits for the whole message and allocates
// the size the header declares before reading a byte. Here the body is kept
// only while it is within the limit; a larger one is read and dropped frame
// by frame, and the message is handed on marked as too large.
#pragma once

#include <amqp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace warren {

struct InboundMessage {
  enum class Kind { kDelivery, kReturn };
  Kind kind = Kind::kDelivery;
  amqp_channel_t channel = 0;
  // kDelivery
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  // kReturn
  int reply_code = 0;
  std::string reply_text;
  std::string routing_key;
  // Properties, copied out of the library's frame pool.
  std::string correlation_id;
  std::string reply_to;
  std::string content_type;
  bool has_reply_to = false;
  bool persistent = false;                                   // delivery_mode 2
  std::vector<std::pair<std::string, std::string>> headers;  // text values only
  // Content.
  std::uint64_t body_size = 0;  // as declared by the content header
  bool body_too_large = false;  // body_size > limit: `body` stays empty
  std::string body;
};

class DeliveryAssembler {
 public:
  explicit DeliveryAssembler(std::size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}

  // A content-bearing method arrived on `channel`.
  void beginDelivery(amqp_channel_t channel, const amqp_basic_deliver_t& deliver);
  void beginReturn(amqp_channel_t channel, const amqp_basic_return_t& returned);
  // Starts a message when `frame` is basic.deliver or basic.return; false
  // for every other frame, which the caller handles.
  bool beginIfContentMethod(const amqp_frame_t& frame);

  // Feeds a content header or body frame. Returns the message once its last
  // byte is in. Throws std::runtime_error on frames that break AMQP's
  // framing rules (content without a method, body past its declared size).
  std::optional<InboundMessage> feed(const amqp_frame_t& frame);

  // Forgets everything in progress (the connection or channel went away).
  void reset() noexcept { pending_.clear(); }

 private:
  struct Pending {
    bool active = false;
    bool header_seen = false;
    std::uint64_t received = 0;
    InboundMessage message;
  };
  Pending& slot(amqp_channel_t channel);
  std::optional<InboundMessage> finishIfComplete(Pending& pending);

  std::size_t max_body_bytes_;
  std::vector<Pending> pending_;  // indexed by channel number
};

// The request headers a handler sees: strings, integers and booleans as text.
std::vector<std::pair<std::string, std::string>> textHeaders(const amqp_table_t& table);

}  // namespace warren
