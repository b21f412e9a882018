// SPDX-License-Identifier: Apache-2.0
// What serves one queue's requests: a plugin instance in warrend's process,
// or a pool of worker processes (daemon/workers).
#pragma once

#include "handler_reply.h"

#include <warren/plugin.h>

#include <chrono>

namespace warren {

class Handler {
 public:
  using Clock = std::chrono::steady_clock;

  virtual ~Handler() = default;
  Handler() = default;
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

  // Answers one request into `reply` (reset first); thread-safe. Returns
  // once the reply is ready: a handler error, deadline_exceeded and
  // handler_crashed are replies too. `request.deadline_ms` is set.
  virtual void handle(warren_request request, HandlerReply& reply) const noexcept = 0;

  // A handler that completes its replies by itself (a worker pool) is
  // driven by the thread holding the queue's connection: that thread polls
  // pollFd() beside its socket and calls drive() when it is readable or
  // when wakeAt() has come; drive() completes what is ready into the
  // replies' sinks. pollFd() -1: nothing to drive (a plugin in warrend).
  virtual int pollFd() const noexcept { return -1; }
  virtual Clock::time_point wakeAt() const noexcept { return Clock::time_point::max(); }
  virtual void drive() const noexcept {}
};

}  // namespace warren
