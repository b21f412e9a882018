// SPDX-License-Identifier: Apache-2.0
#include "queue_connection.h"

#include "log_escape.h"
#include "reply_properties.h"
#include "request_policy.h"
#include "wire.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string_view>

namespace warren {
namespace {

using Clock = std::chrono::steady_clock;

// How long join() waits, after cutting the connection at the drain
// deadline, for the threads not running a handler to end: they fail at once.
constexpr std::chrono::seconds kCutGrace{5};
// The keeper's longest sleep: an overdue send is cut within about this.
constexpr std::chrono::milliseconds kKeeperIdle{1000};
// A reply buffer larger than this is released after its request.
constexpr std::size_t kKeptReplyCapacity = 64 * 1024;
// At most one log line per interval for requests answered deadline_exceeded.
constexpr std::chrono::seconds kDeadlineLogInterval{10};

std::int64_t epochMs(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

std::chrono::milliseconds pollInterval(std::chrono::seconds heartbeat) {
  if (heartbeat.count() == 0) return std::chrono::milliseconds(1000);
  return std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat) / 4;
}

// warren_requests_in_progress up for a request answered at once (requeued,
// acked or refused without running a handler), down again when done; `lost`
// when the broker call for it failed before an outcome was counted.
class ImmediateRequest {
 public:
  explicit ImmediateRequest(QueueMetrics& metrics) : metrics_(metrics) {
    metrics_.inProgressAdd(1);
  }
  ~ImmediateRequest() {
    if (!outcome_) metrics_.finished(Outcome::kLost);
    metrics_.inProgressAdd(-1);
  }
  ImmediateRequest(const ImmediateRequest&) = delete;
  ImmediateRequest& operator=(const ImmediateRequest&) = delete;
  void finish(Outcome outcome) {
    metrics_.finished(outcome);
    outcome_ = outcome;
  }

 private:
  QueueMetrics& metrics_;
  std::optional<Outcome> outcome_;
};

}  // namespace

QueueConnection::QueueConnection(std::shared_ptr<QueueRuntime> runtime)
    : runtime_(std::move(runtime)),
      rt_(*runtime_),
      // With one consumer nothing else could be read meanwhile: no hand-off.
      hand_off_after_(
          rt_.queue.consumers > 1
              ? kHandOffAfter
              : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24))),
      // A handler driven from here (a worker pool) never waits on its work
      // in handle(): slow work costs it no time on this thread.
      dispatches_(rt_.queue.consumers > 1 && rt_.handler->pollFd() < 0),
      confirm_owner_(rt_.queue.consumers),
      confirm_channel_(static_cast<amqp_channel_t>(rt_.queue.consumers + 1)),
      confirms_every_reply_(rt_.broker.addresses.size() > 1),
      backoff_(rt_.broker.reconnect.initial_delay, rt_.broker.reconnect.max_delay),
      options_(rt_.broker.connection),
      brokers_(rt_.broker.addresses, rt_.broker.first_address),
      assembler_(rt_.queue.max_body_bytes),
      deferred_inbox_(std::make_shared<DeferredInbox>()),
      deadline_log_(kDeadlineLogInterval) {
  for (int i = 0; i < rt_.queue.consumers; ++i) {
    auto channel = std::make_unique<ConsumerChannel>();
    channel->index = i;
    channel->number = static_cast<amqp_channel_t>(i + 1);
    channel->reply.sink = deferred_inbox_;
    channels_.push_back(std::move(channel));
  }
}

QueueConnection::~QueueConnection() {
  stopKeeper();
  // join() joined or detached every worker; one never started has no thread.
  for (Worker& worker : workers_) {
    if (worker.thread.joinable()) worker.thread.detach();
  }
}

// ---------------------------------------------------------------- threads

void QueueConnection::start() {
  {
    std::lock_guard lock(threads_mutex_);
    connection_free_ = true;
    spawnLocked();
  }
  keeper_ = std::thread(&QueueConnection::keeperMain, this);
}

void QueueConnection::spawnLocked() {
  // Threads that ended keep their stacks until joined. Each set `exited` as
  // its last use of the list; what is left of it needs no lock.
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->exited && it->thread.joinable()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  Worker& worker = workers_.emplace_back();
  // The new thread waits for threads_mutex_, held here, before it looks at
  // `worker`.
  worker.thread = std::thread([self = shared_from_this(), &worker] { self->workerMain(worker); });
}

void QueueConnection::workerMain(Worker& self) {
  for (;;) {
    ConsumerChannel* job = nullptr;
    {
      std::unique_lock lock(threads_mutex_);
      // The holder and one thread per consumer's handler are all the queue
      // can use: a thread beyond them (one that returned from a handler
      // while a hand-off or dispatch started another) ends.
      if (liveWorkersLocked() > rt_.queue.consumers + 1 && jobs_.empty() && !connection_free_) {
        self.exited = true;
        threads_changed_.notify_all();
        return;
      }
      ++spares_;
      // Ends at the latest when the queue stops (finished_), which join()
      // brings about by its deadline.
      threads_changed_.wait(lock,
                            [this] { return connection_free_ || !jobs_.empty() || finished_; });
      --spares_;
      if (connection_free_) {
        connection_free_ = false;
      } else if (!jobs_.empty()) {
        job = jobs_.front();
        jobs_.pop_front();
      } else {
        self.exited = true;
        threads_changed_.notify_all();
        return;
      }
    }
    if (job != nullptr) {
      runDispatched(*job);
      continue;
    }
    if (holdConnection()) continue;  // handed off: a spare now
    std::lock_guard lock(threads_mutex_);
    finished_ = true;
    turn_deadline_.store(Clock::time_point::max().time_since_epoch().count(),
                         std::memory_order_relaxed);
    // Requests not started and replies posted after the connection was
    // given up: nobody sends them, the broker redelivers their requests.
    for (ConsumerChannel* waiting : jobs_) {
      handlers_running_.fetch_sub(1);
      endRequest(*waiting);
    }
    jobs_.clear();
    for (auto& channel : channels_) {
      if (channel->completed.exchange(false)) endRequest(*channel);
    }
    // Deferred replies completed from now on are freed as they come.
    deferred_inbox_->close();
    self.exited = true;
    threads_changed_.notify_all();
    return;
  }
}

bool QueueConnection::holdConnection() {
  for (;;) {
    if (!connection_) {
      if (rt_.stop.requested()) {
        rt_.health.stopped();
        return false;
      }
      const auto now = Clock::now();
      if (now < retry_at_) {
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(retry_at_ - now);
        expectTurnWithin(wait);
        rt_.stop.waitFor(wait);
        continue;
      }
      if (!openSession()) continue;
    }
    switch (serveSession()) {
      case Served::kHandedOff:
        return true;
      case Served::kFailed:
        continue;
      case Served::kDrained:
      case Served::kAbandoned:
        return false;
    }
  }
}

