// SPDX-License-Identifier: Apache-2.0
// Where a queue's deferred replies arrive once their plugin completes them
// (plugin_host/deferred_reply.h): posted from the plugin's threads, taken by
// the thread holding the queue's connection, which poll()s fd() beside its
// socket and publishes them.
#pragma once

#include "deferred_reply.h"
#include "wake_event.h"

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace warren {

class DeferredInbox final : public DeferredSink {
 public:
  void post(std::shared_ptr<DeferredReply> completed) noexcept override;
  // True when something was posted since the last take(): cheap, for the
  // holder's every turn.
  bool posted() const noexcept { return posted_count_.load() > 0; }
  // The taker says it is awake and calls posted() before it next waits on
  // fd() (it drives a handler that posts here from its own thread): a post
  // meanwhile need not make fd() readable, which saves a write and a read
  // of the eventfd per reply.
  void setTakerAwake(bool awake) noexcept { taker_awake_.store(awake); }
  // Everything posted since the last take(), in order; fd() is quiet again.
  std::vector<std::shared_ptr<DeferredReply>> take();
  // Nobody takes from here any more (the queue stopped): what was posted is
  // freed, and what is posted later at once.
  void close() noexcept;
  // Readable while something waits to be taken.
  int fd() const noexcept { return posted_.fd(); }

 private:
  WakeEvent posted_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<DeferredReply>> completed_;  // under mutex_
  bool closed_ = false;                                    // under mutex_
  std::atomic<std::size_t> posted_count_{0};               // completed_.size()
  std::atomic<bool> taker_awake_{false};
  std::atomic<bool> signalled_{false};  // posted_ made readable since the last take()
};

}  // namespace warren
