// What a queue's I/O thread shares with its handler threads: the live
// connection, the requests in flight, and a way to wake the I/O thread.
//
// A handler thread publishes its own reply and ack, holding `mutex` for just
// those two library calls; the I/O thread holds it around each of its own
// library calls and never while it sleeps in poll(). So the connection is
// never used by two threads at once, handlers never run on the I/O thread,
// and a reply costs no extra hand-off back to it.
//
// Held by shared_ptr from the handler pool too: a handler that overruns the
// drain timeout finds the session detached when it returns, not freed.
#pragma once

#include "amqp_connection.h"
#include "handler_pool.h"
#include "mailbox.h"

#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace warren {

// What happened on a queue since start. Readable from any thread.
struct QueueCounters {
  std::atomic<std::uint64_t> received{0};          // deliveries
  std::atomic<std::uint64_t> replied{0};           // success replies published and acked
  std::atomic<std::uint64_t> replied_error{0};     // error replies published and acked
  std::atomic<std::uint64_t> missing_reply_to{0};  // acked without a reply
  std::atomic<std::uint64_t> too_large{0};         // answered "too_large" unread
  std::atomic<std::uint64_t> returned{0};          // replies the broker could not route
  std::atomic<std::uint64_t> stale{0};             // results of a lost session, dropped
  std::atomic<std::uint64_t> requeued{0};          // handed back at shutdown
  std::atomic<std::uint64_t> sessions_lost{0};     // connection/channel/consumer losses
  std::atomic<std::uint64_t> blocked{0};           // connection.blocked notifications
};

class LiveSession {
 public:
  explicit LiveSession(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}

  // Guards everything below marked "under mutex".
  std::mutex& mutex() noexcept { return mutex_; }

  // I/O thread, under mutex: a session starts serving / ends.
  void attach(AmqpConnection* connection, std::uint64_t session) noexcept;
  void detach() noexcept;
  // Under mutex: a delivery went to a handler / came back without one.
  void addInFlight() noexcept { ++in_flight_; }
  void removeInFlight() noexcept { --in_flight_; }
  int inFlight() const noexcept { return in_flight_; }
  // Under mutex: from now on, wake the I/O thread when in-flight reaches 0.
  void startDraining() noexcept { draining_ = true; }

  // Handler threads: publishes the reply and acks, if its session still
  // lives; a result of a lost session is dropped (the broker redelivers it).
  void answer(const Completion& completion) noexcept;

  // Publishes a reply and acks its request: reply first, then ack, on the
  // same channel. Caller holds mutex. Throws AmqpError.
  void publishReply(AmqpConnection& connection, const Completion& completion);

  // Failures seen by handler threads, and wake-ups, for the I/O thread.
  Mailbox<std::string>& events() noexcept { return events_; }
  QueueCounters& counters() noexcept { return counters_; }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mutex_;
  AmqpConnection* connection_ = nullptr;  // under mutex
  std::uint64_t session_ = 0;             // under mutex
  int in_flight_ = 0;                     // under mutex
  bool draining_ = false;                 // under mutex
  Mailbox<std::string> events_;
  QueueCounters counters_;
};

}  // namespace warren