void QueueConnection::handOff() {
  std::lock_guard lock(threads_mutex_);
  connection_free_ = true;
  if (spares_ == 0) spawnLocked();
  threads_changed_.notify_all();
}

void QueueConnection::keeperMain() {
  std::uint64_t parks_seen = watch_.parks();
  for (;;) {
    const WatchedConnection::Watch watch = watch_.keep(Clock::now(), hand_off_after_);
    if (watch.taken_over) handOff();
    rt_.held.check(Clock::now());
    auto next = watch.next;
    // While requests flow, a handler may park at any moment: look often
    // enough to hand it off in time.
    const std::uint64_t parks = watch_.parks();
    const bool flowing = parks != parks_seen;
    parks_seen = parks;
    if (flowing) next = std::min(next, hand_off_after_);
    next = std::min(next, kKeeperIdle);

    std::unique_lock lock(keeper_mutex_);
    if (keeper_stop_) return;
    if (!flowing && !watch_.parked()) {
      // Quiet: sleep long, and let the next park() wake this thread.
      keeper_asleep_.store(true);
      if (watch_.parks() != parks_seen) {
        keeper_asleep_.store(false);
        next = std::chrono::milliseconds(0);
      }
    }
    keeper_wake_.wait_for(lock, next, [this] { return keeper_stop_ || keeper_poked_; });
    keeper_poked_ = false;
    keeper_asleep_.store(false);
  }
}

void QueueConnection::stopKeeper() noexcept {
  {
    std::lock_guard lock(keeper_mutex_);
    keeper_stop_ = true;
  }
  keeper_wake_.notify_all();
  if (keeper_.joinable()) keeper_.join();
}

void QueueConnection::pokeKeeper() noexcept {
  {
    std::lock_guard lock(keeper_mutex_);
    keeper_poked_ = true;
  }
  keeper_wake_.notify_one();
}

int QueueConnection::join(Clock::time_point deadline) {
  {
    std::unique_lock lock(threads_mutex_);
    if (!threads_changed_.wait_until(lock, deadline, [this] { return liveWorkersLocked() == 0; })) {
      lock.unlock();
      watch_.cutAtDeadline();
    }
  }
  stopKeeper();  // no hand-off, so no new thread, from here on
  std::vector<std::thread> ended;
  int abandoned = 0;
  {
    std::unique_lock lock(threads_mutex_);
    // Cut: the holder fails at once and ends, and the spares with it. The
    // threads left run handlers.
    threads_changed_.wait_for(lock, kCutGrace,
                              [this] { return liveWorkersLocked() <= handlers_running_.load(); });
    for (Worker& worker : workers_) {
      if (!worker.thread.joinable()) continue;
      if (worker.exited) {
        ended.push_back(std::move(worker.thread));
      } else {
        worker.thread.detach();
        ++abandoned;
      }
    }
  }
  for (std::thread& thread : ended) thread.join();
  return abandoned;
}

int QueueConnection::liveWorkersLocked() const {
  int live = 0;
  for (const Worker& worker : workers_) live += worker.exited ? 0 : 1;
  return live;
}

bool QueueConnection::done() const {
  std::lock_guard lock(threads_mutex_);
  return !workers_.empty() && liveWorkersLocked() == 0;
}

void QueueConnection::expectTurnWithin(std::chrono::milliseconds wait) noexcept {
  // A synchronous library call made on the way may take the rpc timeout.
  const auto margin = options_.rpc_timeout + std::chrono::seconds(5);
  turn_deadline_.store((Clock::now() + wait + margin).time_since_epoch().count(),
                       std::memory_order_relaxed);
}

