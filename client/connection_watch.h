// SPDX-License-Identifier: Apache-2.0
// Watches the client I/O thread's connection from a thread of its own, for
// the two moments that thread cannot look after the connection itself:
//   - rabbitmq-c waits forever in a send the broker does not read (a stuck
//     peer, a broker that stopped reading). The I/O thread marks each send
//     with the time by which it must be done (Send); the watcher cuts
//     (shutdown(2)) the connection when it is not. The send then fails, and
//     the calls waiting on that connection fail with it instead of hanging.
//   - rabbitmq-c sends heartbeats only from inside its own calls, and a
//     completion callback runs user code on the I/O thread. While one runs
//     (Callback) the watcher sends the heartbeats, so that a callback longer
//     than two heartbeats does not make the broker drop the connection.
// No socket I/O happens under the watcher's mutex: a heartbeat is sent only
// into a socket with room for it, and a Callback ends only once such a send
// is over.
//
// Costs the I/O thread two uncontended lock round trips per send and per
// callback. The watcher wakes at the earliest send deadline and every
// heartbeat/4 while connected (as the I/O thread itself does when idle), and
// sleeps indefinitely while disconnected.
#pragma once

#include "amqp_connection.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace warren::client_detail {

class ConnectionWatch {
 public:
  using Clock = std::chrono::steady_clock;

  ConnectionWatch();
  // Stops and joins the watching thread.
  ~ConnectionWatch();
  ConnectionWatch(const ConnectionWatch&) = delete;
  ConnectionWatch& operator=(const ConnectionWatch&) = delete;

  // I/O thread: the connection to watch, once it is open; detach() before
  // destroying it (it waits for a heartbeat the watcher is sending).
  void attach(AmqpConnection& connection) noexcept;
  void detach() noexcept;

  // One send on the attached connection that must be done by `deadline`.
  class Send {
   public:
    Send(ConnectionWatch& watch, Clock::time_point deadline) noexcept;
    ~Send();
    Send(const Send&) = delete;
    Send& operator=(const Send&) = delete;

   private:
    ConnectionWatch& watch_;
  };

  // User code running on the I/O thread, which leaves the attached
  // connection alone meanwhile.
  class Callback {
   public:
    explicit Callback(ConnectionWatch& watch) noexcept;
    ~Callback();
    Callback(const Callback&) = delete;
    Callback& operator=(const Callback&) = delete;

   private:
    ConnectionWatch& watch_;
  };

  // Connections cut for a stalled send, and heartbeats the watcher sent
  // during callbacks, so far (ClientStats).
  std::uint64_t cuts() const;
  std::uint64_t heartbeatsSent() const;

 private:
  void run();
  // With the lock held: sends one heartbeat, unlocked meanwhile.
  void sendHeartbeat(std::unique_lock<std::mutex>& lock, Clock::time_point now);
  void awaitNoHeartbeat(std::unique_lock<std::mutex>& lock) noexcept;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  AmqpConnection* connection_ = nullptr;  // attached, if any
  bool cut_ = false;                      // connection_ was cut
  Clock::duration tick_{};                // heartbeat/4; zero: no heartbeats
  bool in_send_ = false;
  Clock::time_point send_deadline_;
  bool in_callback_ = false;
  Clock::time_point callback_started_;
  bool sending_heartbeat_ = false;  // the watcher is in a send, unlocked
  Clock::time_point last_heartbeat_;
  Clock::time_point sleeping_until_ = Clock::time_point::max();
  std::uint64_t cuts_ = 0;
  std::uint64_t heartbeats_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace warren::client_detail
