// SPDX-License-Identifier: Apache-2.0
// Many producers, one consumer that sleeps in poll(): items go in under a
// mutex and the consumer's eventfd becomes readable. The consumer takes
// everything at once, so producers wake it once per batch, not per item, and
// a consumer that feeds itself (a client callback submitting the next call)
// makes no syscall at all.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <vector>

namespace warren {

template <class T>
class Mailbox {
 public:
  Mailbox() : event_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  ~Mailbox() { ::close(event_fd_); }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // `wake` false: the consumer itself is pushing and will drain before it
  // sleeps, so the eventfd write (a syscall) is saved.
  void push(T item, bool wake_consumer = true) {
    std::lock_guard lock(mutex_);
    // Not empty, or signalled: the consumer will look before it sleeps.
    if (items_.empty() && wake_consumer) signal();
    items_.push_back(std::move(item));
  }

  bool empty() {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }

  // Everything pushed so far, in order. Swaps into `out` (cleared first) so
  // the consumer can reuse one vector's capacity. Reads the eventfd only when
  // it was written: a consumer fed by its own pushes makes no syscall here.
  void drainInto(std::vector<T>& out) {
    out.clear();
    std::lock_guard lock(mutex_);
    // Read and cleared under the lock, as signal() writes under it: the fd
    // is readable exactly while signalled_ is set.
    if (signalled_) {
      std::uint64_t count = 0;
      [[maybe_unused]] const ssize_t unused = ::read(event_fd_, &count, sizeof count);
      signalled_ = false;
    }
    out.swap(items_);
  }

  // Readable while items (or a wake()) are waiting.
  int fd() const noexcept { return event_fd_; }

  // Wakes the consumer without an item (a stop request, say).
  void wake() noexcept {
    std::lock_guard lock(mutex_);
    signal();
  }

 private:
  // Under mutex_.
  void signal() noexcept {
    if (signalled_) return;
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t unused = ::write(event_fd_, &one, sizeof one);
    signalled_ = true;
  }

  int event_fd_;
  std::mutex mutex_;
  std::vector<T> items_;
  bool signalled_ = false;  // the eventfd was written and not read since
};

}  // namespace warren
