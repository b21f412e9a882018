// SPDX-License-Identifier: Apache-2.0
#include "deferred_reply.h"

#include <chrono>
#include <new>
#include <string>
#include <utility>

namespace warren {

warren_reply* DeferredReply::begin(HandlerReply& reply, std::shared_ptr<DeferredSink> sink,
                                   Timing timing) noexcept {
  std::shared_ptr<DeferredReply> handle;
  try {
    handle.reset(new DeferredReply(std::move(sink), timing));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
  // What the plugin wrote before deferring is kept.
  handle->reply_.body.swap(reply.body);
  handle->reply_.content_type.swap(reply.content_type);
  handle->reply_.error.swap(reply.error);
  handle->raw_.out = &handle->reply_;
  handle->raw_.deferred = handle.get();
  handle->self_ = handle;
  warren_reply* raw = &handle->raw_;
  reply.deferred = std::move(handle);
  return raw;
}

void DeferredReply::complete(warren_reply* handle) noexcept {
  if (handle == nullptr || handle->deferred == nullptr) return;
  DeferredReply& self = *handle->deferred;
  State expected = State::kPending;
  self.state_.compare_exchange_strong(expected, State::kCompleted);
  // Posted either way: the host drops (and counts) a completion it no longer
  // waits for. `self` may be freed by the sink from here on.
  std::shared_ptr<DeferredSink> sink = self.sink_;
  sink->post(std::move(self.self_));
}

bool DeferredReply::answerWithoutPlugin(Dropped why) noexcept {
  dropped_ = why;
  State expected = State::kPending;
  return state_.compare_exchange_strong(expected, State::kAnswered);
}

void DeferredWaiter::post(std::shared_ptr<DeferredReply> completed) noexcept {
  // Completed after wait() answered it: nobody takes it (and keeping it
  // would keep this waiter, its sink, alive).
  if (!completed->completedInTime()) return;
  {
    std::lock_guard lock(mutex_);
    try {
      completed_.push_back(std::move(completed));
    } catch (...) {
      return;  // out of memory: the waiter answers at the deadline
    }
  }
  posted_.notify_all();
}

HandlerReply DeferredWaiter::wait(const std::shared_ptr<DeferredReply>& reply,
                                  std::int64_t deadline_ms) {
  const auto deadline =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(deadline_ms));
  std::unique_lock lock(mutex_);
  const auto posted = [&] {
    for (const auto& completed : completed_) {
      if (completed == reply) return true;
    }
    return false;
  };
  if (posted_.wait_until(lock, deadline, posted) ||
      !reply->answerWithoutPlugin(DeferredReply::Dropped::kDeadline)) {
    // Completed (perhaps just now, racing the deadline): its own reply.
    posted_.wait(lock, posted);
    std::erase(completed_, reply);
    return std::move(reply->reply());
  }
  HandlerReply expired;
  expired.error = HandlerError{WARREN_ERROR_DEADLINE_EXCEEDED,
                               "the handler deferred its reply and did not complete it by the "
                               "deadline"};
  return expired;
}

}  // namespace warren
