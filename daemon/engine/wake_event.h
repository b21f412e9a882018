// SPDX-License-Identifier: Apache-2.0
// An eventfd that one thread signals and another poll()s beside a socket,
// then clears: "something was posted for you".
#pragma once

namespace warren {

class WakeEvent {
 public:
  WakeEvent();
  ~WakeEvent();
  WakeEvent(const WakeEvent&) = delete;
  WakeEvent& operator=(const WakeEvent&) = delete;

  // Makes fd() readable; safe from any thread.
  void signal() noexcept;
  // Makes fd() quiet again; true when it had been signalled.
  bool clear() noexcept;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace warren
