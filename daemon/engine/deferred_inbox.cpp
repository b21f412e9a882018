// SPDX-License-Identifier: Apache-2.0
#include "deferred_inbox.h"

#include <utility>

namespace warren {

void DeferredInbox::post(std::shared_ptr<DeferredReply> completed) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;  // freed here, on the plugin's thread
    try {
      completed_.push_back(std::move(completed));
      // Sequentially consistent with taker_awake_: a taker that stops being
      // awake after this store sees it in posted(), or this post sees the
      // taker asleep and signals.
      posted_count_.store(completed_.size());
    } catch (...) {
      // Out of memory: its request is redelivered once the connection ends.
      return;
    }
  }
  if (!taker_awake_.load() && !signalled_.exchange(true)) posted_.signal();
}

std::vector<std::shared_ptr<DeferredReply>> DeferredInbox::take() {
  // Before the swap: a post after it signals again.
  if (signalled_.exchange(false)) posted_.clear();
  std::vector<std::shared_ptr<DeferredReply>> taken;
  std::lock_guard lock(mutex_);
  taken.swap(completed_);
  posted_count_.store(0);
  return taken;
}

void DeferredInbox::close() noexcept {
  std::vector<std::shared_ptr<DeferredReply>> dropped;
  std::lock_guard lock(mutex_);
  closed_ = true;
  dropped.swap(completed_);
  posted_count_.store(0, std::memory_order_release);
}

}  // namespace warren
