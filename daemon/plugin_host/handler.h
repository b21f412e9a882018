// What serves one queue's requests: a plugin instance in warrend's process,
// or a pool of worker processes (daemon/workers).
#pragma once

#include "handler_reply.h"

#include <warren/plugin.h>

namespace warren {

class Handler {
 public:
  virtual ~Handler() = default;
  Handler() = default;
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

  // Answers one request into `reply` (reset first); thread-safe. Returns
  // once the reply is ready: a handler error, deadline_exceeded and
  // handler_crashed are replies too. `request.deadline_ms` is set.
  virtual void handle(warren_request request, HandlerReply& reply) const noexcept = 0;
};

}  // namespace warren
