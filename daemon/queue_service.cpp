#include "queue_service.h"

#include "reply_properties.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string_view>

namespace warren {
namespace {

using Clock = std::chrono::steady_clock;

// Frames read in one go before results are published again, so a burst of
// deliveries cannot starve the replies.
constexpr int kFramesPerTurn = 64;

// Log the 1st, 2nd, 4th, 8th... failure in a row, so a long outage costs a
// few lines, not one per attempt.
bool worthLogging(std::uint32_t attempt) { return (attempt & (attempt - 1)) == 0; }

std::chrono::milliseconds pollInterval(std::chrono::seconds heartbeat) {
  if (heartbeat.count() == 0) return std::chrono::milliseconds(1000);
  return std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat) / 4;
}

// Lends the connection to the handler threads for as long as it serves, so
// they never touch one that is closing or gone.
class AttachedSession {
 public:
  AttachedSession(LiveSession& live, AmqpConnection& connection, std::uint64_t session)
      : live_(live) {
    std::lock_guard lock(live_.mutex());
    live_.attach(&connection, session);
  }
  ~AttachedSession() { detach(); }
  AttachedSession(const AttachedSession&) = delete;
  AttachedSession& operator=(const AttachedSession&) = delete;

  void detach() noexcept {
    if (!attached_) return;
    std::lock_guard lock(live_.mutex());
    live_.detach();
    attached_ = false;
  }

 private:
  LiveSession& live_;
  bool attached_ = true;
};

}  // namespace

QueueService::QueueService(QueueConfig queue, BrokerSettings broker,
                           std::chrono::milliseconds drain_timeout,
                           std::shared_ptr<const PluginInstance> handler,
                           std::shared_ptr<spdlog::logger> logger)
    : queue_(std::move(queue)),
      broker_(std::move(broker)),
      drain_timeout_(drain_timeout),
      logger_(std::move(logger)),
      live_(std::make_shared<LiveSession>(logger_)),
      pool_(std::move(handler), queue_.consumers,
            [live = live_](Completion&& completion) { live->answer(completion); }),
      assembler_(queue_.max_body_bytes) {}

QueueService::~QueueService() {
  requestStop();
  join();
}

void QueueService::start() { io_thread_ = std::thread(&QueueService::run, this); }

void QueueService::requestStop() noexcept {
  {
    std::lock_guard lock(state_mutex_);
    stop_requested_ = true;
  }
  state_changed_.notify_all();
  live_->events().wake();
}

void QueueService::join() {
  if (io_thread_.joinable()) io_thread_.join();
}

bool QueueService::waitConsuming(Clock::time_point deadline) const {
  std::unique_lock lock(state_mutex_);
  return state_changed_.wait_until(lock, deadline, [this] { return consuming_; });
}

void QueueService::setConsuming(bool consuming) {
  {
    std::lock_guard lock(state_mutex_);
    consuming_ = consuming;
  }
  state_changed_.notify_all();
}

void QueueService::waitBeforeRetry(std::chrono::milliseconds delay) {
  std::unique_lock lock(state_mutex_);
  state_changed_.wait_for(lock, delay, [this] { return stop_requested_.load(); });
}

void QueueService::logFailure(const std::string& what, std::uint32_t attempt,
                              std::chrono::milliseconds delay, bool misconfigured) {
  const auto level = !worthLogging(attempt) ? spdlog::level::debug
                     : misconfigured        ? spdlog::level::err
                                            : spdlog::level::warn;
  logger_->log(level, "{} (attempt {}); retrying in {} ms", what, attempt, delay.count());
}

