#include "consumer.h"

#include "log_escape.h"
#include "reply_properties.h"
#include "request_policy.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>
#include <string_view>

namespace warren {
namespace {

using Clock = std::chrono::steady_clock;

// A consumer's channels: requests, their acks and transient replies on one;
// persistent replies on the other, in confirm mode (see publishReply()).
constexpr amqp_channel_t kChannel = 1;
constexpr amqp_channel_t kConfirmChannel = 2;

// warren_requests_in_progress up when a request arrives; when its handling
// ends, however it ends, down again, and `lost` when the handling finished
// with no outcome (Consumer::finish) (its reply publish or ack failed, the
// connection was lost or closed at the drain deadline while it ran).
class RequestInFlight {
 public:
  RequestInFlight(QueueMetrics& metrics, std::optional<Outcome>& outcome)
      : metrics_(metrics), outcome_(outcome) {
    outcome_.reset();
    metrics_.inProgressAdd(1);
  }
  ~RequestInFlight() {
    if (!outcome_) metrics_.finished(Outcome::kLost);
    metrics_.inProgressAdd(-1);
    outcome_.reset();
  }
  RequestInFlight(const RequestInFlight&) = delete;
  RequestInFlight& operator=(const RequestInFlight&) = delete;

 private:
  QueueMetrics& metrics_;
  std::optional<Outcome>& outcome_;
};

std::chrono::milliseconds pollInterval(std::chrono::seconds heartbeat) {
  if (heartbeat.count() == 0) return std::chrono::milliseconds(1000);
  return std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat) / 4;
}

}  // namespace

Consumer::Consumer(std::shared_ptr<QueueRuntime> runtime, int index)
    : runtime_(std::move(runtime)),
      index_(index),
      rt_(*runtime_),
      assembler_(rt_.queue.max_body_bytes) {}

void Consumer::start() {
  thread_ = std::thread([self = shared_from_this()] {
    self->run();
    self->finished();
  });
}

void Consumer::expectTurnWithin(std::chrono::milliseconds wait) noexcept {
  // A synchronous library call made on the way may take the rpc timeout.
  const auto margin = rt_.broker.connection.rpc_timeout + std::chrono::seconds(5);
  turn_deadline_.store((Clock::now() + wait + margin).time_since_epoch().count(),
                       std::memory_order_relaxed);
}

bool Consumer::stalled(Clock::time_point now) const noexcept {
  if (watch_.parked()) return false;
  return now.time_since_epoch().count() > turn_deadline_.load(std::memory_order_relaxed);
}

void Consumer::finished() {
  // Gone is not stalled.
  turn_deadline_.store(Clock::time_point::max().time_since_epoch().count(),
                       std::memory_order_relaxed);
  {
    std::lock_guard lock(done_mutex_);
    done_ = true;
  }
  done_changed_.notify_all();
}

bool Consumer::done() const {
  std::lock_guard lock(done_mutex_);
  return done_;
}

bool Consumer::join(Clock::time_point deadline) {
  if (!thread_.joinable()) return true;
  bool done = false;
  {
    std::unique_lock lock(done_mutex_);
    done = done_changed_.wait_until(lock, deadline, [this] { return done_; });
  }
  if (!done && watch_.cutAtDeadline()) {
    thread_.detach();
    return false;
  }
  thread_.join();
  return true;
}

