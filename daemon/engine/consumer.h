// One consumer of a queue: its own connection, a channel with prefetch P and
// manual acks, a second one with publisher confirms, and one thread that
// reads each request, runs the handler and publishes the reply. A transient
// request is acked right after its reply, on the same channel; a persistent
// request's reply goes out on the confirm channel and the request is acked
// once the broker confirmed it (read in the same frame loop as the
// deliveries: no round trip is waited for on the way).
//
// The handler runs on the thread that read the request: a request costs no
// hand-off between threads (on a 2-core machine that wake-up is CPU taken
// from the broker). While it runs the connection is parked, and the queue's
// HeartbeatKeeper sends its heartbeats; the keeper also cuts a connection
// whose send the broker stopped taking (watched_connection.h).
//
// When the connection or the consumer is lost, the consumer starts a new
// session after a capped, jittered backoff; a request it was answering is
// redelivered by the broker and answered again.
#pragma once

#include "amqp_connection.h"
#include "backoff.h"
#include "broker_url.h"
#include "config.h"
#include "delivery_assembler.h"
#include "metrics_queue.h"
#include "plugin_instance.h"
#include "queue_health.h"
#include "request_policy.h"
#include "stop_signal.h"
#include "watched_connection.h"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace warren {

struct BrokerSettings {
  BrokerAddress address;
  ConnectionOptions connection;
  ReconnectConfig reconnect;
};

// What the consumers of one queue share. Held by shared_ptr from each
// consumer thread, so one left running past the drain deadline (a handler
// that never returns) still finds it alive.
struct QueueRuntime {
  QueueRuntime(QueueConfig queue_config, BrokerSettings broker_settings,
               std::shared_ptr<const PluginInstance> handler_instance,
               std::shared_ptr<spdlog::logger> queue_logger,
               std::shared_ptr<QueueMetrics> queue_metrics)
      : queue(std::move(queue_config)),
        broker(std::move(broker_settings)),
        handler(std::move(handler_instance)),
        logger(std::move(queue_logger)),
        metrics(std::move(queue_metrics)),
        health(queue.name, queue.consumers, queue.prefetch, logger, metrics),
        dead_letter(queue.arguments.count("x-dead-letter-exchange") != 0) {}

  const QueueConfig queue;
  const BrokerSettings broker;
  const std::shared_ptr<const PluginInstance> handler;
  const std::shared_ptr<spdlog::logger> logger;
  const std::shared_ptr<QueueMetrics> metrics;
  QueueHealth health;
  StopSignal stop;
  // Requests refused a reply must go somewhere other than back to the queue.
  const bool dead_letter;
  RefusedReplies replies;
};

class Consumer : public std::enable_shared_from_this<Consumer> {
 public:
  Consumer(std::shared_ptr<QueueRuntime> runtime, int index);
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer() = default;  // after join(): the thread is joined or detached

  void start();
  // After a stop request: waits for the thread until `deadline`, then cuts
  // its connection (the broker redelivers what it had not acked). A thread
  // still running a handler is left running, detached: returns false. One
  // blocked on the connection fails at once and is waited for.
  bool join(std::chrono::steady_clock::time_point deadline);
  // True once the thread has left run(): join() then returns at once.
  bool done() const;

  WatchedConnection& watchedConnection() noexcept { return watch_; }

  // For the watchdog: true when the thread is past the time by which it said
  // it would come round again (a deadlock, or a library call hung beyond its
  // timeouts). Running a handler, however long, is not stalling.
  bool stalled(std::chrono::steady_clock::time_point now) const noexcept;

 private:
  enum class SessionEnd { kDrained, kAbandoned };

  void run();
  void openSession(AmqpConnection& connection);
  SessionEnd serve(AmqpConnection& connection);
  void cancelConsumer(AmqpConnection& connection);
  // False when the connection was taken away while the handler ran.
  bool handleFrame(AmqpConnection& connection, const amqp_frame_t& frame);
  bool handleMessage(AmqpConnection& connection, InboundMessage message);
  // Runs the handler with the connection parked, then replies and acks.
  bool answer(AmqpConnection& connection, const InboundMessage& message);
  void publishReply(AmqpConnection& connection, const InboundMessage& message,
                    const HandlerReply& reply);
  // basic.ack / basic.nack from the broker for the reply publishes up to
  // (`multiple`) or at `sequence`: their requests are acked, or, for a reply
  // the broker refused or returned, acked or dead-lettered without one.
  void confirmReplies(AmqpConnection& connection, std::uint64_t sequence, bool multiple,
                      bool taken);
  // The reply to (reply_to, correlation_id) came back unroutable.
  void markReturned(const InboundMessage& returned);
  // Unconfirmed replies left unconfirmed for longer than the rpc timeout:
  // the connection is given up (their requests are redelivered).
  void checkConfirmDeadline() const;
  // The broker closed the channel or connection (`code`): the replies it had
  // not confirmed may be why, unless it was shutting down.
  void rememberRefusedReplies(int code, const std::string& close_detail);
  // The replies not confirmed were lost with a connection that failed for
  // another reason: their requests are redelivered and answered again.
  void settleReplies();
  // The request being handled ended in `outcome`: counted once, at once.
  void finish(Outcome outcome);
  void finished();
  // The thread comes round again within `wait` (plus a margin).
  void expectTurnWithin(std::chrono::milliseconds wait) noexcept;

  std::shared_ptr<QueueRuntime> runtime_;
  const int index_;
  QueueRuntime& rt_;  // *runtime_, for brevity
  DeliveryAssembler assembler_;
  WatchedConnection watch_;
  std::string consumer_tag_;
  HandlerReply reply_;                  // reused: its buffers outlive one request
  std::vector<warren_header> headers_;  // reused, same reason
  // A reply published and not yet confirmed by the broker; its request is
  // acked once it is. In publish order.
  struct UnconfirmedReply {
    std::uint64_t sequence;      // the publish's number on the channel (from 1)
    std::uint64_t delivery_tag;  // the request's
    std::uint64_t identity;      // replyIdentity() of the request
    std::chrono::steady_clock::time_point published;
    bool returned = false;  // the broker returned it: nobody will read it
  };
  std::deque<UnconfirmedReply> unconfirmed_;
  std::uint64_t next_sequence_ = 1;  // of this session's confirm channel
  // Transient replies published (and their requests acked) since the last
  // delivery (RefusedReplies::published).
  std::vector<std::uint64_t> transient_replies_;
  // What the request being handled ended in; none yet: `lost`.
  std::optional<Outcome> outcome_;
  // The broker refused this session's queue.declare (406, 403).
  bool declare_refused_ = false;

  std::atomic<std::chrono::steady_clock::rep> turn_deadline_{
      std::chrono::steady_clock::time_point::max().time_since_epoch().count()};

  mutable std::mutex done_mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace warren
