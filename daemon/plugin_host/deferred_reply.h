// SPDX-License-Identifier: Apache-2.0
// A reply a plugin deferred (warren_host_api.reply_defer, since ABI 1.1):
// the handle it completes later, from any thread, and where that completion
// goes.
//
// Two parties hold a DeferredReply: the plugin, through the warren_reply*
// reply_defer gave it, until it calls reply_complete; and whoever answers
// the request (the engine, or PluginInstance::handle() waiting for it).
// The one that moves it out of "pending" first decides the answer: the
// plugin by completing it (its reply is sent), the host by answering
// without it (its deadline passed, its connection was lost), after which a
// completion is only freed.
#pragma once

#include "handler_reply.h"

#include <warren/plugin.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

// The opaque reply handle of include/warren/plugin.h, as the host defines
// it: handle()'s reply on the host's stack, or a deferred one inside its
// DeferredReply.
struct warren_reply {
  // Where reply_write and friends land; null: they are ignored (handle()'s
  // own reply once deferred).
  warren::HandlerReply* out = nullptr;
  // handle()'s own reply: the HandlerReply reply_defer moves into the
  // handle (and marks deferred). Null on a deferred handle.
  warren::HandlerReply* deferrable = nullptr;
  // A deferred handle: the object it is part of.
  warren::DeferredReply* deferred = nullptr;
};

namespace warren {

// Where a completed DeferredReply is posted; implemented by whoever answers
// deferred requests. post() is called on the plugin's thread.
class DeferredSink {
 public:
  virtual ~DeferredSink() = default;
  DeferredSink() = default;
  DeferredSink(const DeferredSink&) = delete;
  DeferredSink& operator=(const DeferredSink&) = delete;
  // Takes the completed reply; must not block for long, must not throw.
  virtual void post(std::shared_ptr<DeferredReply> completed) noexcept = 0;
};

class DeferredReply {
 public:
  // Why the host answered a request without its deferred reply.
  enum class Dropped {
    kNo,              // not answered without it
    kDeadline,        // its deadline passed: answered deadline_exceeded
    kConnectionLost,  // the connection it came on was lost: redelivered
  };

  // Who holds a deferred request to its deadline.
  enum class Timing {
    kByHost,  // a plugin's: the host answers deadline_exceeded at the deadline
    // A worker pool's: it kills the worker at the deadline and completes
    // deadline_exceeded itself; the host takes that answer as final and
    // expires the request only as a backstop, well past the deadline.
    kByHandler,
  };

  // reply_defer(): a pending handle holding what `reply` had so far (moved),
  // posted to `sink` when completed. Returns the handle the plugin gets;
  // the DeferredReply keeps itself alive until reply_complete. Null when out
  // of memory.
  static warren_reply* begin(HandlerReply& reply, std::shared_ptr<DeferredSink> sink,
                             Timing timing = Timing::kByHost) noexcept;
  // reply_complete(): hands the reply to its sink. Once per handle.
  static void complete(warren_reply* handle) noexcept;

  // The host answers the request without the plugin: true when it was still
  // pending; false when the plugin completed it first (its completion is
  // then posted, or about to be). `why` is kept for droppedBecause().
  bool answerWithoutPlugin(Dropped why) noexcept;
  // True once the plugin completed it before the host answered without it:
  // reply() is its final answer.
  bool completedInTime() const noexcept { return state_.load() == State::kCompleted; }
  // Why it was dropped (set by answerWithoutPlugin, whichever way it went).
  Dropped droppedBecause() const noexcept { return dropped_; }
  Timing timing() const noexcept { return timing_; }
  // The plugin's reply: for the host to read once the handle was posted
  // to its sink.
  HandlerReply& reply() noexcept { return reply_; }

  DeferredReply(const DeferredReply&) = delete;
  DeferredReply& operator=(const DeferredReply&) = delete;
  ~DeferredReply() = default;

 private:
  enum class State { kPending, kCompleted, kAnswered };
  DeferredReply(std::shared_ptr<DeferredSink> sink, Timing timing)
      : timing_(timing), sink_(std::move(sink)) {}

  std::atomic<State> state_{State::kPending};
  Dropped dropped_ = Dropped::kNo;  // the host's thread only
  const Timing timing_;
  HandlerReply reply_;
  warren_reply raw_;
  std::shared_ptr<DeferredSink> sink_;
  // The plugin's reference: from begin() to complete().
  std::shared_ptr<DeferredReply> self_;
};

// A DeferredSink for a caller that waits on its own thread: handle() called
// with no sink of the caller's (a worker process, a test) waits here for
// the plugin to complete its deferred reply, or for its deadline.
class DeferredWaiter final : public DeferredSink {
 public:
  void post(std::shared_ptr<DeferredReply> completed) noexcept override;
  // Waits until `reply` is posted or `deadline_ms` (ms since the Unix epoch)
  // passes; returns the reply's final answer: the plugin's, or a
  // deadline_exceeded error.
  HandlerReply wait(const std::shared_ptr<DeferredReply>& reply, std::int64_t deadline_ms);

 private:
  std::mutex mutex_;
  std::condition_variable posted_;
  std::vector<std::shared_ptr<DeferredReply>> completed_;  // under mutex_
};

}  // namespace warren
