// SPDX-License-Identifier: Apache-2.0
// One queue's connection to the broker and the threads that serve it.
//
// The connection carries a channel per consumer (prefetch P, manual acks)
// and one channel in confirm mode for the replies to persistent requests.
// One thread at a time *holds* it: reads every channel's frames, runs each
// request's handler inline, publishes the reply and acks the request. A
// request therefore costs no hand-off between threads (on a 2-core machine
// that wake-up is CPU taken from the broker), and a daemon serving many
// queues opens one connection per queue rather than one per consumer (idle
// connections cost the broker more than idle channels: docs/performance.md).
//
// Two things keep a slow handler from holding the queue's other consumers
// (when there is more than one):
//   - a handler whose recent runs took longer than kInlineBudget on average
//     is given to another thread at once; the holder goes on reading, and
//     publishes the reply when that thread posts it back;
//   - a handler that runs past kHandOffAfter unexpectedly has the
//     connection taken over by the queue's keeper thread, which gives it to
//     another thread (as Go's scheduler retakes a processor from a thread
//     blocked in a system call); the handler's thread posts its reply back
//     the same way when it returns.
// Threads are started when first needed and kept as spares: at most one per
// consumer plus one. So up to `consumers` handlers run at once, each
// consumer's requests one at a time in order, and fast handlers never leave
// the thread that read them.
//
// A plugin may defer its reply (plugin ABI 1.1): its handle() returns at
// once, the request stays in flight (DeferredRequest), and the consumer
// takes its next delivery, so with prefetch N one consumer has up to N
// requests in flight. The plugin completes the reply from any thread into
// the queue's DeferredInbox; the holder, which poll()s the inbox beside the
// socket, publishes it and acks the request (rabbitmq-c's one thread per
// connection holds). A deferred request still pending at its deadline is
// answered deadline_exceeded, and its late completion dropped and counted.
//
// While a handler runs inline the keeper sends the connection's heartbeats,
// and it cuts the connection when a send stalls (watched_connection.h).
// When the connection is lost the holder opens a new one after a capped,
// jittered backoff; requests it was answering are redelivered by the broker
// and answered again.
#pragma once

#include "amqp_connection.h"
#include "backoff.h"
#include "broker_rotation.h"
#include "deferred_inbox.h"
#include "delivery_assembler.h"
#include "handler_reply.h"
#include "log_throttle.h"
#include "metrics_outcome.h"
#include "queue_runtime.h"
#include "request_policy.h"
#include "wake_event.h"
#include "watched_connection.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace warren {

class QueueConnection : public std::enable_shared_from_this<QueueConnection> {
 public:
  using Clock = std::chrono::steady_clock;

  // How long a handler runs on the connection's thread before the keeper
  // gives the connection to another one (when the queue has more than one
  // consumer).
  static constexpr std::chrono::milliseconds kHandOffAfter{10};
  // A handler whose runs have lately taken longer than this on average
  // (a moving average) is not run inline: the thread holding the connection
  // gives the request to another thread at once and goes on reading (when
  // the queue has more than one consumer).
  static constexpr std::chrono::microseconds kInlineBudget{100};
  // A request whose handler holds it to its deadline itself (a worker
  // pool: DeferredReply::Timing::kByHandler) is expired here only this
  // long after its deadline, should the handler fail to.
  static constexpr std::chrono::milliseconds kHandlerDeadlineBackstop{1000};

  explicit QueueConnection(std::shared_ptr<QueueRuntime> runtime);
  QueueConnection(const QueueConnection&) = delete;
  QueueConnection& operator=(const QueueConnection&) = delete;
  ~QueueConnection();  // after join(): every thread is joined or detached

  void start();
  // After a stop request: waits for the threads until `deadline`, then cuts
  // the connection (the broker redelivers what was not acked). Threads
  // still running a handler are left running, detached: returns how many.
  int join(Clock::time_point deadline);
  // True once every thread has ended: join() then returns at once.
  bool done() const;
  // Handlers running now, inline or handed off.
  int handlersRunning() const noexcept { return handlers_running_.load(); }

  // For the watchdog: true when the thread holding the connection is past
  // the time by which it said it would come round again (a deadlock, or a
  // library call hung beyond its timeouts). Running a handler, however
  // long, is not stalling.
  bool stalled(Clock::time_point now) const noexcept;