bool QueueConnection::stalled(Clock::time_point now) const noexcept {
  if (watch_.parked()) return false;
  return now.time_since_epoch().count() > turn_deadline_.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------- sessions

void QueueConnection::declareDeadLetterTarget(AmqpConnection& connection) {
  const QueueConfig::DeadLetter& target = rt_.queue.dead_letter;
  if (target.queue.empty()) return;
  const amqp_channel_t channel = channels_.front()->number;
  const std::map<std::string, QueueArgument> quorum = {{"x-queue-type", std::string("quorum")}};
  connection.declareDirectExchange(channel, target.exchange);
  connection.declareQueue(
      channel, QueueDeclaration{target.queue, /*durable=*/true,
                                /*auto_delete=*/false, rt_.queue.quorum ? &quorum : nullptr});
  connection.bindQueue(channel, target.queue, target.exchange, rt_.queue.name);
}

bool QueueConnection::openSession() {
  const QueueConfig& queue = rt_.queue;
  declare_refused_ = false;
  was_consuming_ = false;
  try {
    // Connecting, then two synchronous calls per consumer and four more.
    // Connecting (to each node in turn, at worst), then two synchronous calls
    // per consumer and seven more.
    const auto nodes = static_cast<int>(brokers_.size());
    expectTurnWithin(nodes * options_.connect_timeout +
                     (2 * queue.consumers + 7) * options_.rpc_timeout);
    rt_.metrics->connectionAttempt();
    brokers_.open([this](const BrokerAddress& address) { connection_.emplace(address, options_); });
    watched_.emplace(watch_, *connection_);
    ++session_;
    AmqpConnection& connection = *connection_;
    for (auto& channel : channels_) connection.openChannel(channel->number);
    connection.openChannel(confirm_channel_);
    connection.confirmSelect(confirm_channel_);
    unconfirmed_.clear();
    next_sequence_ = 1;
    try {
      declareDeadLetterTarget(connection);
      connection.declareQueue(
          channels_.front()->number,
          QueueDeclaration{queue.name, queue.durable, queue.auto_delete, &queue.arguments});
    } catch (const AmqpError& e) {
      declare_refused_ = e.replyCode() == 406 || e.replyCode() == 403;
      throw;
    }
    for (auto& channel : channels_) {
      connection.setPrefetch(channel->number, static_cast<std::uint16_t>(queue.prefetch));
      channel->consumer_tag = connection.consume(channel->number, queue.name);
    }
  } catch (const AmqpError& e) {
    if (e.scope() == AmqpError::Scope::kChannel && connection_) connection_->close();
    failSession(e.what());
    return false;
  } catch (const std::exception& e) {
    failSession(std::string("protocol error: ") + e.what());
    return false;
  }
  rt_.health.consuming(backoff_.attempts(), brokers_.current().endpoint());
  backoff_.reset();
  was_consuming_ = true;
  draining_ = false;
  last_inbound_ = Clock::now();
  return true;
}

QueueConnection::Served QueueConnection::serveSession() {
  std::string failure;
  try {
    const Served served = serve();
    if (served == Served::kHandedOff) return served;
    rt_.health.stopped();
    if (served == Served::kDrained) {
      connection_->close();
    } else {
      rt_.logger->warn(
          "a handler abandoned at the drain deadline returned; its reply is dropped, the broker "
          "redelivers the request");
    }
    settleReplies();
    endSession();
    return served;
  } catch (const AmqpError& e) {
    // The connection itself is fine after a channel or consumer loss:
    // close it politely so the broker requeues at once, without warnings.
    if (e.scope() == AmqpError::Scope::kChannel) connection_->close();
    failure = e.what();
  } catch (const std::exception& e) {
    failure = std::string("protocol error: ") + e.what();
  }
  failSession(std::move(failure));
  return Served::kFailed;
}

void QueueConnection::endSession() noexcept {
  dropDeferred();
  watched_.reset();
  connection_.reset();
  assembler_.reset();
  unconfirmed_.clear();
  for (auto& channel : channels_) {
    // Their delivery tags died with the connection: the broker redelivers.
    channel->waiting.clear();
    channel->transient_replies.clear();
  }
}

void QueueConnection::failSession(std::string failure) {
  // Only a refused queue.declare means the config and the broker's queue
  // disagree: a 406 or 403 later (a reply publish, an ack) says nothing of
  // the queue's settings.
  const bool misconfigured = declare_refused_;
  if (misconfigured) {
    failure += "; the queue exists with other settings or the user lacks permission: make " +
               rt_.queue.path +
               " (durable, auto_delete, arguments) match the broker's queue, or delete that queue";
  }
  // Replies not refused by a broker close were taken, or lost with the
  // connection: their redeliveries are answered again.
  settleReplies();
  endSession();
  if (rt_.stop.requested()) return;  // holdConnection() ends
  if (was_consuming_) {
    rt_.metrics->sessionLost();
    brokers_.advance();  // a cluster's next node first: the lost one may be down
  }
  const auto delay = backoff_.next();
  rt_.health.failed(failure, backoff_.attempts(), delay, was_consuming_, misconfigured);
  was_consuming_ = false;
  retry_at_ = Clock::now() + delay;
}

void QueueConnection::cancelConsumers() {
  // Deliveries that arrive before a cancel-ok are kept by rabbitmq-c and
  // read next: handleMessage() hands them back to the queue.
  for (auto& channel : channels_) connection_->cancel(channel->number, channel->consumer_tag);
}

QueueConnection::Served QueueConnection::serve() {
  AmqpConnection& connection = *connection_;
  const auto heartbeat = connection.heartbeat();
  const auto interval = pollInterval(heartbeat);

  // A worker pool is driven from here: its replies come beside the socket.
  const Handler& handler = *rt_.handler;
  const int handler_fd = handler.pollFd();
  bool handler_ready = false;

  for (;;) {
    expectTurnWithin(interval);
    if (!draining_ && rt_.stop.requested()) {
      draining_ = true;
      cancelConsumers();
      // Requests that waited for their consumer go back to the queue.
      for (auto& channel : channels_) {
        if (auto end = runWaiting(*channel)) return *end;
      }
    }
    if (auto end = collectCompletions()) return *end;
    // Before the expiry below: a pool answers at a deadline itself.
    if (handler_fd >= 0 && (handler_ready || Clock::now() >= handler.wakeAt())) {
      handler_ready = false;
      // Its replies are posted on this thread, and taken just below.
      deferred_inbox_->setTakerAwake(true);
      handler.drive();
      deferred_inbox_->setTakerAwake(false);
    }
    // Completions come also for requests answered without them (counted).
    if (deferred_inbox_->posted()) collectDeferred();
    if (!deferred_.empty()) expireDeferred(epochMs(std::chrono::system_clock::now()));
    bool more = true;
    while (more) {
      amqp_frame_t frame;
      if (!connection.readFrameNoWait(frame)) {
        more = false;  // nothing buffered, nothing on the socket: wait in poll()
        break;
      }
      last_inbound_ = Clock::now();
      if (auto end = handleFrame(frame)) return *end;
      // A handler ran: the broker's heartbeats meanwhile are in the socket.
      if (Clock::now() - last_inbound_ > interval && connection.socketReadable()) {
        last_inbound_ = Clock::now();
      }
      amqp_maybe_release_buffers(connection.raw());
      // Skip the read that would only say "nothing yet": poll() first.
      more = connection.hasBufferedInput();
      if (!draining_ && rt_.stop.requested()) break;
    }
    // Cancelled, every delivery that came before the cancel-ok handed back,
    // every handler returned and every reply confirmed (its request acked):
    // nothing more arrives.
    if (draining_ && !connection.hasBufferedInput() && unconfirmed_.empty() && !anyBusy() &&
        deferred_.empty()) {
      return Served::kDrained;
    }
    if (more) continue;
    // Everything the broker sent so far is read: a confirm still missing is late.
    checkConfirmDeadline();

    auto wait = interval;
    if (!unconfirmed_.empty()) {
      const auto due = unconfirmed_.front().published + options_.rpc_timeout;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now()) +
                        std::chrono::milliseconds(1);
      wait = std::clamp(left, std::chrono::milliseconds(1), interval);
    }
    if (!deferred_.empty()) wait = untilDeferredDeadline(wait);
    if (handler_fd >= 0) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          std::max(handler.wakeAt(), Clock::now()) - Clock::now());
      wait = std::min(wait, left);
    }
    std::array<pollfd, 5> fds{pollfd{connection.fd(), POLLIN, 0},
                              pollfd{completions_.fd(), POLLIN, 0},
                              pollfd{deferred_inbox_->fd(), POLLIN, 0},
                              pollfd{handler_fd, POLLIN, 0}, pollfd{rt_.stop.fd(), POLLIN, 0}};
    // The stop signal stays readable once raised: watched until draining.
    const nfds_t watched = draining_ ? 4 : 5;
    const int ready = ::poll(fds.data(), watched, static_cast<int>(wait.count()));
    if (ready < 0 && errno != EINTR) {
      throw AmqpError(AmqpError::Scope::kConnection, 0, "poll failed");
    }
    if (ready > 0 && fds[3].revents != 0) handler_ready = true;
    if (ready > 0 && fds[0].revents != 0) {
      last_inbound_ = Clock::now();
      continue;
    }
    // rabbitmq-c only notices missing broker heartbeats inside a blocking
    // wait, which this loop never makes: watch for them here, and only once
    // poll() found the socket silent, so that what the broker sent while a
    // long handler ran counts as heard.
    if (ready >= 0 && heartbeat.count() > 0 && Clock::now() - last_inbound_ > 2 * heartbeat) {
      throw AmqpError(
          AmqpError::Scope::kConnection, 0,
          "no heartbeat from the broker for " + std::to_string(2 * heartbeat.count()) + " s");
    }
  }
}

// ---------------------------------------------------------------- frames

