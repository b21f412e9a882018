// A consumer's connection while its handler runs and nobody reads it.
//
// A consumer runs its handler on the thread that owns the connection, so a
// request costs no hand-off between threads. rabbitmq-c sends heartbeats only
// from inside its own calls, though, so while a handler runs the queue's
// HeartbeatKeeper sends them instead; and at the drain deadline the
// QueueService closes the connection under a handler that overran, so the
// broker redelivers its request. Both happen under this object's mutex and
// only between park() and unpark(): the owning thread uses the connection
// freely outside that window and never inside it.
#pragma once

#include "amqp_connection.h"

#include <chrono>
#include <mutex>

namespace warren {

class ParkedConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // Owner, before running a handler.
  void park(AmqpConnection& connection) noexcept;
  // Owner, after the handler: true when the connection is still usable,
  // false when it was closed meanwhile (the drain deadline passed).
  bool unpark() noexcept;
  bool parked() const noexcept;

  // Sends a heartbeat when parked and nothing was sent for half the
  // negotiated heartbeat. Returns how soon to look again.
  std::chrono::milliseconds keepAlive(Clock::time_point now) noexcept;
  // Closes the connection if a handler is running on it; true if it was.
  bool closeIfParked() noexcept;

 private:
  mutable std::mutex mutex_;
  AmqpConnection* connection_ = nullptr;  // set while parked
  Clock::time_point last_sent_;
  bool closed_ = false;
};

}  // namespace warren
