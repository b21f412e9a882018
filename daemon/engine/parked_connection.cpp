#include "parked_connection.h"

namespace warren {
namespace {

// How soon to look again when nothing is parked: a handler parked just after
// gets its first heartbeat within this time (plus half a heartbeat).
constexpr std::chrono::milliseconds kIdleRecheck{1000};

}  // namespace

void ParkedConnection::park(AmqpConnection& connection) noexcept {
  std::lock_guard lock(mutex_);
  connection_ = &connection;
  last_sent_ = Clock::now();
}

bool ParkedConnection::unpark() noexcept {
  std::lock_guard lock(mutex_);
  connection_ = nullptr;
  return !closed_;
}

bool ParkedConnection::parked() const noexcept {
  std::lock_guard lock(mutex_);
  return connection_ != nullptr;
}

std::chrono::milliseconds ParkedConnection::keepAlive(Clock::time_point now) noexcept {
  std::lock_guard lock(mutex_);
  if (connection_ == nullptr || closed_) return kIdleRecheck;
  // The negotiated value: the broker may have lowered what we proposed.
  const auto heartbeat = std::chrono::milliseconds(connection_->heartbeat());
  if (heartbeat.count() == 0) return kIdleRecheck;
  if (now - last_sent_ >= heartbeat / 2) {
    // A failure here shows again, and is handled, when the owner publishes.
    if (connection_->sendHeartbeat()) last_sent_ = now;
  }
  return heartbeat / 4;
}

bool ParkedConnection::closeIfParked() noexcept {
  std::lock_guard lock(mutex_);
  if (connection_ == nullptr) return false;
  if (!closed_) connection_->close();
  closed_ = true;
  return true;
}

}  // namespace warren