 private:
  // One consumer: its channel, and the request its handler works on.
  struct ConsumerChannel {
    int index = 0;              // 0-based consumer number
    amqp_channel_t number = 0;  // AMQP channel number: index + 1
    std::string consumer_tag;
    bool busy = false;                   // its handler runs (here or on another thread)
    std::uint64_t session = 0;           // of the connection the request came on
    std::deque<InboundMessage> waiting;  // delivered while busy (prefetch > 1)
    InboundMessage request;              // the one being handled
    // Its deadline, in ms since the Unix epoch: its x-warren-deadline, or
    // its arrival plus handler_timeout.
    std::int64_t deadline_ms = 0;
    bool deadline_from_header = false;
    Clock::time_point handler_started;   // when its handler was called
    HandlerReply reply;                  // reused: its buffers outlive one request
    std::vector<warren_header> headers;  // reused, same reason
    std::optional<Outcome> outcome;      // of `request`; none yet: `lost`
    // Transient replies published (and their requests acked) since the
    // channel's last delivery (RefusedReplies::published).
    struct SentReply {
      std::uint64_t identity;  // replyIdentity() of the request
      bool direct;             // to a direct reply-to address
    };
    std::vector<SentReply> transient_replies;
    // Set by a handed-off handler's thread once its reply is ready.
    std::atomic<bool> completed{false};
  };
  // A request whose plugin deferred its reply: answered once the plugin
  // completes it, or without it at its deadline.
  struct DeferredRequest {
    std::shared_ptr<DeferredReply> reply;
    InboundMessage request;
    int channel_index = 0;  // the consumer it came to
    std::int64_t deadline_ms = 0;
    bool deadline_from_header = false;
    Clock::time_point started;  // when its handler was called
  };
  // A thread of this queue.
  struct Worker {
    std::thread thread;
    bool exited = false;  // under threads_mutex_
  };
  enum class Served {
    kFailed,     // the connection or a channel failed: a new session follows
    kDrained,    // stopping, and nothing is left in flight
    kAbandoned,  // the connection was cut at the drain deadline under a handler
    kHandedOff,  // the keeper gave the connection to another thread meanwhile
  };

  // Threads.
  void spawnLocked();  // under threads_mutex_
  void workerMain(Worker& self);
  // Holds the connection until it is handed off (true) or the queue stops.
  bool holdConnection();
  void keeperMain();
  void stopKeeper() noexcept;
  void pokeKeeper() noexcept;
  void handOff();
  int liveWorkersLocked() const;  // under threads_mutex_
  void expectTurnWithin(std::chrono::milliseconds wait) noexcept;

  // Sessions.
  bool openSession();
  // The queue's dead_letter exchange and queue, bound, when it has them.
  void declareDeadLetterTarget(AmqpConnection& connection);
  Served serveSession();
  Served serve();
  void endSession() noexcept;
  void failSession(std::string failure);
  void cancelConsumers();

  // Frames and requests.
  std::optional<Served> handleFrame(const amqp_frame_t& frame);
  ConsumerChannel* consumerChannel(amqp_channel_t number);
  std::optional<Served> handleDelivery(InboundMessage message);
  void handleReturn(const InboundMessage& message);
  // Requests delivered while the channel's handler ran, once it returned.
  std::optional<Served> runWaiting(ConsumerChannel& channel);
  std::optional<Served> handleMessage(ConsumerChannel& channel, InboundMessage message);
  // The error reply of a request answered without its handler (decide()),
  // logged and counted.
  HandlerError refusalFor(Decision decision, const ConsumerChannel& channel, std::int64_t now_ms);
  // Answers the channel's request with `error` without running its handler.
  void refuse(ConsumerChannel& channel, HandlerError error);
  // Runs the handler with the connection parked, then replies and acks; or
  // dispatches it when the handler has lately been slow.
  std::optional<Served> answer(ConsumerChannel& channel);
  warren_request prepareRequest(ConsumerChannel& channel);
  // Runs the handler; a reply ready past the request's deadline is replaced
  // by a deadline_exceeded error. On whichever thread runs the handler.
  void runHandler(const warren_request& request, ConsumerChannel& channel);
  // Gives the channel's request to a spare thread (or a new one).
  void dispatch(ConsumerChannel& channel);
  // On that thread: runs the handler, then posts the reply (complete()).
  void runDispatched(ConsumerChannel& channel);
  // Replies whose handlers ran on another thread, then the requests that
  // waited for them.
  std::optional<Served> collectCompletions();
  // Called by a handed-off handler's thread once its reply is ready.
  void complete(ConsumerChannel& channel);
  void publishReply(ConsumerChannel& channel, const HandlerReply& reply);
  // Publishes `reply` to `message` (a request that came to `channel`) and
  // acks it, or leaves the ack to the reply's confirm; returns its outcome.
  Outcome sendReply(ConsumerChannel& channel, const InboundMessage& message,
                    const HandlerReply& reply);

  // Deferred replies.
  // The channel's handler deferred its reply: the request waits in
  // deferred_, the channel takes its next one.
  void deferReply(ConsumerChannel& channel);
  // Publishes the replies the plugin completed.
  void collectDeferred();
  void takeCompletion(std::shared_ptr<DeferredReply> done);
  // Answers deadline_exceeded the deferred requests past their deadline.
  void expireDeferred(std::int64_t now_ms);
  // Sends a deferred request's answer and counts it done.
  void answerDeferred(const DeferredRequest& pending, const HandlerReply& reply);
  // The connection is gone: the broker redelivers what was deferred.
  void dropDeferred() noexcept;
  // Until the earliest deferred deadline, at most `longest`.
  std::chrono::milliseconds untilDeferredDeadline(std::chrono::milliseconds longest) const;
  // When this engine expires a deferred request (ms since the Unix epoch).
  static std::int64_t expiresAt(const DeferredRequest& pending) noexcept;
  // warren_deferred_in_flight counts plugins' deferred replies only.
  void countDeferred(const DeferredReply& reply, int delta) noexcept;
  void beginRequest(ConsumerChannel& channel);
  void endRequest(ConsumerChannel& channel);
  void finish(ConsumerChannel& channel, Outcome outcome);
  bool anyBusy() const noexcept;