std::optional<QueueConnection::Served> QueueConnection::handleFrame(const amqp_frame_t& frame) {
  if (frame.frame_type == AMQP_FRAME_HEADER || frame.frame_type == AMQP_FRAME_BODY) {
    if (auto message = assembler_.feed(frame)) return handleDelivery(std::move(*message));
    return std::nullopt;
  }
  if (frame.frame_type == AMQP_FRAME_METHOD &&
      frame.payload.method.id == AMQP_BASIC_DELIVER_METHOD) {
    if (ConsumerChannel* channel = consumerChannel(frame.channel)) {
      // With prefetch 1 the broker sends the channel's next delivery only
      // after it took the ack that followed its last transient reply: those
      // were accepted.
      for (const auto& reply : channel->transient_replies) {
        rt_.replies.settled(ownerOf(channel->index, reply.direct), reply.identity);
      }
      channel->transient_replies.clear();
    }
  }
  if (assembler_.beginIfContentMethod(frame)) return std::nullopt;
  if (frame.frame_type != AMQP_FRAME_METHOD) return std::nullopt;  // heartbeats are the library's

  const amqp_method_t& method = frame.payload.method;
  switch (method.id) {
    case AMQP_BASIC_CANCEL_METHOD:
      // consumer_cancel_notify: the queue was deleted (or the node holding
      // it went away). Consuming again needs a new session, which re-declares.
      throw AmqpError(AmqpError::Scope::kChannel, 0,
                      "the broker cancelled the consumer (was queue '" + rt_.queue.name +
                          "' deleted?); declaring it and consuming again");
    case AMQP_BASIC_ACK_METHOD: {
      if (frame.channel != confirm_channel_) return std::nullopt;
      const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
      confirmReplies(ack->delivery_tag, ack->multiple != 0, /*taken=*/true);
      return std::nullopt;
    }
    case AMQP_BASIC_NACK_METHOD: {
      if (frame.channel != confirm_channel_) return std::nullopt;
      const auto* nack = static_cast<const amqp_basic_nack_t*>(method.decoded);
      confirmReplies(nack->delivery_tag, nack->multiple != 0, /*taken=*/false);
      return std::nullopt;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      const int code = static_cast<const amqp_channel_close_t*>(method.decoded)->reply_code;
      rememberRefusedReplies(frame.channel, code, detail);
      connection_->confirmChannelClose(frame.channel);
      throw AmqpError(AmqpError::Scope::kChannel, code, "the broker closed the channel: " + detail);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      const int code = static_cast<const amqp_connection_close_t*>(method.decoded)->reply_code;
      rememberRefusedReplies(0, code, detail);
      connection_->confirmConnectionClose();
      throw AmqpError(AmqpError::Scope::kConnection, code,
                      "the broker closed the connection: " + detail);
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
      const auto* blocked = static_cast<const amqp_connection_blocked_t*>(method.decoded);
      rt_.metrics->brokerBlocked();
      rt_.logger->warn(
          "the broker blocks publishing on this queue's connection: {}",
          std::string_view(static_cast<const char*>(blocked->reason.bytes), blocked->reason.len));
      return std::nullopt;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
      rt_.logger->info("the broker unblocked publishing on this queue's connection");
      return std::nullopt;
    default:
      rt_.logger->debug("ignoring {} on channel {}", amqp_method_name(method.id), frame.channel);
      return std::nullopt;
  }
}

QueueConnection::ConsumerChannel* QueueConnection::consumerChannel(amqp_channel_t number) {
  if (number == 0 || number > channels_.size()) return nullptr;
  return channels_[number - 1].get();
}

std::optional<QueueConnection::Served> QueueConnection::handleDelivery(InboundMessage message) {
  if (message.kind == InboundMessage::Kind::kReturn) {
    handleReturn(message);
    return std::nullopt;
  }
  ConsumerChannel* channel = consumerChannel(message.channel);
  if (channel == nullptr) {
    throw AmqpError(
        AmqpError::Scope::kConnection, 0,
        "a delivery on channel " + std::to_string(message.channel) + ", which consumes nothing");
  }
  if (channel->busy && !rt_.stop.requested()) {
    // Its consumer's handler still runs (handed off): one at a time, in order.
    channel->waiting.push_back(std::move(message));
    return std::nullopt;
  }
  return handleMessage(*channel, std::move(message));
}

void QueueConnection::handleReturn(const InboundMessage& message) {
  if (isDirectReplyTo(message.routing_key)) return;  // delivered all the same
  markReturned(message);
  rt_.metrics->replyReturned();
  rt_.logger->warn(
      "reply to '{}' (correlation_id '{}') was not routed: {} {}; the caller's reply queue is "
      "gone",
      escapeForLog(message.routing_key), escapeForLog(message.correlation_id), message.reply_code,
      escapeForLog(message.reply_text));
}

std::optional<QueueConnection::Served> QueueConnection::runWaiting(ConsumerChannel& channel) {
  while (!channel.busy && !channel.waiting.empty()) {
    InboundMessage next = std::move(channel.waiting.front());
    channel.waiting.pop_front();
    if (auto end = handleMessage(channel, std::move(next))) return end;
  }
  return std::nullopt;
}

HandlerError QueueConnection::refusalFor(Decision decision, const ConsumerChannel& channel,
                                         std::int64_t now_ms) {
  const InboundMessage& request = channel.request;
  switch (decision) {
    case Decision::kReplyBadDeadline: {
      const std::string* text = findHeader(request.headers, wire::kDeadlineHeader);
      const std::string value = text != nullptr ? *text : std::string();
      rt_.logger->warn("request (correlation_id '{}') with a malformed {} header '{}': error reply",
                       escapeForLog(request.correlation_id), wire::kDeadlineHeader,
                       escapeForLog(value));
      return HandlerError{WARREN_ERROR_INVALID_ARGUMENT,
                          std::string(wire::kDeadlineHeader) +
                              " must be an integer of milliseconds since the Unix epoch, got '" +
                              value + "'"};
    }
    case Decision::kReplyDeadlineExceeded: {
      const std::int64_t late_ms = now_ms - channel.deadline_ms;
      rt_.metrics->deadlineExceededQueued();
      if (const auto held_back = deadline_log_.admit(Clock::now())) {
        rt_.logger->warn(
            "request (correlation_id '{}') delivered {} ms after its deadline: deadline_exceeded "
            "reply, handler not run ({} more answered so since the last such line)",
            escapeForLog(request.correlation_id), late_ms, *held_back);
      }
      return HandlerError{WARREN_ERROR_DEADLINE_EXCEEDED,
                          "the deadline passed " + std::to_string(late_ms) +
                              " ms before the request was delivered; not handled"};
    }
    default:  // kReplyTooLarge
      rt_.logger->warn("request of {} bytes exceeds max_body_bytes ({}): error reply",
                       request.body_size, rt_.queue.max_body_bytes);
      return HandlerError{WARREN_ERROR_TOO_LARGE,
                          "request body of " + std::to_string(request.body_size) +
                              " bytes exceeds the limit of " +
                              std::to_string(rt_.queue.max_body_bytes) + " bytes"};
  }
}

void QueueConnection::refuse(ConsumerChannel& channel, HandlerError error) {
  HandlerReply refusal;
  refusal.error = std::move(error);
  try {
    publishReply(channel, refusal);
  } catch (...) {
    endRequest(channel);
    throw;
  }
  endRequest(channel);
}

std::optional<QueueConnection::Served> QueueConnection::handleMessage(ConsumerChannel& channel,
                                                                      InboundMessage message) {
  QueueMetrics& metrics = *rt_.metrics;
  metrics.received();
  if (message.redelivered) metrics.redelivered();
  AmqpConnection& connection = *connection_;
  const amqp_channel_t number = channel.number;
  const std::uint64_t tag = message.delivery_tag;

  RequestFacts facts;
  facts.stopping = rt_.stop.requested();
  facts.has_reply_to = message.has_reply_to;
  facts.reply_to = message.reply_to;
  facts.body_too_large = message.body_too_large;
  facts.redelivered = message.redelivered;
  if (message.redelivered) {
    facts.earlier_reply =
        rt_.replies.check(replyIdentity(message.reply_to, message.correlation_id));
  }
  facts.dead_letter = rt_.dead_letter;
  const std::int64_t now_ms = epochMs(std::chrono::system_clock::now());
  const DeadlineHeader deadline = findDeadline(message.headers);
  facts.deadline_malformed = deadline.malformed;
  facts.deadline_passed = deadline.present && !deadline.malformed && deadline.at_ms < now_ms;

  const Decision decision = decide(facts);
  const bool replies = decision == Decision::kRunHandler || decision == Decision::kReplyTooLarge ||
                       decision == Decision::kReplyBadDeadline ||
                       decision == Decision::kReplyDeadlineExceeded;
  if (replies) {
    // Not stopping, so the channel is free (handleDelivery()).
    channel.request = std::move(message);
    channel.deadline_from_header = deadline.present && !deadline.malformed;
    channel.deadline_ms =
        channel.deadline_from_header ? deadline.at_ms : now_ms + rt_.queue.handler_timeout.count();
    beginRequest(channel);
    if (decision == Decision::kRunHandler) return answer(channel);
    refuse(channel, refusalFor(decision, channel, now_ms));
    return std::nullopt;
  }

  ImmediateRequest immediate(metrics);
  switch (decision) {
    case Decision::kRequeue:
      // Not started: back to the queue at once, for another consumer (or
      // this daemon's next start) to answer, or for this one once the fate
      // of its earlier reply is known.
      connection.reject(number, tag, /*requeue=*/true);
      immediate.finish(Outcome::kRequeued);
      break;
    case Decision::kAckWithoutReply:
      connection.ack(number, tag);
      immediate.finish(Outcome::kNoReplyTo);
      // Logged once done with, so that a reader of the log finds it counted.
      rt_.logger->warn("request without reply_to (correlation_id '{}', {} bytes): acked, no reply",
                       escapeForLog(message.correlation_id), message.body_size);
      break;
    case Decision::kRefuseAck:
    case Decision::kRefuseDeadLetter: {
      const bool dead_letter = decision == Decision::kRefuseDeadLetter;
      if (dead_letter) {
        connection.reject(number, tag, /*requeue=*/false);
      } else {
        connection.ack(number, tag);
      }
      immediate.finish(Outcome::kReplyRefused);
      rt_.logger->warn(
          "request with reply_to '{}' (correlation_id '{}'): {}; {} without a reply",
          escapeForLog(message.reply_to), escapeForLog(message.correlation_id),
          facts.earlier_reply == RequestFacts::EarlierReply::kRefused
              ? "the broker closed the connection or channel when its reply was published"
              : "the broker cannot deliver a reply there",
          dead_letter ? "dead-lettered" : "acked");
      break;
    }
    case Decision::kRunHandler:
    case Decision::kReplyTooLarge:
    case Decision::kReplyBadDeadline:
    case Decision::kReplyDeadlineExceeded:
      break;  // above
  }
  return std::nullopt;
}

warren_request QueueConnection::prepareRequest(ConsumerChannel& channel) {
  const InboundMessage& message = channel.request;
  channel.headers.clear();
  for (const auto& [key, value] : message.headers) {
    channel.headers.push_back({{key.data(), key.size()}, {value.data(), value.size()}});
  }
  warren_request request{};
  request.body = {message.body.data(), message.body.size()};
  request.content_type = {message.content_type.data(), message.content_type.size()};
  request.headers = channel.headers.empty() ? nullptr : channel.headers.data();
  request.header_count = channel.headers.size();
  request.redelivered = message.redelivered ? 1 : 0;
  request.correlation_id = {message.correlation_id.data(), message.correlation_id.size()};
  request.deadline_ms = channel.deadline_ms;
  request.delivery_count = deliveryCount(message.headers, message.redelivered);
  return request;
}

void QueueConnection::runHandler(const warren_request& request, ConsumerChannel& channel) {
  const auto started = Clock::now();
  rt_.held.started(channel.index, channel.request.correlation_id, started);
  rt_.handler->handle(request, channel.reply);
  const auto returned = Clock::now();
  rt_.held.finished(channel.index, returned);
  const auto took = returned - started;
  // Lossy between threads (a load and a store), which an average may be.
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
  const auto average = handler_ns_average_.load(std::memory_order_relaxed);
  handler_ns_average_.store(average + (ns - average) / 8, std::memory_order_relaxed);
  // A deferred reply is timed, and held to its deadline, when it completes.
  if (channel.reply.deferred) {
    channel.handler_started = started;
    return;
  }
  rt_.metrics->observeHandler(took);
  const std::int64_t late_ms = epochMs(std::chrono::system_clock::now()) - channel.deadline_ms;
  if (late_ms > 0) {
    // Nobody waits for the reply any more (or, without a header, the
    // handler overran handler_timeout): the same answer as a request that
    // arrived late, so that a caller sees one outcome for one cause.
    rt_.metrics->deadlineExceededHandling();
    const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
    if (const auto held_back = deadline_log_.admit(Clock::now())) {
      rt_.logger->warn(
          "handler returned {} ms after the deadline of request (correlation_id '{}'; it ran {} "
          "ms{}): deadline_exceeded reply instead of its own ({} more answered so since the last "
          "such line)",
          late_ms, escapeForLog(channel.request.correlation_id), took_ms,
          channel.deadline_from_header ? "" : ", past handler_timeout", *held_back);
    }
    channel.reply.body.clear();
    channel.reply.content_type.clear();
    channel.reply.error =
        HandlerError{WARREN_ERROR_DEADLINE_EXCEEDED,
                     "the handler returned " + std::to_string(late_ms) + " ms after the deadline" +
                         (channel.deadline_from_header
                              ? std::string()
                              : " (handler_timeout " +
                                    std::to_string(rt_.queue.handler_timeout.count()) + " ms)")};
  }
}

std::optional<QueueConnection::Served> QueueConnection::answer(ConsumerChannel& channel) {
  const warren_request request = prepareRequest(channel);
  if (dispatches_ &&
      handler_ns_average_.load(std::memory_order_relaxed) > kInlineBudget.count() * 1000) {
    dispatch(channel);
    return std::nullopt;
  }
  handlers_running_.fetch_add(1);
  const std::uint64_t ticket = watch_.park();
  if (keeper_asleep_.load(std::memory_order_relaxed) && keeper_asleep_.exchange(false)) {
    pokeKeeper();
  }
  runHandler(request, channel);
  const WatchedConnection::Unparked unparked = watch_.unpark(ticket);
  handlers_running_.fetch_sub(1);
  switch (unparked) {
    case WatchedConnection::Unparked::kTakenOver:
      // Another thread holds the connection now: it sends the reply.
      complete(channel);
      return Served::kHandedOff;
    case WatchedConnection::Unparked::kCut:
      endRequest(channel);
      return Served::kAbandoned;
    case WatchedConnection::Unparked::kHeld:
      break;
  }
  if (channel.reply.deferred) {
    deferReply(channel);
    return std::nullopt;
  }
  try {
    publishReply(channel, channel.reply);
  } catch (...) {
    endRequest(channel);
    throw;
  }
  endRequest(channel);
  return std::nullopt;
}

void QueueConnection::dispatch(ConsumerChannel& channel) {
  // Counted from now: a stop meanwhile finds it in progress.
  handlers_running_.fetch_add(1);
  std::lock_guard lock(threads_mutex_);
  jobs_.push_back(&channel);
  if (spares_ < static_cast<int>(jobs_.size())) spawnLocked();
  threads_changed_.notify_all();
}

void QueueConnection::runDispatched(ConsumerChannel& channel) {
  runHandler(prepareRequest(channel), channel);
  handlers_running_.fetch_sub(1);
  complete(channel);
}

void QueueConnection::complete(ConsumerChannel& channel) {
  std::lock_guard lock(threads_mutex_);
  if (finished_) {
    // Nobody holds the connection any more (the queue stopped meanwhile).
    rt_.logger->warn(
        "a handler returned after its queue stopped; its reply is dropped, the broker "
        "redelivers the request");
    endRequest(channel);
    return;
  }
  channel.completed.store(true);
  completions_pending_.fetch_add(1);
  completions_.signal();
}

std::optional<QueueConnection::Served> QueueConnection::collectCompletions() {
  if (completions_pending_.load() == 0) return std::nullopt;
  completions_.clear();
  for (auto& owned : channels_) {
    ConsumerChannel& channel = *owned;
    if (!channel.completed.exchange(false)) continue;
    completions_pending_.fetch_sub(1);
    if (channel.session == session_ && channel.reply.deferred) {
      deferReply(channel);
      if (auto end = runWaiting(channel)) return end;
      continue;
    }
    if (channel.session == session_) {
      try {
        publishReply(channel, channel.reply);
      } catch (...) {
        endRequest(channel);
        throw;
      }
    } else {
      rt_.logger->warn(
          "a handler returned after the connection its request came on was lost; its reply is "
          "dropped, the broker redelivers the request");
    }
    endRequest(channel);
    if (auto end = runWaiting(channel)) return end;
  }
  return std::nullopt;
}

bool QueueConnection::anyBusy() const noexcept {
  return std::any_of(channels_.begin(), channels_.end(),
                     [](const auto& channel) { return channel->busy; });
}

void QueueConnection::beginRequest(ConsumerChannel& channel) {
  channel.outcome.reset();
  channel.busy = true;
  channel.session = session_;
  rt_.metrics->inProgressAdd(1);
}

void QueueConnection::endRequest(ConsumerChannel& channel) {
  if (channel.reply.deferred) {
    // Deferred, but never taken into deferred_ (its connection was lost).
    channel.reply.deferred->answerWithoutPlugin(DeferredReply::Dropped::kConnectionLost);
    channel.reply.deferred.reset();
  }
  if (!channel.outcome) rt_.metrics->finished(Outcome::kLost);
  rt_.metrics->inProgressAdd(-1);
  channel.outcome.reset();
  channel.busy = false;
  releaseLargeBuffers(channel.reply, kKeptReplyCapacity);
}

void QueueConnection::finish(ConsumerChannel& channel, Outcome outcome) {
  rt_.metrics->finished(outcome);
  channel.outcome = outcome;
}

void QueueConnection::publishReply(ConsumerChannel& channel, const HandlerReply& reply) {
  finish(channel, sendReply(channel, channel.request, reply));
}

Outcome QueueConnection::sendReply(ConsumerChannel& channel, const InboundMessage& message,
                                   const HandlerReply& handler_reply) {
  AmqpConnection& connection = *connection_;
  // A reply the broker cannot take would fail this publish on every
  // redelivery: validate it here and answer an error instead.
  HandlerReply replacement;
  if (auto refusal = unpublishableReply(handler_reply, rt_.queue.max_reply_bytes)) {
    rt_.logger->warn("reply to correlation_id '{}' not sent: {}; internal error reply instead",
                     escapeForLog(message.correlation_id), refusal->message);
    replacement.error = std::move(refusal);
  }
  const HandlerReply& reply = replacement.error ? replacement : handler_reply;
  const ReplyProperties properties(message.correlation_id, reply,
                                   message.persistent ? ReplyProperties::Persistence::kPersistent
                                                      : ReplyProperties::Persistence::kTransient);
  const std::string error_body = reply.error ? errorReplyBody(*reply.error) : std::string();
  const std::uint64_t identity = replyIdentity(message.reply_to, message.correlation_id);
  const std::string_view body =
      reply.error ? std::string_view(error_body) : std::string_view(reply.body);
  const bool direct = isDirectReplyTo(message.reply_to);
  const bool mandatory = !direct;
  try {
    if (message.persistent || confirms_every_reply_) {
      // A persistent request survives a broker restart, so must its answer:
      // the request is acked once the broker confirmed the reply
      // (confirmReplies()). A connection lost or a broker stopped in between
      // means the request is redelivered and answered again, never acked
      // unanswered. Not waited for here: the confirm is read with the next
      // frames.
      // Known as published before it is: a redelivery reaching another
      // consumer meanwhile waits for what the broker makes of it.
      rt_.replies.published(ownerOf(confirm_owner_, direct), identity);
      unconfirmed_.push_back(UnconfirmedReply{
          next_sequence_++, channel.number, message.delivery_tag, identity, Clock::now(), direct});
      connection.publish(confirm_channel_, message.reply_to, properties.get(), body, mandatory);
    } else {
      // A transient request on a single node: reply, then ack, on the same
      // channel. AMQP keeps their order and one node routes the reply before
      // it takes the ack, so a lost connection means a redelivery, never an
      // ack without a reply; what could still lose the reply once the
      // broker has both (its restart) loses transient replies and requests
      // alike, confirmed or not. A confirm would buy nothing and cost a
      // broker round trip per call (docs/performance.md).
      rt_.replies.published(ownerOf(channel.index, direct), identity);
      channel.transient_replies.push_back({identity, direct});
      connection.publish(channel.number, message.reply_to, properties.get(), body, mandatory);
      connection.ack(channel.number, message.delivery_tag);
    }
  } catch (const AmqpError&) {
    rt_.metrics->replyPublishFailed();
    throw;
  }
  if (reply.error) {
    rt_.logger->debug("error reply {} to '{}': {}", errorCodeName(reply.error->code),
                      escapeForLog(message.reply_to), escapeForLog(reply.error->message));
  }
  // Counted by the caller as soon as this returned (a failed publish ends
  // as `lost`): the caller may hold the reply a moment after.
  return reply.error ? outcomeOf(reply.error->code) : Outcome::kOk;
}

// ---------------------------------------------------------------- deferred replies

void QueueConnection::deferReply(ConsumerChannel& channel) {
  DeferredRequest pending;
  pending.reply = std::move(channel.reply.deferred);
  pending.request = std::move(channel.request);
  pending.channel_index = channel.index;
  pending.deadline_ms = channel.deadline_ms;
  pending.deadline_from_header = channel.deadline_from_header;
  pending.started = channel.handler_started;
  const DeferredReply* key = pending.reply.get();
  deferred_.emplace(key, std::move(pending));
  countDeferred(*key, 1);
  // Still in progress (beginRequest() counted it); the channel is free.
  channel.outcome.reset();
  channel.busy = false;
  const auto early = std::find_if(early_completions_.begin(), early_completions_.end(),
                                  [key](const auto& done) { return done.get() == key; });
  if (early != early_completions_.end()) {
    std::shared_ptr<DeferredReply> done = std::move(*early);
    early_completions_.erase(early);
    takeCompletion(std::move(done));
  }
}

void QueueConnection::collectDeferred() {
  for (std::shared_ptr<DeferredReply>& done : deferred_inbox_->take()) {
    takeCompletion(std::move(done));
  }
}

void QueueConnection::takeCompletion(std::shared_ptr<DeferredReply> done) {
  const auto found = deferred_.find(done.get());
  if (found == deferred_.end() && done->completedInTime() &&
      done->droppedBecause() == DeferredReply::Dropped::kNo) {
    // Completed before its handle() returned on another thread, and
    // collected before that thread's completion was: deferReply() takes it.
    early_completions_.push_back(std::move(done));
    return;
  }
  const bool by_handler = done->timing() == DeferredReply::Timing::kByHandler;
  if (found == deferred_.end() || !done->completedInTime()) {
    // Answered without it already.
    if (by_handler) return;  // not a plugin's deferred reply
    if (done->droppedBecause() == DeferredReply::Dropped::kDeadline) {
      rt_.metrics->deferredDroppedLate();
    } else {
      rt_.metrics->deferredDroppedLost();
    }
    return;
  }
  {
    const DeferredRequest pending = std::move(found->second);
    deferred_.erase(found);
    countDeferred(*done, -1);
    rt_.metrics->observeHandler(Clock::now() - pending.started);
    const std::int64_t late_ms = epochMs(std::chrono::system_clock::now()) - pending.deadline_ms;
    const HandlerReply& reply = done->reply();
    // A worker pool answers deadline_exceeded itself when it kills a worker
    // at the deadline: counted the same, its message kept (it logged).
    const bool answered_at_deadline =
        by_handler && reply.error && reply.error->code == WARREN_ERROR_DEADLINE_EXCEEDED;
    if (answered_at_deadline) rt_.metrics->deadlineExceededHandling();
    if (late_ms <= 0 || answered_at_deadline) {
      answerDeferred(pending, reply);
      return;
    }
    // Completed after its deadline, before the expiry below came round.
    rt_.metrics->deadlineExceededHandling();
    if (!by_handler) rt_.metrics->deferredDroppedLate();
    HandlerReply expired;
    expired.error = HandlerError{
        WARREN_ERROR_DEADLINE_EXCEEDED,
        std::string(by_handler ? "the handler returned " : "the deferred reply was completed ") +
            std::to_string(late_ms) + " ms after the deadline"};
    answerDeferred(pending, expired);
  }
}

void QueueConnection::expireDeferred(std::int64_t now_ms) {
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    DeferredRequest& pending = it->second;
    // Completed meanwhile: collectDeferred() takes it next.
    if (expiresAt(pending) >= now_ms ||
        !pending.reply->answerWithoutPlugin(DeferredReply::Dropped::kDeadline)) {
      ++it;
      continue;
    }
    const DeferredRequest expired = std::move(pending);
    it = deferred_.erase(it);
    countDeferred(*expired.reply, -1);
    rt_.metrics->deadlineExceededHandling();
    const std::int64_t late_ms = now_ms - expired.deadline_ms;
    if (const auto held_back = deadline_log_.admit(Clock::now())) {
      rt_.logger->warn(
          "deferred reply of request (correlation_id '{}') not completed by its deadline{}: "
          "deadline_exceeded reply; its completion will be dropped ({} more answered so since "
          "the last such line)",
          escapeForLog(expired.request.correlation_id),
          expired.deadline_from_header ? "" : " (handler_timeout)", *held_back);
    }
    HandlerReply reply;
    reply.error =
        HandlerError{WARREN_ERROR_DEADLINE_EXCEEDED,
                     "the handler deferred its reply and had not completed it " +
                         std::to_string(late_ms) + " ms after the deadline" +
                         (expired.deadline_from_header
                              ? std::string()
                              : " (handler_timeout " +
                                    std::to_string(rt_.queue.handler_timeout.count()) + " ms)")};
    answerDeferred(expired, reply);
  }
}