void QueueService::run() {
  Backoff backoff(broker_.reconnect.initial_delay, broker_.reconnect.max_delay);
  std::uint64_t session = 0;
  auto outage_started = Clock::now();
  while (!stop_requested_) {
    ++session;
    pool_.setSession(session);
    assembler_.reset();
    std::string failure;
    bool misconfigured = false;  // the broker refuses what the config asks for
    bool was_consuming = false;
    try {
      AmqpConnection connection(broker_.address, broker_.connection);
      try {
        openSession(connection);
      } catch (const AmqpError& e) {
        if (e.scope() == AmqpError::Scope::kChannel) connection.close();
        throw;
      }
      if (backoff.attempts() > 0) {
        const auto outage =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - outage_started);
        logger_->info("consuming again after {} attempt(s), {} ms without service",
                      backoff.attempts(), outage.count());
      } else {
        logger_->info("consuming '{}' with {} consumer(s), prefetch {}", queue_.name,
                      queue_.consumers, queue_.prefetch);
      }
      backoff.reset();
      setConsuming(true);
      was_consuming = true;
      SessionEnd end{};
      AttachedSession attached(*live_, connection, session);
      try {
        end = serve(connection, session);
      } catch (const AmqpError& e) {
        attached.detach();
        // The connection itself is fine after a channel or consumer loss:
        // close it politely so the broker requeues at once, without warnings.
        if (e.scope() == AmqpError::Scope::kChannel) connection.close();
        throw;
      }
      attached.detach();
      setConsuming(false);
      if (end == SessionEnd::kDrainTimedOut) {
        abandoned_ = true;
        logger_->warn(
            "{} handler(s) still running after the drain timeout ({} ms); closing the "
            "connection, the broker redelivers their requests",
            pool_.busy(), drain_timeout_.count());
      }
      connection.close();
      logger_->info("stopped");
      return;
    } catch (const AmqpError& e) {
      failure = e.what();
      misconfigured = e.replyCode() == 406 || e.replyCode() == 403;
      if (misconfigured) {
        failure +=
            "; the queue exists with other settings or the user lacks permission: "
            "make " +
            queue_.path +
            " (durable, auto_delete, arguments) match the "
            "broker's queue, or delete that queue";
      }
    } catch (const std::exception& e) {
      failure = std::string("protocol error: ") + e.what();
    }
    setConsuming(false);
    if (stop_requested_) break;
    if (was_consuming) {
      outage_started = Clock::now();
      ++live_->counters().sessions_lost;
      if (!misconfigured) failure = "connection lost: " + failure;
    }
    const auto delay = backoff.next();
    logFailure(failure, backoff.attempts(), delay, misconfigured);
    waitBeforeRetry(delay);
  }
  logger_->info("stopped");
}

void QueueService::openSession(AmqpConnection& connection) {
  const auto channels = static_cast<amqp_channel_t>(queue_.consumers);
  for (amqp_channel_t channel = 1; channel <= channels; ++channel) {
    connection.openChannel(channel);
  }
  connection.declareQueue(
      1, QueueDeclaration{queue_.name, queue_.durable, queue_.auto_delete, &queue_.arguments});
  consumer_tags_.clear();
  for (amqp_channel_t channel = 1; channel <= channels; ++channel) {
    connection.setPrefetch(channel, static_cast<std::uint16_t>(queue_.prefetch));
    consumer_tags_.push_back(connection.consume(channel, queue_.name));
  }
}

