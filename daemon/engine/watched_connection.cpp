// SPDX-License-Identifier: Apache-2.0
#include "watched_connection.h"

#include <algorithm>

namespace warren {
namespace {

// How soon to look again when nothing is parked: an overdue call is cut
// within this time.
constexpr std::chrono::milliseconds kIdleRecheck{1000};

}  // namespace

void WatchedConnection::attach(AmqpConnection& connection) noexcept {
  std::lock_guard lock(mutex_);
  connection_ = &connection;
  parked_ = false;
  cut_ = false;
}

void WatchedConnection::detach() noexcept {
  std::unique_lock lock(mutex_);
  awaitNoSend(lock);
  connection_ = nullptr;
  parked_ = false;
}

void WatchedConnection::awaitNoSend(std::unique_lock<std::mutex>& lock) noexcept {
  // Bounded: a heartbeat is only sent into a socket with room for it.
  send_done_.wait(lock, [this] { return !sending_; });
}

std::uint64_t WatchedConnection::park() noexcept {
  std::lock_guard lock(mutex_);
  parked_ = true;
  parked_at_ = Clock::now();
  last_sent_ = parked_at_;
  return ++parks_;
}

WatchedConnection::Unparked WatchedConnection::unpark(std::uint64_t ticket) noexcept {
  std::unique_lock lock(mutex_);
  awaitNoSend(lock);
  // A take-over unparks, and whoever holds the connection next parks with
  // a newer ticket.
  if (!parked_ || ticket != parks_) return Unparked::kTakenOver;
  parked_ = false;
  return cut_ ? Unparked::kCut : Unparked::kHeld;
}

bool WatchedConnection::parked() const noexcept {
  std::lock_guard lock(mutex_);
  return parked_;
}

std::uint64_t WatchedConnection::parks() const noexcept {
  std::lock_guard lock(mutex_);
  return parks_;
}

WatchedConnection::Watch WatchedConnection::keep(
    Clock::time_point now, std::chrono::milliseconds hand_off_after) noexcept {
  std::unique_lock lock(mutex_);
  if (connection_ == nullptr || cut_) return {kIdleRecheck};
  if (!parked_) {
    connection_->cutIfOverdue(now);
    return {kIdleRecheck};
  }
  if (now - parked_at_ >= hand_off_after) {
    // No heartbeat is being sent: only this thread sends them.
    parked_ = false;
    return {kIdleRecheck, true};
  }
  auto next = std::chrono::ceil<std::chrono::milliseconds>(parked_at_ + hand_off_after - now);
  // The negotiated value: the broker may have lowered what we proposed.
  const auto heartbeat = std::chrono::milliseconds(connection_->heartbeat());
  if (heartbeat.count() == 0) return {next};
  if (now - last_sent_ >= heartbeat / 2 && connection_->socketWritable()) {
    AmqpConnection& connection = *connection_;
    sending_ = true;
    lock.unlock();
    // A failure here shows again, and is handled, when the holder publishes.
    const bool sent = connection.sendHeartbeat();
    lock.lock();
    sending_ = false;
    if (sent) last_sent_ = now;
    send_done_.notify_all();
  }
  return {std::min(next, std::chrono::milliseconds(heartbeat / 4))};
}

bool WatchedConnection::cutAtDeadline() noexcept {
  std::unique_lock lock(mutex_);
  if (connection_ == nullptr) return false;
  awaitNoSend(lock);
  connection_->cut();
  cut_ = true;
  return parked_;
}

}  // namespace warren
