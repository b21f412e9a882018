// SPDX-License-Identifier: Apache-2.0
// What a handler produced for one request, owned by the host.
#pragma once

#include <warren/plugin.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace warren {

class DeferredReply;
class DeferredSink;

struct HandlerError {
  warren_error_code code = WARREN_ERROR_INTERNAL;
  std::string message;
};

struct HandlerReply {
  std::string body;
  std::string content_type;
  std::optional<HandlerError> error;  // set: an error reply, body unused

  // Deferral (plugin ABI 1.1, deferred_reply.h). Set by the caller before
  // handle(): where a deferred reply's completion is posted. None: handle()
  // itself waits for the completion (or the request's deadline).
  std::shared_ptr<DeferredSink> sink;
  // Set by handle() when the plugin deferred its reply to `sink`: the
  // request is answered once that completes. body/error are then unused.
  std::shared_ptr<DeferredReply> deferred;
};

// A consumer reuses one HandlerReply, so that ordinary replies cost no
// allocation; after a reply larger than `keep_bytes` its buffer is freed,
// so that one huge reply does not pin that much memory per consumer.
inline void releaseLargeBuffers(HandlerReply& reply, std::size_t keep_bytes) {
  if (reply.body.capacity() > keep_bytes) std::string().swap(reply.body);
}

}  // namespace warren
