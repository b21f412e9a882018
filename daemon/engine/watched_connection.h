// SPDX-License-Identifier: Apache-2.0
// A queue's connection as its keeper thread sees it (queue_connection.h).
//
// Handlers run on the thread that holds the connection, so a request costs
// no hand-off between threads. That thread cannot watch itself, though:
//   - rabbitmq-c sends heartbeats only from inside its own calls, so while a
//     handler runs (the connection is *parked*) the keeper sends them;
//   - a handler that runs long would keep every other consumer of the queue
//     waiting, so past a short time the keeper *takes the connection over*
//     and gives it to another thread; the handler's thread, when it returns,
//     hands its reply to that one;
//   - rabbitmq-c waits forever in a send the broker does not read, so the
//     keeper cuts (shuts down) a connection whose call is overdue
//     (AmqpConnection::cutIfOverdue), and the queue cuts it at the drain
//     deadline.
// The holder attaches its connection for the life of a session (Session) and
// uses it freely, except between park() and unpark(). No socket I/O happens
// under this object's mutex: a heartbeat is sent outside it, only when the
// socket has room for it (so it cannot block), and detach(), unpark() and a
// take-over wait for it to finish.
#pragma once

#include "amqp_connection.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
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

  // Holder, before running a handler: returns the ticket for unpark().
  std::uint64_t park() noexcept;
  enum class Unparked {
    kHeld,       // the connection is still this thread's
    kTakenOver,  // another thread holds it now: hand the reply over
    kCut,        // cut at the drain deadline while parked
  };
  // After the handler, on the thread that parked with `ticket` (which
  // holds the connection again only if it was not taken over meanwhile;
  // other threads may have held it and parked since).
  Unparked unpark(std::uint64_t ticket) noexcept;
  bool parked() const noexcept;
  // Parks so far (for a keeper that wants to know whether requests flow).
  std::uint64_t parks() const noexcept;

  struct Watch {
    std::chrono::milliseconds next;  // how soon to look again
    bool taken_over = false;         // the holder's handler ran past `hand_off_after`
  };
  // Keeper: sends a heartbeat when parked and nothing was sent for half the
  // negotiated heartbeat; takes the connection over from a handler parked
  // for `hand_off_after` (the caller then gives it to another thread); cuts
  // the connection when its holder's call is overdue.
  Watch keep(Clock::time_point now, std::chrono::milliseconds hand_off_after) noexcept;
  // At the drain deadline: cuts the connection, if one is attached, so that
  // whatever its holder waits on fails at once. True when a handler was
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
  bool parked_ = false;                   // by the holder, with ticket parks_
  bool sending_ = false;                  // the keeper is sending a heartbeat, unlocked
  bool cut_ = false;                      // cut at the drain deadline
  std::uint64_t parks_ = 0;               // tickets given
  Clock::time_point parked_at_;
  Clock::time_point last_sent_;
};

}  // namespace warren