void QueueConnection::answerDeferred(const DeferredRequest& pending, const HandlerReply& reply) {
  ConsumerChannel& channel = *channels_[static_cast<std::size_t>(pending.channel_index)];
  Outcome outcome = Outcome::kLost;
  try {
    outcome = sendReply(channel, pending.request, reply);
  } catch (...) {
    rt_.metrics->finished(Outcome::kLost);
    rt_.metrics->inProgressAdd(-1);
    throw;
  }
  rt_.metrics->finished(outcome);
  rt_.metrics->inProgressAdd(-1);
}

void QueueConnection::dropDeferred() noexcept {
  // Their requests came on this connection: the broker redelivers them.
  for (const auto& done : early_completions_) {
    done->answerWithoutPlugin(DeferredReply::Dropped::kConnectionLost);
    if (done->timing() == DeferredReply::Timing::kByHost) rt_.metrics->deferredDroppedLost();
  }
  early_completions_.clear();
  for (auto& [key, pending] : deferred_) {
    pending.reply->answerWithoutPlugin(DeferredReply::Dropped::kConnectionLost);
    rt_.metrics->finished(Outcome::kLost);
    rt_.metrics->inProgressAdd(-1);
    countDeferred(*pending.reply, -1);
  }
  deferred_.clear();
}

