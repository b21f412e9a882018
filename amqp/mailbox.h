// Many producers, one consumer that sleeps in poll(): items go in under a
// mutex and the consumer's eventfd becomes readable. The consumer takes
// everything at once, so producers wake it once per batch, not per item.
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
    bool was_empty = false;
    {
      std::lock_guard lock(mutex_);
      was_empty = items_.empty();
      items_.push_back(std::move(item));
    }
    if (was_empty && wake_consumer) wake();
  }

  bool empty() {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }

  // Everything pushed so far, in order. Swaps into `out` (cleared first) so
  // the consumer can reuse one vector's capacity.
  void drainInto(std::vector<T>& out) {
    out.clear();
    // Clear the counter before taking the items: a push racing with us then
    // leaves the fd readable instead of losing its wake-up.
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t unused = ::read(event_fd_, &count, sizeof count);
    std::lock_guard lock(mutex_);
    out.swap(items_);
  }

  // Readable while items (or a wake()) are waiting.
  int fd() const noexcept { return event_fd_; }

  // Wakes the consumer without an item (a stop request, say).
  void wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t unused = ::write(event_fd_, &one, sizeof one);
  }

 private:
  int event_fd_;
  std::mutex mutex_;
  std::vector<T> items_;
};

}  // namespace warren