void Consumer::run() {
  const QueueConfig& queue = rt_.queue;
  Backoff backoff(rt_.broker.reconnect.initial_delay, rt_.broker.reconnect.max_delay);
  ConnectionOptions options = rt_.broker.connection;
  options.connection_name += " #" + std::to_string(index_ + 1);
  while (!rt_.stop.requested()) {
    assembler_.reset();
    declare_refused_ = false;
    std::string failure;
    bool misconfigured = false;  // the broker refuses what the config asks for
    bool was_consuming = false;
    try {
      // Connecting, then six synchronous calls to open the session.
      expectTurnWithin(options.connect_timeout + 6 * options.rpc_timeout);
      rt_.metrics->connectionAttempt();
      AmqpConnection connection(rt_.broker.address, options);
      const WatchedConnection::Session watched(watch_, connection);
      try {
        openSession(connection);
      } catch (const AmqpError& e) {
        if (e.scope() == AmqpError::Scope::kChannel) connection.close();
        throw;
      }
      rt_.health.consuming(index_, backoff.attempts());
      backoff.reset();
      was_consuming = true;
      SessionEnd end{};
      try {
        end = serve(connection);
      } catch (const AmqpError& e) {
        // The connection itself is fine after a channel or consumer loss:
        // close it politely so the broker requeues at once, without warnings.
        if (e.scope() == AmqpError::Scope::kChannel) connection.close();
        throw;
      }
      rt_.health.stopped(index_);
      if (end == SessionEnd::kDrained) {
        connection.close();
      } else {
        // Its connection was closed under it at the drain deadline.
        rt_.logger->warn(
            "consumer {}: a handler abandoned at the drain deadline returned; its reply is "
            "dropped, the broker redelivers the request",
            index_ + 1);
      }
      settleReplies();
      return;
    } catch (const AmqpError& e) {
      failure = e.what();
      // Only a refused queue.declare means the config and the broker's queue
      // disagree: a 406 or 403 later (a reply publish, an ack) says nothing
      // of the queue's settings.
      misconfigured = declare_refused_;
      if (misconfigured) {
        failure += "; the queue exists with other settings or the user lacks permission: make " +
                   queue.path +
                   " (durable, auto_delete, arguments) match the broker's queue, or delete that "
                   "queue";
      }
    } catch (const std::exception& e) {
      failure = std::string("protocol error: ") + e.what();
    }
    // Replies not refused by a broker close were taken, or lost with the
    // connection: their redeliveries are answered again.
    settleReplies();
    if (rt_.stop.requested()) break;
    if (was_consuming) rt_.metrics->sessionLost();
    const auto delay = backoff.next();
    rt_.health.failed(index_, failure, backoff.attempts(), delay, was_consuming, misconfigured);
    expectTurnWithin(delay);
    rt_.stop.waitFor(delay);
  }
  rt_.health.stopped(index_);
}

void Consumer::openSession(AmqpConnection& connection) {
  const QueueConfig& queue = rt_.queue;
  connection.openChannel(kChannel);
  connection.openChannel(kConfirmChannel);
  connection.confirmSelect(kConfirmChannel);
  unconfirmed_.clear();
  transient_replies_.clear();
  next_sequence_ = 1;
  declare_refused_ = false;
  try {
    connection.declareQueue(
        kChannel, QueueDeclaration{queue.name, queue.durable, queue.auto_delete, &queue.arguments});
  } catch (const AmqpError& e) {
    declare_refused_ = e.replyCode() == 406 || e.replyCode() == 403;
    throw;
  }
  connection.setPrefetch(kChannel, static_cast<std::uint16_t>(queue.prefetch));
  consumer_tag_ = connection.consume(kChannel, queue.name);
}

Consumer::SessionEnd Consumer::serve(AmqpConnection& connection) {
  const auto heartbeat = connection.heartbeat();
  const auto interval = pollInterval(heartbeat);
  auto last_inbound = Clock::now();
  bool draining = false;

  for (;;) {
    expectTurnWithin(interval);
    if (!draining && rt_.stop.requested()) {
      draining = true;
      cancelConsumer(connection);
    }
    bool more = true;
    while (more) {
      amqp_frame_t frame;
      if (!connection.readFrameNoWait(frame)) {
        more = false;  // nothing buffered, nothing on the socket: wait in poll()
        break;
      }
      last_inbound = Clock::now();
      if (!handleFrame(connection, frame)) return SessionEnd::kAbandoned;
      // A handler ran: the broker's heartbeats meanwhile are in the socket.
      if (Clock::now() - last_inbound > interval && connection.socketReadable()) {
        last_inbound = Clock::now();
      }
      amqp_maybe_release_buffers(connection.raw());
      // Skip the read that would only say "nothing yet": poll() first.
      more = connection.hasBufferedInput();
      if (!draining && rt_.stop.requested()) break;
    }
    // Cancelled, every delivery that came before the cancel-ok handed back,
    // and every reply confirmed (its request acked): nothing more arrives.
    if (draining && !connection.hasBufferedInput() && unconfirmed_.empty()) {
      return SessionEnd::kDrained;
    }
    if (more) continue;
    // Everything the broker sent so far is read: a confirm still missing is late.
    checkConfirmDeadline();

    auto wait = interval;
    if (!unconfirmed_.empty()) {
      const auto due = unconfirmed_.front().published + rt_.broker.connection.rpc_timeout;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now()) +
                        std::chrono::milliseconds(1);
      wait = std::clamp(left, std::chrono::milliseconds(1), interval);
    }
    std::array<pollfd, 2> fds{pollfd{connection.fd(), POLLIN, 0}, pollfd{rt_.stop.fd(), POLLIN, 0}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    if (ready < 0 && errno != EINTR) {
      throw AmqpError(AmqpError::Scope::kConnection, 0, "poll failed");
    }
    if (ready > 0 && fds[0].revents != 0) {
      last_inbound = Clock::now();
      continue;
    }
    // rabbitmq-c only notices missing broker heartbeats inside a blocking
    // wait, which this loop never makes: watch for them here, and only once
    // poll() found the socket silent, so that what the broker sent while a
    // long handler ran counts as heard.
    if (ready == 0 && heartbeat.count() > 0 && Clock::now() - last_inbound > 2 * heartbeat) {
      throw AmqpError(
          AmqpError::Scope::kConnection, 0,
          "no heartbeat from the broker for " + std::to_string(2 * heartbeat.count()) + " s");
    }
  }
}

