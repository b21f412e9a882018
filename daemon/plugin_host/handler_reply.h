// What a handler produced for one request, owned by the host.
#pragma once

#include <warren/plugin.h>

#include <cstddef>
#include <optional>
#include <string>

namespace warren {

struct HandlerError {
  warren_error_code code = WARREN_ERROR_INTERNAL;
  std::string message;
};

struct HandlerReply {
  std::string body;
  std::string content_type;
  std::optional<HandlerError> error;  // set: an error reply, body unused
};

// A consumer reuses one HandlerReply, so that ordinary replies cost no
// allocation; after a reply larger than `keep_bytes` its buffer is freed,
// so that one huge reply does not pin that much memory per consumer.
inline void releaseLargeBuffers(HandlerReply& reply, std::size_t keep_bytes) {
  if (reply.body.capacity() > keep_bytes) std::string().swap(reply.body);
}

}  // namespace warren