std::chrono::milliseconds QueueConnection::untilDeferredDeadline(
    std::chrono::milliseconds longest) const {
  const std::int64_t now_ms = epochMs(std::chrono::system_clock::now());
  std::int64_t earliest = now_ms + longest.count();
  for (const auto& [key, pending] : deferred_) earliest = std::min(earliest, expiresAt(pending));
  // Woken one millisecond past it: then it has passed.
  return std::clamp(std::chrono::milliseconds(earliest - now_ms + 1), std::chrono::milliseconds(1),
                    longest);
}

std::int64_t QueueConnection::expiresAt(const DeferredRequest& pending) noexcept {
  return pending.reply->timing() == DeferredReply::Timing::kByHandler
             ? pending.deadline_ms + kHandlerDeadlineBackstop.count()
             : pending.deadline_ms;
}

void QueueConnection::countDeferred(const DeferredReply& reply, int delta) noexcept {
  if (reply.timing() == DeferredReply::Timing::kByHost) rt_.metrics->deferredInFlightAdd(delta);
}

// ---------------------------------------------------------------- confirms

void QueueConnection::confirmReplies(std::uint64_t sequence, bool multiple, bool taken) {
  AmqpConnection& connection = *connection_;
  for (auto it = unconfirmed_.begin(); it != unconfirmed_.end();) {
    if (it->sequence > sequence) break;
    if (!multiple && it->sequence != sequence) {
      ++it;
      continue;
    }
    rt_.replies.settled(ownerOf(confirm_owner_, it->direct), it->identity);
    if (taken && !it->returned) {
      connection.ack(it->channel, it->delivery_tag);
    } else {
      // Refused (basic.nack) or unroutable (basic.return): published again,
      // it would fare the same. Answered at most once, then out of the queue.
      if (!taken) {
        rt_.metrics->replyNacked();
        rt_.logger->warn("the broker refused (basic.nack) a reply; its request is {} without one",
                         rt_.dead_letter ? "dead-lettered" : "acked");
      }
      if (rt_.dead_letter) {
        connection.reject(it->channel, it->delivery_tag, /*requeue=*/false);
      } else {
        connection.ack(it->channel, it->delivery_tag);
      }
    }
    it = unconfirmed_.erase(it);
    if (!multiple) break;
  }
}