  // Replies and their confirms.
  void confirmReplies(std::uint64_t sequence, bool multiple, bool taken);
  void markReturned(const InboundMessage& returned);
  void checkConfirmDeadline() const;
  // The broker closed channel `closed` (0: the connection) with `code`.
  void rememberRefusedReplies(amqp_channel_t closed, int code, const std::string& close_detail);
  void settleReplies();

  std::shared_ptr<QueueRuntime> runtime_;
  QueueRuntime& rt_;  // *runtime_, for brevity
  const std::chrono::milliseconds hand_off_after_;
  // More than one consumer, and a handler that runs in handle(): slow
  // handlers go to other threads.
  const bool dispatches_;
  // The RefusedReplies owner of persistent replies (one past the consumers').
  const int confirm_owner_;
  // Replies are owned by their channel (consumer index, or confirm_owner_),
  // those to direct reply-to addresses apart from the others: only such an
  // address can make the broker close the connection (request_policy.h), so
  // when it closes after both kinds, only those are refused.
  int ownerOf(int channel_owner, bool direct) const noexcept {
    return direct ? confirm_owner_ + 1 + channel_owner : channel_owner;
  }
  const amqp_channel_t confirm_channel_;
  // On a cluster (more than one broker url) transient replies are confirmed
  // too, their requests acked once they are: the channel keeps the order of
  // reply and ack, but not where they go. The ack settles the request on
  // the quorum queue's leader, replicated to the other nodes; the reply
  // travels to the caller's reply queue on another node by a message of its
  // own. A node killed in between could keep the ack and lose the reply: a
  // call lost, never redelivered (cluster_test.cpp,
  // KillingTheQueueLeaderLosesNoRequest, lost 3 and 8 calls so).
  const bool confirms_every_reply_;

  // The holder's: only the thread holding the connection touches these.
  Backoff backoff_;
  ConnectionOptions options_;
  BrokerRotation brokers_;
  std::optional<AmqpConnection> connection_;
  std::optional<WatchedConnection::Session> watched_;
  std::uint64_t session_ = 0;  // numbers the connections opened
  bool draining_ = false;
  bool was_consuming_ = false;
  bool declare_refused_ = false;  // the broker refused this session's queue.declare
  Clock::time_point retry_at_;
  Clock::time_point last_inbound_;
  DeliveryAssembler assembler_;
  std::vector<std::unique_ptr<ConsumerChannel>> channels_;
  // A reply published on the confirm channel and not yet confirmed; its
  // request is acked once it is. In publish order.
  struct UnconfirmedReply {
    std::uint64_t sequence;      // the publish's number on the channel (from 1)
    amqp_channel_t channel;      // the request's
    std::uint64_t delivery_tag;  // the request's
    std::uint64_t identity;      // replyIdentity() of the request
    Clock::time_point published;
    bool direct;            // to a direct reply-to address
    bool returned = false;  // the broker returned it: nobody will read it
  };
  std::deque<UnconfirmedReply> unconfirmed_;
  std::uint64_t next_sequence_ = 1;

  // Deferred requests of this session, by their reply; their completions.
  std::unordered_map<const DeferredReply*, DeferredRequest> deferred_;
  const std::shared_ptr<DeferredInbox> deferred_inbox_;
  // Completions collected before their request was known to be deferred.
  std::vector<std::shared_ptr<DeferredReply>> early_completions_;

  // Requests answered deadline_exceeded: one log line per interval.
  LogThrottle deadline_log_;

  WatchedConnection watch_;
  WakeEvent completions_;  // a handed-off handler's reply is ready
  std::atomic<int> completions_pending_{0};
  std::atomic<int> handlers_running_{0};
  // Handler run time, moving average, nanoseconds.
  std::atomic<std::int64_t> handler_ns_average_{0};
  std::atomic<Clock::rep> turn_deadline_{Clock::time_point::max().time_since_epoch().count()};

  // Threads: the holder, spares, handlers handed off.
  mutable std::mutex threads_mutex_;
  std::condition_variable threads_changed_;
  std::list<Worker> workers_;          // under threads_mutex_
  int spares_ = 0;                     // workers waiting for the connection or a job
  std::deque<ConsumerChannel*> jobs_;  // dispatched, not started yet
  bool connection_free_ = false;       // handed off, not yet taken by a thread
  bool finished_ = false;              // the queue stopped: no thread takes it again

  // The keeper.
  std::mutex keeper_mutex_;
  std::condition_variable keeper_wake_;
  bool keeper_stop_ = false;   // under keeper_mutex_
  bool keeper_poked_ = false;  // under keeper_mutex_
  // The keeper sleeps long (nothing parked, no request lately): the next
  // park() wakes it.
  std::atomic<bool> keeper_asleep_{false};
  std::thread keeper_;
};

}  // namespace warren