void Consumer::cancelConsumer(AmqpConnection& connection) {
  // Deliveries that arrive before the cancel-ok are kept by rabbitmq-c and
  // read next: handleMessage() hands them back to the queue.
  connection.cancel(kChannel, consumer_tag_);
}

bool Consumer::handleFrame(AmqpConnection& connection, const amqp_frame_t& frame) {
  if (frame.frame_type == AMQP_FRAME_HEADER || frame.frame_type == AMQP_FRAME_BODY) {
    if (auto message = assembler_.feed(frame)) {
      return handleMessage(connection, std::move(*message));
    }
    return true;
  }
  if (frame.frame_type == AMQP_FRAME_METHOD &&
      frame.payload.method.id == AMQP_BASIC_DELIVER_METHOD && !transient_replies_.empty()) {
    // With prefetch 1 the broker sends the next delivery only after it took
    // the ack that followed the last transient reply: those were accepted.
    for (const std::uint64_t identity : transient_replies_) rt_.replies.settled(index_, identity);
    transient_replies_.clear();
  }
  if (assembler_.beginIfContentMethod(frame)) return true;
  if (frame.frame_type != AMQP_FRAME_METHOD) return true;  // heartbeats are the library's

  const amqp_method_t& method = frame.payload.method;
  switch (method.id) {
    case AMQP_BASIC_CANCEL_METHOD:
      // consumer_cancel_notify: the queue was deleted (or the node holding
      // it went away). Consuming again needs a new session, which re-declares.
      throw AmqpError(AmqpError::Scope::kChannel, 0,
                      "the broker cancelled the consumer (was queue '" + rt_.queue.name +
                          "' deleted?); declaring it and consuming again");
    case AMQP_BASIC_ACK_METHOD: {
      if (frame.channel != kConfirmChannel) return true;
      const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
      confirmReplies(connection, ack->delivery_tag, ack->multiple != 0, /*taken=*/true);
      return true;
    }
    case AMQP_BASIC_NACK_METHOD: {
      if (frame.channel != kConfirmChannel) return true;
      const auto* nack = static_cast<const amqp_basic_nack_t*>(method.decoded);
      confirmReplies(connection, nack->delivery_tag, nack->multiple != 0, /*taken=*/false);
      return true;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      const int code = static_cast<const amqp_channel_close_t*>(method.decoded)->reply_code;
      rememberRefusedReplies(code, detail);
      connection.confirmChannelClose(frame.channel);
      throw AmqpError(AmqpError::Scope::kChannel, code, "the broker closed the channel: " + detail);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      const int code = static_cast<const amqp_connection_close_t*>(method.decoded)->reply_code;
      rememberRefusedReplies(code, detail);
      connection.confirmConnectionClose();
      throw AmqpError(AmqpError::Scope::kConnection, code,
                      "the broker closed the connection: " + detail);
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
      const auto* blocked = static_cast<const amqp_connection_blocked_t*>(method.decoded);
      rt_.metrics->brokerBlocked();
      rt_.logger->warn(
          "consumer {}: the broker blocks publishing on this connection: {}", index_ + 1,
          std::string_view(static_cast<const char*>(blocked->reason.bytes), blocked->reason.len));
      return true;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
      rt_.logger->info("consumer {}: the broker unblocked publishing on this connection",
                       index_ + 1);
      return true;
    default:
      rt_.logger->debug("ignoring {} on channel {}", amqp_method_name(method.id), frame.channel);
      return true;
  }
}

void Consumer::confirmReplies(AmqpConnection& connection, std::uint64_t sequence, bool multiple,
                              bool taken) {
  for (auto it = unconfirmed_.begin(); it != unconfirmed_.end();) {
    if (it->sequence > sequence) break;
    if (!multiple && it->sequence != sequence) {
      ++it;
      continue;
    }
    rt_.replies.settled(index_, it->identity);
    if (taken && !it->returned) {
      connection.ack(kChannel, it->delivery_tag);
    } else {
      // Refused (basic.nack) or unroutable (basic.return): published again,
      // it would fare the same. Answered at most once, then out of the queue.
      if (!taken) {
        rt_.metrics->replyNacked();
        rt_.logger->warn(
            "consumer {}: the broker refused (basic.nack) a reply; its request is {} without one",
            index_ + 1, rt_.dead_letter ? "dead-lettered" : "acked");
      }
      if (rt_.dead_letter) {
        connection.reject(kChannel, it->delivery_tag, /*requeue=*/false);
      } else {
        connection.ack(kChannel, it->delivery_tag);
      }
    }
    it = unconfirmed_.erase(it);
    if (!multiple) break;
  }
}

void Consumer::markReturned(const InboundMessage& returned) {
  // The broker sends a basic.return before the confirm of that publish;
  // the confirm then says what to do with the request. (A transient
  // reply's request was acked with it.)
  if (returned.channel != kConfirmChannel) return;
  const std::uint64_t identity = replyIdentity(returned.routing_key, returned.correlation_id);
  for (UnconfirmedReply& reply : unconfirmed_) {
    if (reply.identity == identity && !reply.returned) {
      reply.returned = true;
      return;
    }
  }
}

void Consumer::checkConfirmDeadline() const {
  if (unconfirmed_.empty()) return;
  const auto timeout = rt_.broker.connection.rpc_timeout;
  if (Clock::now() - unconfirmed_.front().published <= timeout) return;
  throw AmqpError(AmqpError::Scope::kConnection, 0,
                  "the broker confirmed none of " + std::to_string(unconfirmed_.size()) +
                      " reply publish(es) within " + std::to_string(timeout.count()) +
                      " ms; their requests are redelivered");
}

void Consumer::settleReplies() {
  rt_.replies.settled(index_);
  unconfirmed_.clear();
  transient_replies_.clear();
}

void Consumer::rememberRefusedReplies(int code, const std::string& close_detail) {
  // A broker shutting down (320 CONNECTION_FORCED) refused nothing: the
  // unconfirmed replies are merely lost, and answered again on redelivery.
  if (code == AMQP_CONNECTION_FORCED) {
    settleReplies();
    return;
  }
  // The broker fails a publish it cannot take by closing the channel or the
  // whole connection: the request comes back redelivered and its reply
  // would fail the same way, forever. The replies it had not yet shown it
  // took (persistent ones not confirmed, transient ones published since the
  // last delivery) are refused; their redeliveries are not answered again
  // (decide()).
  const std::size_t unsettled = unconfirmed_.size() + transient_replies_.size();
  if (unsettled > 0) {
    rt_.logger->warn(
        "consumer {}: the broker closed after {} reply publish(es) it had not confirmed ({}); "
        "their requests are not answered again when redelivered",
        index_ + 1, unsettled, close_detail);
  }
  rt_.replies.refused(index_);
  unconfirmed_.clear();
  transient_replies_.clear();
}

bool Consumer::handleMessage(AmqpConnection& connection, InboundMessage message) {
  if (message.kind == InboundMessage::Kind::kReturn) {
    if (isDirectReplyTo(message.routing_key)) return true;  // delivered all the same
    markReturned(message);
    rt_.metrics->replyReturned();
    rt_.logger->warn(
        "reply to '{}' (correlation_id '{}') was not routed: {} {}; the caller's reply queue is "
        "gone",
        escapeForLog(message.routing_key), escapeForLog(message.correlation_id), message.reply_code,
        escapeForLog(message.reply_text));
    return true;
  }

  QueueMetrics& metrics = *rt_.metrics;
  metrics.received();
  if (message.redelivered) metrics.redelivered();
  const RequestInFlight in_flight(metrics, outcome_);
  const amqp_channel_t channel = message.channel;
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

  const Decision decision = decide(facts);
  switch (decision) {
    case Decision::kRequeue:
      // Not started: back to the queue at once, for another consumer (or
      // this daemon's next start) to answer, or for this one once the fate
      // of its earlier reply is known.
      connection.reject(channel, tag, /*requeue=*/true);
      finish(Outcome::kRequeued);
      return true;
    case Decision::kAckWithoutReply:
      connection.ack(channel, tag);
      finish(Outcome::kNoReplyTo);
      // Logged once done with, so that a reader of the log finds it counted.
      rt_.logger->warn("request without reply_to (correlation_id '{}', {} bytes): acked, no reply",
                       escapeForLog(message.correlation_id), message.body_size);
      return true;
    case Decision::kRefuseAck:
    case Decision::kRefuseDeadLetter: {
      const bool dead_letter = decision == Decision::kRefuseDeadLetter;
      if (dead_letter) {
        connection.reject(channel, tag, /*requeue=*/false);
      } else {
        connection.ack(channel, tag);
      }
      finish(Outcome::kReplyRefused);
      // Logged once done with, so that a reader of the log finds it counted.
      rt_.logger->warn(
          "request with reply_to '{}' (correlation_id '{}'): {}; {} without a reply",
          escapeForLog(message.reply_to), escapeForLog(message.correlation_id),
          facts.earlier_reply == RequestFacts::EarlierReply::kRefused
              ? "the broker closed the connection or channel when its reply was published"
              : "the broker cannot deliver a reply there",
          dead_letter ? "dead-lettered" : "acked");
      return true;
    }
    case Decision::kReplyTooLarge: {
      rt_.logger->warn("request of {} bytes exceeds max_body_bytes ({}): error reply",
                       message.body_size, rt_.queue.max_body_bytes);
      HandlerReply refusal;
      refusal.error = HandlerError{WARREN_ERROR_TOO_LARGE,
                                   "request body of " + std::to_string(message.body_size) +
                                       " bytes exceeds the limit of " +
                                       std::to_string(rt_.queue.max_body_bytes) + " bytes"};
      publishReply(connection, message, refusal);
      return true;
    }
    case Decision::kRunHandler:
      break;
  }
  const bool usable = answer(connection, message);
  constexpr std::size_t kKeptReplyCapacity = 64 * 1024;
  releaseLargeBuffers(reply_, kKeptReplyCapacity);
  return usable;
}

bool Consumer::answer(AmqpConnection& connection, const InboundMessage& message) {
  headers_.clear();
  for (const auto& [key, value] : message.headers) {
    headers_.push_back({{key.data(), key.size()}, {value.data(), value.size()}});
  }
  warren_request request{};
  request.body = {message.body.data(), message.body.size()};
  request.content_type = {message.content_type.data(), message.content_type.size()};
  request.headers = headers_.empty() ? nullptr : headers_.data();
  request.header_count = headers_.size();
  request.redelivered = message.redelivered ? 1 : 0;

  watch_.park();
  const auto started = Clock::now();
  rt_.handler->handle(request, reply_);
  rt_.metrics->observeHandler(Clock::now() - started);
  if (!watch_.unpark()) return false;
  publishReply(connection, message, reply_);
  return true;
}

void Consumer::publishReply(AmqpConnection& connection, const InboundMessage& message,
                            const HandlerReply& handler_reply) {
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
  // Known as published before it is: a redelivery reaching another consumer
  // meanwhile waits for what the broker makes of it.
  const std::uint64_t identity = replyIdentity(message.reply_to, message.correlation_id);
  rt_.replies.published(index_, identity);
  const std::string_view body =
      reply.error ? std::string_view(error_body) : std::string_view(reply.body);
  const bool mandatory = !isDirectReplyTo(message.reply_to);
  try {
    if (message.persistent) {
      // A persistent request survives a broker restart, so must its answer:
      // the request is acked once the broker confirmed the reply
      // (confirmReplies()). A connection lost or a broker stopped in between
      // means the request is redelivered and answered again, never acked
      // unanswered. Not waited for here: the confirm is read with the next
      // frames.
      unconfirmed_.push_back(
          UnconfirmedReply{next_sequence_++, message.delivery_tag, identity, Clock::now()});
      connection.publish(kConfirmChannel, message.reply_to, properties.get(), body, mandatory);
    } else {
      // A transient request: reply, then ack, on the same channel. AMQP
      // keeps their order, so a lost connection means a redelivery, never
      // an ack without a reply; what could still lose the reply once the
      // broker has both (its restart) loses transient replies and requests
      // alike, confirmed or not. A confirm would buy nothing and cost a
      // broker round trip per call (docs/performance.md).
      transient_replies_.push_back(identity);
      connection.publish(kChannel, message.reply_to, properties.get(), body, mandatory);
      connection.ack(kChannel, message.delivery_tag);
    }
  } catch (const AmqpError&) {
    rt_.metrics->replyPublishFailed();
    throw;
  }
  // Counted as soon as the publish returned (a failed one ends as `lost`):
  // the caller may hold the reply a moment before this runs.
  finish(reply.error ? outcomeOf(reply.error->code) : Outcome::kOk);
  if (reply.error) {
    rt_.logger->debug("error reply {} to '{}': {}", errorCodeName(reply.error->code),
                      escapeForLog(message.reply_to), escapeForLog(reply.error->message));
  }
}

void Consumer::finish(Outcome outcome) {
  rt_.metrics->finished(outcome);
  outcome_ = outcome;
}

}  // namespace warren
