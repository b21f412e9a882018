// SPDX-License-Identifier: Apache-2.0
#include "connection_watch.h"

#include <algorithm>

namespace warren::client_detail {

ConnectionWatch::ConnectionWatch() : thread_(&ConnectionWatch::run, this) {}

ConnectionWatch::~ConnectionWatch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void ConnectionWatch::attach(AmqpConnection& connection) noexcept {
  {
    std::lock_guard lock(mutex_);
    connection_ = &connection;
    cut_ = false;
    in_send_ = false;
    in_callback_ = false;
    tick_ = std::chrono::duration_cast<Clock::duration>(connection.heartbeat()) / 4;
    last_heartbeat_ = Clock::now();
  }
  changed_.notify_one();  // the watcher may sleep indefinitely: start ticking
}

void ConnectionWatch::detach() noexcept {
  std::unique_lock lock(mutex_);
  awaitNoHeartbeat(lock);
  connection_ = nullptr;
}

void ConnectionWatch::awaitNoHeartbeat(std::unique_lock<std::mutex>& lock) noexcept {
  // Bounded: a heartbeat is only sent into a socket with room for it.
  changed_.wait(lock, [this] { return !sending_heartbeat_; });
}

ConnectionWatch::Send::Send(ConnectionWatch& watch, Clock::time_point deadline) noexcept
    : watch_(watch) {
  bool wake = false;
  {
    std::lock_guard lock(watch_.mutex_);
    watch_.in_send_ = true;
    watch_.send_deadline_ = deadline;
    // The watcher sleeps until its next tick or an earlier deadline: woken
    // only when this one is due sooner.
    wake = deadline < watch_.sleeping_until_;
  }
  if (wake) watch_.changed_.notify_all();
}

ConnectionWatch::Send::~Send() {
  std::lock_guard lock(watch_.mutex_);
  watch_.in_send_ = false;
}

ConnectionWatch::Callback::Callback(ConnectionWatch& watch) noexcept : watch_(watch) {
  std::lock_guard lock(watch_.mutex_);
  watch_.in_callback_ = true;
  watch_.callback_started_ = Clock::now();
}

ConnectionWatch::Callback::~Callback() {
  std::unique_lock lock(watch_.mutex_);
  watch_.awaitNoHeartbeat(lock);
  watch_.in_callback_ = false;
}

std::uint64_t ConnectionWatch::cuts() const {
  std::lock_guard lock(mutex_);
  return cuts_;
}

std::uint64_t ConnectionWatch::heartbeatsSent() const {
  std::lock_guard lock(mutex_);
  return heartbeats_;
}

void ConnectionWatch::sendHeartbeat(std::unique_lock<std::mutex>& lock, Clock::time_point now) {
  AmqpConnection& connection = *connection_;
  sending_heartbeat_ = true;
  lock.unlock();
  // A failure shows again, and is handled, on the I/O thread's next read.
  const bool sent = connection.sendHeartbeat();
  lock.lock();
  sending_heartbeat_ = false;
  if (sent) {
    last_heartbeat_ = now;
    ++heartbeats_;
  }
  changed_.notify_all();
}

void ConnectionWatch::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto now = Clock::now();
    auto wake = Clock::time_point::max();
    if (connection_ != nullptr && !cut_) {
      if (in_send_) wake = std::min(wake, send_deadline_);
      if (tick_ > Clock::duration::zero()) wake = std::min(wake, now + tick_);
    }
    sleeping_until_ = wake;
    if (wake == Clock::time_point::max()) {
      changed_.wait(lock);
    } else {
      changed_.wait_until(lock, wake);
    }
    sleeping_until_ = Clock::time_point::max();
    if (stopping_ || connection_ == nullptr || cut_) continue;
    const auto woke = Clock::now();
    if (in_send_ && woke >= send_deadline_) {
      connection_->cut();  // shutdown(2): does not block
      cut_ = true;
      ++cuts_;
      continue;
    }
    // A callback running for a tick: nobody else sends for this connection.
    // Heartbeats every two ticks (half the heartbeat), as rabbitmq-c would.
    if (in_callback_ && tick_ > Clock::duration::zero() && woke - callback_started_ >= tick_ &&
        woke - last_heartbeat_ >= 2 * tick_ && connection_->socketWritable()) {
      sendHeartbeat(lock, woke);
    }
  }
}

}  // namespace warren::client_detail
