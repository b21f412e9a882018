#include "watched_connection.h"

namespace warren {
namespace {

// How soon to look again when nothing is parked: an overdue call is cut, and
// a handler parked just after gets its first heartbeat, within this time
// (plus half a heartbeat).
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

void WatchedConnection::park() noexcept {
  std::lock_guard lock(mutex_);
  parked_ = true;
  last_sent_ = Clock::now();
}

bool WatchedConnection::unpark() noexcept {
  std::unique_lock lock(mutex_);
  awaitNoSend(lock);
  parked_ = false;
  return !cut_;
}

bool WatchedConnection::parked() const noexcept {
  std::lock_guard lock(mutex_);
  return parked_;
}

std::chrono::milliseconds WatchedConnection::keepAlive(Clock::time_point now) noexcept {
  std::unique_lock lock(mutex_);
  if (connection_ == nullptr || cut_) return kIdleRecheck;
  if (!parked_) {
    connection_->cutIfOverdue(now);
    return kIdleRecheck;
  }
  // The negotiated value: the broker may have lowered what we proposed.
  const auto heartbeat = std::chrono::milliseconds(connection_->heartbeat());
  if (heartbeat.count() == 0) return kIdleRecheck;
  if (now - last_sent_ >= heartbeat / 2 && connection_->socketWritable()) {
    AmqpConnection& connection = *connection_;
    sending_ = true;
    lock.unlock();
    // A failure here shows again, and is handled, when the owner publishes.
    const bool sent = connection.sendHeartbeat();
    lock.lock();
    sending_ = false;
    if (sent) last_sent_ = now;
    send_done_.notify_all();
  }
  return heartbeat / 4;
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