QueueService::SessionEnd QueueService::serve(AmqpConnection& connection, std::uint64_t session) {
  const auto heartbeat = connection.heartbeat();
  const auto interval = pollInterval(heartbeat);
  auto last_inbound = Clock::now();
  std::vector<std::string> failures;  // reused: no allocation per turn
  bool draining = false;
  auto drain_deadline = Clock::time_point::max();

  for (;;) {
    {
      std::lock_guard lock(live_->mutex());
      live_->events().drainInto(failures);
      if (!failures.empty()) {
        throw AmqpError(AmqpError::Scope::kConnection, 0, "publishing a reply: " + failures[0]);
      }
      if (stop_requested_ && !draining) {
        draining = true;
        drain_deadline = Clock::now() + drain_timeout_;
        live_->startDraining();
        beginDrain(connection);
      }
      if (draining && live_->inFlight() == 0) return SessionEnd::kDrained;
      if (draining && Clock::now() >= drain_deadline) return SessionEnd::kDrainTimedOut;
    }

    // One frame per lock: a handler thread waiting to publish its reply gets
    // the connection between two frames, not after a whole burst.
    bool more = true;
    for (int i = 0; i < kFramesPerTurn && more; ++i) {
      std::lock_guard lock(live_->mutex());
      amqp_frame_t frame;
      if (!connection.readFrameNoWait(frame)) {
        more = false;  // nothing buffered, nothing on the socket: poll() next
        break;
      }
      last_inbound = Clock::now();
      handleFrame(connection, frame, session, draining);
      amqp_maybe_release_buffers(connection.raw());
      more = connection.hasBufferedInput();
    }

    // rabbitmq-c only notices missing broker heartbeats inside a blocking
    // wait, which this loop never makes: watch for them here.
    if (heartbeat.count() > 0 && Clock::now() - last_inbound > 2 * heartbeat) {
      throw AmqpError(
          AmqpError::Scope::kConnection, 0,
          "no heartbeat from the broker for " + std::to_string(2 * heartbeat.count()) + " s");
    }
    if (more) continue;

    auto timeout = interval;
    if (draining) {
      // Never negative: poll() would take that as "wait forever".
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(drain_deadline - Clock::now());
      timeout = std::clamp(left, std::chrono::milliseconds(0), timeout);
    }
    std::array<pollfd, 2> fds{pollfd{connection.fd(), POLLIN, 0},
                              pollfd{live_->events().fd(), POLLIN, 0}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    if (ready < 0 && errno != EINTR) {
      throw AmqpError(AmqpError::Scope::kConnection, 0, "poll failed");
    }
    if (ready > 0 && fds[0].revents != 0) last_inbound = Clock::now();
  }
}

void QueueService::beginDrain(AmqpConnection& connection) {
  logger_->info("draining: no new requests, waiting for {} in flight (up to {} ms)",
                live_->inFlight(), drain_timeout_.count());
  for (std::size_t i = 0; i < consumer_tags_.size(); ++i) {
    connection.cancel(static_cast<amqp_channel_t>(i + 1), consumer_tags_[i]);
  }
  // Deliveries no handler has started go back to the queue at once, for
  // another consumer (or this daemon's next start) to answer.
  for (Job& job : pool_.takeQueued()) {
    connection.reject(job.message.channel, job.message.delivery_tag, /*requeue=*/true);
    ++live_->counters().requeued;
    live_->removeInFlight();
  }
}

void QueueService::handleFrame(AmqpConnection& connection, const amqp_frame_t& frame,
                               std::uint64_t session, bool draining) {
  if (frame.frame_type == AMQP_FRAME_HEADER || frame.frame_type == AMQP_FRAME_BODY) {
    if (auto message = assembler_.feed(frame)) {
      handleMessage(connection, std::move(*message), session, draining);
    }
    return;
  }
  if (assembler_.beginIfContentMethod(frame)) return;
  if (frame.frame_type != AMQP_FRAME_METHOD) return;  // heartbeats are the library's

  const amqp_method_t& method = frame.payload.method;
  switch (method.id) {
    case AMQP_BASIC_CANCEL_METHOD:
      // consumer_cancel_notify: the queue was deleted (or the node holding
      // it went away). Consuming again needs a new session, which re-declares.
      throw AmqpError(AmqpError::Scope::kChannel, 0,
                      "the broker cancelled the consumer on channel " +
                          std::to_string(frame.channel) + " (was queue '" + queue_.name +
                          "' deleted?); declaring it and consuming again");
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      const int code = static_cast<const amqp_channel_close_t*>(method.decoded)->reply_code;
      connection.confirmChannelClose(frame.channel);
      throw AmqpError(AmqpError::Scope::kChannel, code,
                      "the broker closed channel " + std::to_string(frame.channel) + ": " + detail);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      const int code = static_cast<const amqp_connection_close_t*>(method.decoded)->reply_code;
      connection.confirmConnectionClose();
      throw AmqpError(AmqpError::Scope::kConnection, code,
                      "the broker closed the connection: " + detail);
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
      const auto* blocked = static_cast<const amqp_connection_blocked_t*>(method.decoded);
      ++live_->counters().blocked;
      logger_->warn(
          "the broker blocks publishing on this connection: {}",
          std::string_view(static_cast<const char*>(blocked->reason.bytes), blocked->reason.len));
      return;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
      logger_->info("the broker unblocked publishing on this connection");
      return;
    default:
      logger_->debug("ignoring {} on channel {}", amqp_method_name(method.id), frame.channel);
      return;
  }
}

void QueueService::handleMessage(AmqpConnection& connection, InboundMessage message,
                                 std::uint64_t session, bool draining) {
  if (message.kind == InboundMessage::Kind::kReturn) {
    if (isDirectReplyTo(message.routing_key)) return;  // delivered all the same
    ++live_->counters().returned;
    logger_->warn(
        "reply to '{}' (correlation_id '{}') was not routed: {} {}; the caller's "
        "reply queue is gone",
        message.routing_key, message.correlation_id, message.reply_code, message.reply_text);
    return;
  }

  ++live_->counters().received;
  const amqp_channel_t channel = message.channel;
  const std::uint64_t tag = message.delivery_tag;
  if (draining) {
    connection.reject(channel, tag, /*requeue=*/true);
    ++live_->counters().requeued;
    return;
  }
  if (!message.has_reply_to) {
    ++live_->counters().missing_reply_to;
    logger_->warn("request without reply_to (correlation_id '{}', {} bytes): acked, no reply",
                  message.correlation_id, message.body_size);
    connection.ack(channel, tag);
    return;
  }
  if (message.body_too_large) {
    ++live_->counters().too_large;
    logger_->warn("request of {} bytes exceeds max_body_bytes ({}): error reply", message.body_size,
                  queue_.max_body_bytes);
    Completion refusal;
    refusal.channel = channel;
    refusal.delivery_tag = tag;
    refusal.reply_to = std::move(message.reply_to);
    refusal.correlation_id = std::move(message.correlation_id);
    refusal.reply.error = HandlerError{WARREN_ERROR_TOO_LARGE,
                                       "request body of " + std::to_string(message.body_size) +
                                           " bytes exceeds the limit of " +
                                           std::to_string(queue_.max_body_bytes) + " bytes"};
    live_->publishReply(connection, refusal);
    return;
  }
  live_->addInFlight();
  pool_.submit(Job{session, std::move(message)});
}

}  // namespace warren
