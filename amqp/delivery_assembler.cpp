// SPDX-License-Identifier: Apache-2.0
#include "delivery_assembler.h"

#include <stdexcept>
#include <string_view>

namespace warren {
namespace {

std::string copyOf(amqp_bytes_t bytes) {
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

std::string channelText(amqp_channel_t channel) { return "channel " + std::to_string(channel); }

}  // namespace

std::vector<std::pair<std::string, std::string>> textHeaders(const amqp_table_t& table) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(static_cast<std::size_t>(table.num_entries));
  for (int i = 0; i < table.num_entries; ++i) {
    const amqp_table_entry_t& entry = table.entries[i];
    const amqp_field_value_t& value = entry.value;
    std::string text;
    switch (value.kind) {
      case AMQP_FIELD_KIND_UTF8:
      case AMQP_FIELD_KIND_BYTES:
        text = copyOf(value.value.bytes);
        break;
      case AMQP_FIELD_KIND_BOOLEAN:
        text = value.value.boolean ? "true" : "false";
        break;
      case AMQP_FIELD_KIND_I8:
        text = std::to_string(value.value.i8);
        break;
      case AMQP_FIELD_KIND_U8:
        text = std::to_string(value.value.u8);
        break;
      case AMQP_FIELD_KIND_I16:
        text = std::to_string(value.value.i16);
        break;
      case AMQP_FIELD_KIND_U16:
        text = std::to_string(value.value.u16);
        break;
      case AMQP_FIELD_KIND_I32:
        text = std::to_string(value.value.i32);
        break;
      case AMQP_FIELD_KIND_U32:
        text = std::to_string(value.value.u32);
        break;
      case AMQP_FIELD_KIND_I64:
      case AMQP_FIELD_KIND_TIMESTAMP:
        text = std::to_string(value.value.i64);
        break;
      case AMQP_FIELD_KIND_U64:
        text = std::to_string(value.value.u64);
        break;
      default:
        continue;  // tables, arrays, floats, decimals: not passed (docs/plugins.md)
    }
    headers.emplace_back(copyOf(entry.key), std::move(text));
  }
  return headers;
}

DeliveryAssembler::Pending& DeliveryAssembler::slot(amqp_channel_t channel) {
  if (pending_.size() <= channel) pending_.resize(channel + 1u);
  return pending_[channel];
}

void DeliveryAssembler::beginDelivery(amqp_channel_t channel, const amqp_basic_deliver_t& deliver) {
  Pending& pending = slot(channel);
  pending = Pending{};
  pending.active = true;
  pending.message.kind = InboundMessage::Kind::kDelivery;
  pending.message.channel = channel;
  pending.message.delivery_tag = deliver.delivery_tag;
  pending.message.redelivered = deliver.redelivered != 0;
}

void DeliveryAssembler::beginReturn(amqp_channel_t channel, const amqp_basic_return_t& returned) {
  Pending& pending = slot(channel);
  pending = Pending{};
  pending.active = true;
  pending.message.kind = InboundMessage::Kind::kReturn;
  pending.message.channel = channel;
  pending.message.reply_code = returned.reply_code;
  pending.message.reply_text = copyOf(returned.reply_text);
  pending.message.routing_key = copyOf(returned.routing_key);
}

bool DeliveryAssembler::beginIfContentMethod(const amqp_frame_t& frame) {
  if (frame.frame_type != AMQP_FRAME_METHOD) return false;
  const amqp_method_t& method = frame.payload.method;
  if (method.id == AMQP_BASIC_DELIVER_METHOD) {
    beginDelivery(frame.channel, *static_cast<const amqp_basic_deliver_t*>(method.decoded));
    return true;
  }
  if (method.id == AMQP_BASIC_RETURN_METHOD) {
    beginReturn(frame.channel, *static_cast<const amqp_basic_return_t*>(method.decoded));
    return true;
  }
  return false;
}

std::optional<InboundMessage> DeliveryAssembler::feed(const amqp_frame_t& frame) {
  Pending& pending = slot(frame.channel);
  if (!pending.active) {
    throw std::runtime_error(channelText(frame.channel) +
                             ": content frame without basic.deliver or basic.return");
  }
  InboundMessage& message = pending.message;
  if (frame.frame_type == AMQP_FRAME_HEADER) {
    if (pending.header_seen) {
      throw std::runtime_error(channelText(frame.channel) + ": second content header");
    }
    pending.header_seen = true;
    message.body_size = frame.payload.properties.body_size;
    const auto* properties =
        static_cast<const amqp_basic_properties_t*>(frame.payload.properties.decoded);
    if (properties->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
      message.correlation_id = copyOf(properties->correlation_id);
    }
    if (properties->_flags & AMQP_BASIC_REPLY_TO_FLAG) {
      message.reply_to = copyOf(properties->reply_to);
      message.has_reply_to = !message.reply_to.empty();
    }
    if (properties->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
      message.content_type = copyOf(properties->content_type);
    }
    if (properties->_flags & AMQP_BASIC_HEADERS_FLAG) {
      message.headers = textHeaders(properties->headers);
    }
    constexpr std::uint8_t kPersistent = 2;
    message.persistent = (properties->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) != 0 &&
                         properties->delivery_mode == kPersistent;
    message.body_too_large = message.body_size > max_body_bytes_;
    if (!message.body_too_large) message.body.reserve(message.body_size);
    return finishIfComplete(pending);
  }
  if (frame.frame_type == AMQP_FRAME_BODY) {
    if (!pending.header_seen) {
      throw std::runtime_error(channelText(frame.channel) + ": body frame before content header");
    }
    const amqp_bytes_t& fragment = frame.payload.body_fragment;
    pending.received += fragment.len;
    if (pending.received > message.body_size) {
      throw std::runtime_error(channelText(frame.channel) + ": body longer than declared");
    }
    if (!message.body_too_large) {
      message.body.append(static_cast<const char*>(fragment.bytes), fragment.len);
    }
    return finishIfComplete(pending);
  }
  throw std::runtime_error(channelText(frame.channel) + ": unexpected frame type " +
                           std::to_string(frame.frame_type) + " inside a message");
}

std::optional<InboundMessage> DeliveryAssembler::finishIfComplete(Pending& pending) {
  if (pending.received < pending.message.body_size) return std::nullopt;
  pending.active = false;
  return std::move(pending.message);
}

}  // namespace warren
