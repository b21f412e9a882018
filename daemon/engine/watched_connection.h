// A consumer's connection as its queue's HeartbeatKeeper thread sees it.
//
// A consumer runs its handler on the thread that owns the connection, so a
// request costs no hand-off between threads. That thread cannot watch
// itself, though:
//   - rabbitmq-c sends heartbeats only from inside its own calls, so while a
//     handler runs (the connection is *parked*) the keeper sends them;
//   - rabbitmq-c waits forever in a send the broker does not read, so the
//     keeper cuts (shuts down) a connection whose call is overdue
//     (AmqpConnection::cutIfOverdue), and the QueueService cuts every one
//     still open at the drain deadline.
// The owner attaches its connection for the life of a session (Session) and
// uses it freely, except between park() and unpark(). No socket I/O happens
// under this object's mutex: a heartbeat is sent outside it, only when the
// socket has room for it (so it cannot block), and detach() and unpark()
// wait for it to finish.
#pragma once

#include "amqp_connection.h"

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace warren {

class WatchedConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // Attaches `connection` from construction to destruction; declare it
  // after the connection, so that it detaches first.
  class Session {
   public:
    Session(WatchedConnection& watch, AmqpConnection& connection) noexcept : watch_(watch) {
      watch_.attach(connection);
    }
    ~Session() { watch_.detach(); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

   private:
    WatchedConnection& watch_;
  };

  // Owner, before running a handler.
  void park() noexcept;
  // Owner, after the handler: true when the connection is still usable,
  // false when it was cut meanwhile (the drain deadline passed).
  bool unpark() noexcept;
  bool parked() const noexcept;

  // Keeper: sends a heartbeat when parked and nothing was sent for half the
  // negotiated heartbeat; cuts the connection when its owner's call is
  // overdue. Returns how soon to look again.
  std::chrono::milliseconds keepAlive(Clock::time_point now) noexcept;
  // At the drain deadline: cuts the connection, if one is attached, so that
  // whatever its owner waits on fails at once. True when a handler was
  // running on it (its thread is then left to finish alone).
  bool cutAtDeadline() noexcept;

 private:
  void attach(AmqpConnection& connection) noexcept;
  void detach() noexcept;
  // Waits, with the lock held by `lock`, until no heartbeat is being sent.
  void awaitNoSend(std::unique_lock<std::mutex>& lock) noexcept;

  mutable std::mutex mutex_;
  std::condition_variable send_done_;
  AmqpConnection* connection_ = nullptr;  // set while attached
  bool parked_ = false;
  bool sending_ = false;  // the keeper is sending a heartbeat, unlocked
  bool cut_ = false;      // cut at the drain deadline
  Clock::time_point last_sent_;
};

}  // namespace warren
