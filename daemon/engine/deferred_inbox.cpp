#include "deferred_inbox.h"

#include <utility>

namespace warren {

void DeferredInbox::post(std::shared_ptr<DeferredReply> completed) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;  // freed here, on the plugin's thread
    try {
      completed_.push_back(std::move(completed));
      posted_count_.store(completed_.size(), std::memory_order_release);
    } catch (...) {
      // Out of memory: its request is redelivered once the connection ends.
      return;
    }
  }
  posted_.signal();
}

std::vector<std::shared_ptr<DeferredReply>> DeferredInbox::take() {
  posted_.clear();
  std::vector<std::shared_ptr<DeferredReply>> taken;
  std::lock_guard lock(mutex_);
  taken.swap(completed_);
  posted_count_.store(0, std::memory_order_release);
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
