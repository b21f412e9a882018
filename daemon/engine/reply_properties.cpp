// SPDX-License-Identifier: Apache-2.0
#include "reply_properties.h"

#include "metrics_outcome.h"

#include <string>

namespace warren {
namespace {

amqp_bytes_t bytesOf(std::string_view text) noexcept {
  // rabbitmq-c takes non-const pointers but only reads them when encoding.
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}

constexpr std::string_view kTextPlain = "text/plain";

}  // namespace

std::string_view errorCodeName(warren_error_code code) noexcept { return errorCodeInfo(code).name; }

std::string errorReplyBody(const HandlerError& error) {
  std::string body = "error: ";
  body += errorCodeName(error.code);
  body += ": ";
  body += error.message;
  return body;
}

ReplyProperties::ReplyProperties(std::string_view correlation_id, const HandlerReply& reply,
                                 Persistence persistence) {
  constexpr std::uint8_t kTransient = 1;
  constexpr std::uint8_t kPersistent = 2;
  properties_._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  properties_.delivery_mode = persistence == Persistence::kPersistent ? kPersistent : kTransient;
  if (!correlation_id.empty()) {
    properties_._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
    properties_.correlation_id = bytesOf(correlation_id);
  }
  if (reply.error) {
    properties_._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    properties_.content_type = bytesOf(kTextPlain);
    headers_[0].key = bytesOf(kErrorCodeHeader);
    headers_[0].value.kind = AMQP_FIELD_KIND_UTF8;
    headers_[0].value.value.bytes = bytesOf(errorCodeName(reply.error->code));
    headers_[1].key = bytesOf(kErrorMessageHeader);
    headers_[1].value.kind = AMQP_FIELD_KIND_UTF8;
    headers_[1].value.value.bytes = bytesOf(reply.error->message);
    properties_.headers.num_entries = static_cast<int>(headers_.size());
    properties_.headers.entries = headers_.data();
  } else if (!reply.content_type.empty()) {
    properties_._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    properties_.content_type = bytesOf(reply.content_type);
  }
}

}  // namespace warren