void QueueConnection::markReturned(const InboundMessage& returned) {
  // The broker sends a basic.return before the confirm of that publish;
  // the confirm then says what to do with the request. (A transient
  // reply's request was acked with it.)
  if (returned.channel != confirm_channel_) return;
  const std::uint64_t identity = replyIdentity(returned.routing_key, returned.correlation_id);
  for (UnconfirmedReply& reply : unconfirmed_) {
    if (reply.identity == identity && !reply.returned) {
      reply.returned = true;
      return;
    }
  }
}

void QueueConnection::checkConfirmDeadline() const {
  if (unconfirmed_.empty()) return;
  const auto timeout = options_.rpc_timeout;
  if (Clock::now() - unconfirmed_.front().published <= timeout) return;
  throw AmqpError(AmqpError::Scope::kConnection, 0,
                  "the broker confirmed none of " + std::to_string(unconfirmed_.size()) +
                      " reply publish(es) within " + std::to_string(timeout.count()) +
                      " ms; their requests are redelivered");
}

void QueueConnection::settleReplies() {
  for (int owner = 0; owner <= ownerOf(confirm_owner_, true); ++owner) {
    rt_.replies.settled(owner);
  }
  unconfirmed_.clear();
  for (auto& channel : channels_) channel->transient_replies.clear();
}

void QueueConnection::rememberRefusedReplies(amqp_channel_t closed, int code,
                                             const std::string& close_detail) {
  // A broker shutting down (320 CONNECTION_FORCED) refused nothing: the
  // unconfirmed replies are merely lost, and answered again on redelivery.
  if (code == AMQP_CONNECTION_FORCED) {
    settleReplies();
    return;
  }
  // The broker fails a publish it cannot take by closing the channel or the
  // whole connection (`closed` 0): the request comes back redelivered and
  // its reply would fail the same way, forever. The replies on that channel
  // it had not yet shown it took (persistent ones not confirmed, transient
  // ones published since the channel's last delivery) are refused; their
  // redeliveries are not answered again (decide()). When some of them went
  // to direct reply-to addresses, only those are: the others could not have
  // caused it (ownerOf()), and are answered again.
  struct Unsettled {
    int channel_owner;
    std::size_t direct = 0;
    std::size_t other = 0;
  };
  std::vector<Unsettled> affected;
  if (closed == 0 || closed == confirm_channel_) {
    Unsettled entry{confirm_owner_};
    for (const UnconfirmedReply& reply : unconfirmed_)
      ++(reply.direct ? entry.direct : entry.other);
    affected.push_back(entry);
    unconfirmed_.clear();
  }
  for (auto& channel : channels_) {
    if (closed != 0 && closed != channel->number) continue;
    Unsettled entry{channel->index};
    for (const auto& reply : channel->transient_replies) {
      ++(reply.direct ? entry.direct : entry.other);
    }
    affected.push_back(entry);
    channel->transient_replies.clear();
  }
  const bool any_direct = std::any_of(affected.begin(), affected.end(),
                                      [](const Unsettled& entry) { return entry.direct > 0; });
  std::size_t unsettled = 0;
  for (const Unsettled& entry : affected) {
    rt_.replies.refused(ownerOf(entry.channel_owner, true));
    unsettled += entry.direct;
    if (any_direct) {
      rt_.replies.settled(ownerOf(entry.channel_owner, false));
    } else {
      rt_.replies.refused(ownerOf(entry.channel_owner, false));
      unsettled += entry.other;
    }
  }
  if (unsettled > 0) {
    rt_.logger->warn(
        "the broker closed after {} reply publish(es) it had not confirmed ({}); their requests "
        "are not answered again when redelivered",
        unsettled, close_detail);
  }
}

}  // namespace warren
