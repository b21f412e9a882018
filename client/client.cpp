// SPDX-License-Identifier: Apache-2.0
#include <warren/client.hpp>

#include "amqp_connection.h"
#include "broker_rotation.h"
#include "broker_url.h"
#include "connection_watch.h"
#include "delivery_assembler.h"
#include "mailbox.h"
#include "pending_calls.h"
#include "publish_channel.h"
#include "reply_outcome.h"
#include "secret_file.h"
#include "wire.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace warren {
namespace {

using client_detail::Clock;
using client_detail::ConnectionWatch;
using client_detail::Done;
using client_detail::PendingCall;
using client_detail::PublishChannel;

// Replies are consumed on channel 1. Requests are published on a channel of
// their own, replaced after a refusal (publish_channel.h); with direct
// reply-to on channel 1, as RabbitMQ requires.
constexpr amqp_channel_t kReplyChannel = 1;
constexpr amqp_channel_t kFirstPublishChannel = 2;
constexpr amqp_channel_t kLastPublishChannel = 9;
// A publishing channel is replaced at most this often (a full queue refuses
// requests for as long as it is full).
constexpr std::chrono::seconds kRenewalInterval{1};
// A refused request is published again after this, doubling per refusal up
// to kMaxRepublishDelay, until its call's deadline.
constexpr std::chrono::milliseconds kFirstRepublishDelay{50};
constexpr std::chrono::milliseconds kMaxRepublishDelay{1000};
constexpr std::string_view kDirectReplyTo = wire::kDirectReplyTo;
constexpr std::string_view kDefaultUrl = wire::kDefaultBrokerUrl;
// Replies larger than this are dropped unread; their call fails.
constexpr std::size_t kMaxReplyBytes = 128 * 1024 * 1024;
// Frames read in one go before new requests are published again.
constexpr int kFramesPerTurn = 64;
// Frame handling (callbacks) longer than this may have missed heartbeats.
constexpr std::chrono::milliseconds kLongTurn{100};
// A polite connection.close that takes longer is cut short.
constexpr std::chrono::seconds kCloseTimeout{1};

amqp_bytes_t bytesOf(std::string_view text) noexcept {
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}

// Unique enough that no other client's reply can match ours.
std::string correlationPrefix() {
  std::random_device random;
  const std::uint64_t bits = (std::uint64_t{random()} << 32) ^ random();
  char text[24];
  const int n =
      std::snprintf(text, sizeof text, "w%016llx-", static_cast<unsigned long long>(bits));
  return std::string(text, static_cast<std::size_t>(n));
}

CallOutcome failure(CallStatus status, std::string message) {
  CallOutcome outcome;
  outcome.status = status;
  outcome.message = std::move(message);
  return outcome;
}

CallOutcome refusedUntilDeadline(const std::string& queue, int refusals) {
  return failure(CallStatus::kRejected,
                 "the broker refused the request for queue '" + queue + "' " +
                     std::to_string(refusals) +
                     " time(s) until its deadline (basic.nack: the queue is full and rejects new "
                     "messages, or it has no leader or majority); nothing ran it");
}

}  // namespace

std::string_view callStatusName(CallStatus status) noexcept {
  switch (status) {
    case CallStatus::kOk:
      return "ok";
    case CallStatus::kRemoteError:
      return "remote_error";
    case CallStatus::kTimeout:
      return "timeout";
    case CallStatus::kNoRoute:
      return "no_route";
    case CallStatus::kConnectionLost:
      return "connection_lost";
    case CallStatus::kNotConnected:
      return "not_connected";
    case CallStatus::kRejected:
      return "rejected";
  }
  return "unknown";
}

std::string defaultBrokerUrl(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("WARREN_BROKER_URL"); env != nullptr && *env != '\0') {
    return env;
  }
  return std::string(kDefaultUrl);
}

std::string defaultPasswordFile(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  const char* env = std::getenv("WARREN_BROKER_PASSWORD_FILE");
  return env != nullptr ? env : "";
}

namespace {

// The addresses of options.broker_url with the password file applied.
// std::invalid_argument for what the caller got wrong.
std::vector<BrokerAddress> brokerAddresses(const ClientOptions& options) {
  std::vector<BrokerAddress> addresses;
  for (const std::string& url : splitBrokerUrls(options.broker_url)) {
    addresses.push_back(parseBrokerUrl(url));
  }
  const std::string password_file = defaultPasswordFile(options.password_file);
  for (BrokerAddress& address : addresses) {
    if (options.external_login) {
      if (address.url_has_user || address.url_has_password || !password_file.empty()) {
        throw std::invalid_argument(
            "external login uses the TLS client certificate: give no user or password");
      }
      if (!address.tls || options.tls.cert_file.empty()) {
        throw std::invalid_argument(
            "external login needs amqps:// URLs and a client certificate (tls.cert_file)");
      }
    }
    if (!password_file.empty() && address.url_has_password) {
      throw std::invalid_argument("'" + address.endpoint() +
                                  "': the URL holds a password and a password file gives one: "
                                  "keep the password in one place");
    }
  }
  if (!password_file.empty()) {
    std::string password;
    try {
      password = readSecretFile(password_file);
    } catch (const std::runtime_error& e) {
      throw std::invalid_argument(e.what());
    }
    for (BrokerAddress& address : addresses) address.password = password;
  }
  if (options.tls.cert_file.empty() != options.tls.key_file.empty()) {
    throw std::invalid_argument("tls.cert_file and tls.key_file go together: give both or neither");
  }
  return addresses;
}

ClientOptions withDefaultUrl(ClientOptions options) {
  options.broker_url = defaultBrokerUrl(options.broker_url);
  return options;
}

}  // namespace

// Hidden: a nested class takes Client's exported visibility otherwise, and
// nothing of it is libwarren-client's interface.
class __attribute__((visibility("hidden"))) Client::Impl {
 public:
  explicit Impl(ClientOptions options);
  ~Impl();

  void submit(std::string_view queue, std::string_view body, const CallOptions& options, Done done);
  ClientStats stats() const;
  bool onIoThread() const noexcept { return std::this_thread::get_id() == io_thread_.get_id(); }

 private:
  struct Submission {
    std::string queue;
    std::string body;
    std::string content_type;
    Clock::time_point deadline;
    Done done;
    int refusals = 0;                // times the broker refused it so far
    Clock::time_point not_before{};  // a refused request: when to publish it again
  };

  void connect();
  void run();
  void serveTurn(std::vector<Submission>& batch);
  // Publishes the batch, or holds it while the broker blocks publishing.
  void send(std::vector<Submission>& batch);
  void publish(Submission& submission);
  // Fails submissions that could not be sent, with their callbacks.
  void failUnsent(std::vector<Submission>& submissions, CallStatus status, const std::string& why);
  void expireHeld(Clock::time_point now);
  void handleFrame(const amqp_frame_t& frame);
  void handleMessage(InboundMessage&& message);
  // basic.ack / basic.nack: what the broker did with our requests.
  void handleConfirm(amqp_channel_t channel, const amqp_method_t& method);
  // A request the broker refused was not queued: it is published again,
  // after a delay, until its deadline.
  void republishLater(PendingCall&& call);
  // Moves the refused requests due again into `batch`; fails those whose
  // deadline passed.
  void takeDueRefused(std::vector<Submission>& batch, Clock::time_point now);
  // Puts the publishing channel in confirm mode (opening it first unless it
  // is the reply channel).
  static void openPublishChannel(AmqpConnection& connection, amqp_channel_t channel);
  // Replaces the publishing channel after a refusal (publish_channel.h).
  void renewPublishChannel();
  void complete(PendingCall& call, CallOutcome&& outcome);
  // Runs a call's completion callback (user code) on the I/O thread.
  void finish(Done& done, CallOutcome&& outcome) noexcept;
  void dropConnection(CallStatus status, const std::string& why);
  void expireCalls(Clock::time_point now);

  ClientOptions options_;
  BrokerRotation brokers_;
  Mailbox<Submission> submissions_;
  client_detail::PendingCalls pending_;
  DeliveryAssembler assembler_{kMaxReplyBytes};
  std::unique_ptr<AmqpConnection> connection_;  // null while disconnected
  std::string reply_to_;
  PublishChannel publish_channel_{kFirstPublishChannel, kLastPublishChannel, kRenewalInterval};
  // Requests the broker refused, waiting to be published again.
  std::vector<Submission> refused_;
  Clock::time_point last_inbound_;
  // connection.blocked: the broker reads nothing from this connection until
  // it sends connection.unblocked. Requests wait unsent meanwhile, each
  // until its deadline.
  std::optional<std::string> blocked_reason_;
  std::vector<Submission> held_;
  std::atomic<bool> stopping_{false};
  ConnectionWatch watch_;

  std::atomic<std::uint64_t> calls_{0}, ok_{0}, remote_errors_{0}, timeouts_{0}, no_route_{0},
      connection_failures_{0}, late_replies_{0}, connects_{0}, rejected_{0}, republished_{0};
  std::thread io_thread_;
};

Client::Impl::Impl(ClientOptions options)
    : options_(withDefaultUrl(std::move(options))),
      // std::invalid_argument: a usage error
      brokers_(brokerAddresses(options_), std::random_device{}()),
      pending_(correlationPrefix()) {
  try {
    connect();  // on the caller's thread, so a bad broker fails the constructor
  } catch (const AmqpError& e) {
    throw CallError(CallStatus::kNotConnected, "", e.what());
  }
  io_thread_ = std::thread(&Impl::run, this);
}

Client::Impl::~Impl() {
  stopping_ = true;
  submissions_.wake();
  io_thread_.join();
}

void Client::Impl::connect() {
  ConnectionOptions connection;
  connection.heartbeat = options_.heartbeat;
  connection.connect_timeout = options_.connect_timeout;
  connection.connection_name = "warren client";
  connection.tls.ca_file = options_.tls.ca_file;
  connection.tls.cert_file = options_.tls.cert_file;
  connection.tls.key_file = options_.tls.key_file;
  connection.tls.verify = options_.tls.verify;
  connection.login = options_.external_login ? LoginMechanism::kExternal : LoginMechanism::kPlain;
  std::unique_ptr<AmqpConnection> opened;
  brokers_.open([&](const BrokerAddress& address) {
    opened = std::make_unique<AmqpConnection>(address, connection);
  });
  opened->openChannel(kReplyChannel);
  if (options_.reply_mode == ReplyMode::kDirectReplyTo) {
    // Must be consumed, no-ack, on the publishing channel before the first publish.
    opened->consume(kReplyChannel, kDirectReplyTo, /*no_ack=*/true);
    reply_to_ = kDirectReplyTo;
  } else {
    reply_to_ = opened->declareExclusiveQueue(kReplyChannel);
    opened->consume(kReplyChannel, reply_to_, /*no_ack=*/true);
  }
  const amqp_channel_t publishing =
      options_.reply_mode == ReplyMode::kDirectReplyTo ? kReplyChannel : kFirstPublishChannel;
  openPublishChannel(*opened, publishing);
  publish_channel_.reset(publishing);
  connection_ = std::move(opened);
  watch_.attach(*connection_);
  assembler_.reset();
  last_inbound_ = Clock::now();
  ++connects_;
}

void Client::Impl::openPublishChannel(AmqpConnection& connection, amqp_channel_t channel) {
  if (channel != kReplyChannel) connection.openChannel(channel);
  // Without confirms the broker may drop a request silently: a quorum queue
  // electing a new leader loses what was published to it meanwhile, a full
  // queue with overflow reject-publish discards it. With them, it resends
  // to the new leader and says no when it cannot take a request.
  connection.confirmSelect(channel);
}

void Client::Impl::renewPublishChannel() {
  if (publish_channel_.channel() == kReplyChannel) {
    // With direct reply-to, replies come only to the publishing channel:
    // a new one means a new connection.
    throw AmqpError(AmqpError::Scope::kConnection, 0,
                    "the broker refused a request; reconnecting for a new channel");
  }
  const amqp_channel_t old = publish_channel_.channel();
  const std::optional<amqp_channel_t> next = publish_channel_.replace(Clock::now());
  if (!next) {
    throw AmqpError(AmqpError::Scope::kConnection, 0,
                    "the broker does not close the channels it refused requests on");
  }
  connection_->closeChannelNoWait(old);
  openPublishChannel(*connection_, *next);
}

void Client::Impl::republishLater(PendingCall&& call) {
  const auto now = Clock::now();
  const int refusals = call.refusals + 1;
  if (call.deadline <= now) {
    ++rejected_;
    complete(call, refusedUntilDeadline(call.queue, refusals));
    return;
  }
  const auto delay =
      std::min(kFirstRepublishDelay * (1 << std::min(refusals - 1, 10)), kMaxRepublishDelay);
  refused_.push_back(Submission{std::move(call.queue), std::move(call.body),
                                std::move(call.content_type), call.deadline, std::move(call.done),
                                refusals, now + delay});
}

void Client::Impl::takeDueRefused(std::vector<Submission>& batch, Clock::time_point now) {
  if (refused_.empty()) return;
  std::vector<Submission> waiting;
  std::vector<Submission> due;
  for (Submission& submission : refused_) {
    (submission.not_before <= now || submission.deadline <= now ? due : waiting)
        .push_back(std::move(submission));
  }
  refused_.swap(waiting);
  for (Submission& submission : due) {
    if (submission.deadline <= now) {
      ++rejected_;
      finish(submission.done, refusedUntilDeadline(submission.queue, submission.refusals));
      continue;
    }
    batch.push_back(std::move(submission));
  }
}

void Client::Impl::submit(std::string_view queue, std::string_view body, const CallOptions& options,
                          Done done) {
  ++calls_;
  const auto timeout = options.timeout.value_or(options_.default_timeout);
  // From a callback (the I/O thread itself), skip the wake-up: run() drains
  // again before it sleeps.
  const bool from_io_thread = onIoThread();
  submissions_.push(Submission{std::string(queue), std::string(body), options.content_type,
                               Clock::now() + timeout, std::move(done)},
                    /*wake_consumer=*/!from_io_thread);
}

ClientStats Client::Impl::stats() const {
  ClientStats stats;
  stats.calls = calls_;
  stats.ok = ok_;
  stats.remote_errors = remote_errors_;
  stats.timeouts = timeouts_;
  stats.no_route = no_route_;
  stats.connection_failures = connection_failures_;
  stats.late_replies = late_replies_;
  stats.connects = connects_;
  stats.rejected = rejected_;
  stats.republished = republished_;
  stats.stalled_sends_cut = watch_.cuts();
  stats.callback_heartbeats = watch_.heartbeatsSent();
  return stats;
}

void Client::Impl::run() {
  std::vector<Submission> batch;
  while (!stopping_) {
    try {
      serveTurn(batch);
    } catch (const AmqpError& e) {
      dropConnection(CallStatus::kConnectionLost, std::string("connection lost: ") + e.what());
    } catch (const std::exception& e) {
      dropConnection(CallStatus::kConnectionLost, std::string("protocol error: ") + e.what());
    }
  }
  dropConnection(CallStatus::kConnectionLost, "the client was closed");
  failUnsent(refused_, CallStatus::kConnectionLost,
             "the client was closed (the broker had refused the request)");
  // Calls submitted while closing, also by the callbacks of those failed
  // here, get the same answer.
  for (submissions_.drainInto(batch); !batch.empty(); submissions_.drainInto(batch)) {
    failUnsent(batch, CallStatus::kConnectionLost, "the client was closed");
  }
}

void Client::Impl::failUnsent(std::vector<Submission>& submissions, CallStatus status,
                              const std::string& why) {
  std::vector<Submission> failing;
  failing.swap(submissions);  // a callback may submit again
  for (Submission& submission : failing) {
    ++connection_failures_;
    finish(submission.done, failure(status, why));
  }
}

void Client::Impl::serveTurn(std::vector<Submission>& batch) {
  submissions_.drainInto(batch);  // clears the batch first
  takeDueRefused(batch, Clock::now());
  if (!batch.empty() && !connection_) {
    try {
      connect();
    } catch (const AmqpError& e) {
      failUnsent(batch, CallStatus::kNotConnected,
                 std::string("cannot reach the broker: ") + e.what());
    }
  }
  send(batch);

  if (connection_) {
    for (int i = 0; i < kFramesPerTurn; ++i) {
      amqp_frame_t frame;
      {
        // rabbitmq-c may send a heartbeat on the way.
        const ConnectionWatch::Send watched(watch_, Clock::now() + connection_->sendTimeout());
        if (!connection_->readFrameNoWait(frame)) break;
      }
      last_inbound_ = Clock::now();
      handleFrame(frame);
      // A long callback: the broker's heartbeats meanwhile are in the socket.
      if (Clock::now() - last_inbound_ > kLongTurn && connection_ &&
          connection_->socketReadable()) {
        last_inbound_ = Clock::now();
      }
      amqp_maybe_release_buffers(connection_->raw());
    }
  }

  const auto now = Clock::now();
  expireCalls(now);
  expireHeld(now);
  std::chrono::milliseconds timeout(1000);
  std::chrono::seconds heartbeat(0);
  if (connection_) {
    heartbeat = connection_->heartbeat();
    if (heartbeat.count() > 0) {
      timeout = std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat) / 4;
    }
    if (connection_->hasBufferedInput()) return;
    // Unblocked while requests were held: send them now.
    if (!blocked_reason_ && !held_.empty()) return;
  }
  // Calls submitted by callbacks during this turn are sent before sleeping.
  if (!submissions_.empty()) return;
  std::optional<Clock::time_point> next = pending_.nextDeadline();
  for (const Submission& held : held_) {
    if (!next || held.deadline < *next) next = held.deadline;
  }
  for (const Submission& refused : refused_) {
    const auto due = std::min(refused.not_before, refused.deadline);
    if (!next || due < *next) next = due;
  }
  if (next) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - now);
    timeout = std::clamp(left, std::chrono::milliseconds(0), timeout);
  }
  std::array<pollfd, 2> fds{pollfd{submissions_.fd(), POLLIN, 0},
                            pollfd{connection_ ? connection_->fd() : -1, POLLIN, 0}};
  const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR) {
    throw AmqpError(AmqpError::Scope::kConnection, 0, "poll failed");
  }
  if (ready > 0 && fds[1].revents != 0) last_inbound_ = Clock::now();
  // rabbitmq-c only notices a silent broker inside blocking waits, which
  // this loop never makes: judged here, and only after a wait that found
  // the socket silent, so that what arrived during a long callback counts.
  if (ready == 0 && connection_ && heartbeat.count() > 0 &&
      Clock::now() - last_inbound_ > 2 * heartbeat) {
    throw AmqpError(AmqpError::Scope::kConnection, 0, "no heartbeat from the broker");
  }
}

void Client::Impl::send(std::vector<Submission>& batch) {
  if (!connection_) {
    batch.clear();  // failed above
    return;
  }
  if (blocked_reason_) {
    for (Submission& submission : batch) held_.push_back(std::move(submission));
    batch.clear();
    return;
  }
  if (!held_.empty()) {
    // Unblocked: what waited goes first, in the order it was submitted.
    for (Submission& submission : batch) held_.push_back(std::move(submission));
    batch.swap(held_);
    held_.clear();
  }
  if (!batch.empty() && publish_channel_.renewalDue(Clock::now())) {
    try {
      renewPublishChannel();
    } catch (...) {
      failUnsent(batch, CallStatus::kConnectionLost, "connection lost before the request was sent");
      throw;
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      publish(batch[i]);  // registers the call first: a failure here fails it with the rest
    } catch (...) {
      // The connection broke mid-batch: what was not sent yet fails now
      // rather than waiting for nothing.
      std::vector<Submission> unsent(std::make_move_iterator(batch.begin() + i + 1),
                                     std::make_move_iterator(batch.end()));
      batch.clear();
      failUnsent(unsent, CallStatus::kConnectionLost,
                 "connection lost before the request was sent");
      throw;
    }
  }
  batch.clear();
}

void Client::Impl::expireHeld(Clock::time_point now) {
  if (held_.empty()) return;
  std::vector<Submission> expired;
  std::vector<Submission> kept;
  for (Submission& submission : held_) {
    (submission.deadline <= now ? expired : kept).push_back(std::move(submission));
  }
  held_.swap(kept);
  for (Submission& submission : expired) {
    ++timeouts_;
    finish(submission.done, failure(CallStatus::kTimeout,
                                    "timed out before it was sent: the broker blocks "
                                    "publishing (" +
                                        blocked_reason_.value_or("unblocked too late") + ")"));
  }
}

void Client::Impl::publish(Submission& submission) {
  const auto now = Clock::now();
  if (submission.deadline <= now) {
    ++timeouts_;
    finish(submission.done, failure(CallStatus::kTimeout, "timed out before it was sent"));
    return;
  }
  // The broker drops the request once nobody waits for it any more.
  const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(submission.deadline - now);
  const std::string expiration = std::to_string(remaining.count());
  // And warrend answers it deadline_exceeded, unhandled, when it arrives
  // later than that (docs/protocol.md#deadlines): the broker drops expired
  // requests only at the head of a classic queue.
  amqp_table_entry_t deadline_header{};
  deadline_header.key = bytesOf(wire::kDeadlineHeader);
  deadline_header.value.kind = AMQP_FIELD_KIND_I64;
  deadline_header.value.value.i64 =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          (std::chrono::system_clock::now() + remaining).time_since_epoch())
          .count();
  if (submission.refusals > 0) ++republished_;
  PendingCall call;
  call.deadline = submission.deadline;
  call.queue = std::move(submission.queue);
  call.done = std::move(submission.done);
  call.publish_tag = publish_channel_.nextTag();
  call.body = std::move(submission.body);  // kept until the broker confirms it
  call.content_type = std::move(submission.content_type);
  call.refusals = submission.refusals;
  const auto [correlation_id, registered] = pending_.add(std::move(call));

  amqp_basic_properties_t properties{};
  properties._flags = AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG |
                      AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                      AMQP_BASIC_HEADERS_FLAG;
  properties.correlation_id = bytesOf(correlation_id);
  properties.reply_to = bytesOf(reply_to_);
  properties.expiration = bytesOf(expiration);
  properties.delivery_mode = 1;
  properties.headers = amqp_table_t{1, &deadline_header};
  if (!registered.content_type.empty()) {
    properties._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    properties.content_type = bytesOf(registered.content_type);
  }
  // mandatory: a request to a queue that does not exist comes back at once
  // as basic.return instead of vanishing until the timeout. A send the
  // broker does not take is cut at the call's deadline.
  const ConnectionWatch::Send watched(watch_, registered.deadline);
  connection_->publish(publish_channel_.channel(), registered.queue, &properties, registered.body,
                       /*mandatory=*/true);
}

void Client::Impl::handleFrame(const amqp_frame_t& frame) {
  if (frame.frame_type == AMQP_FRAME_HEADER || frame.frame_type == AMQP_FRAME_BODY) {
    if (auto message = assembler_.feed(frame)) handleMessage(std::move(*message));
    return;
  }
  if (assembler_.beginIfContentMethod(frame)) return;
  if (frame.frame_type != AMQP_FRAME_METHOD) return;
  const amqp_method_t& method = frame.payload.method;
  if (method.id == AMQP_BASIC_ACK_METHOD || method.id == AMQP_BASIC_NACK_METHOD) {
    handleConfirm(frame.channel, method);
    return;
  }
  if (frame.channel != 0 && frame.channel != kReplyChannel &&
      frame.channel != publish_channel_.channel()) {
    // A replaced publishing channel is closed: its unconfirmed calls wait
    // for their replies without a confirm.
    if (method.id == AMQP_CHANNEL_CLOSE_OK_METHOD || method.id == AMQP_CHANNEL_CLOSE_METHOD) {
      if (const auto tags = publish_channel_.closed(frame.channel)) {
        pending_.forgetConfirms(tags->first, tags->last);
      }
    }
    return;
  }
  switch (method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      connection_->confirmChannelClose(frame.channel);
      throw AmqpError(AmqpError::Scope::kChannel, 0, "the broker closed the channel: " + detail);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const std::string detail = describeBrokerClose(method);
      connection_->confirmConnectionClose();
      throw AmqpError(AmqpError::Scope::kConnection, 0,
                      "the broker closed the connection: " + detail);
    }
    case AMQP_BASIC_CANCEL_METHOD:
      throw AmqpError(AmqpError::Scope::kChannel, 0, "the broker cancelled the reply consumer");
    case AMQP_CONNECTION_BLOCKED_METHOD: {
      const auto* blocked = static_cast<const amqp_connection_blocked_t*>(method.decoded);
      blocked_reason_ =
          std::string(static_cast<const char*>(blocked->reason.bytes), blocked->reason.len);
      return;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
      blocked_reason_.reset();
      return;
    default:
      return;
  }
}

void Client::Impl::handleMessage(InboundMessage&& message) {
  std::optional<PendingCall> call = pending_.take(message.correlation_id);
  if (message.kind == InboundMessage::Kind::kReturn) {
    if (!call) return;
    ++no_route_;
    complete(*call,
             failure(CallStatus::kNoRoute,
                     "no queue '" + message.routing_key + "' on the broker (" +
                         std::to_string(message.reply_code) + " " + message.reply_text + ")"));
    return;
  }
  if (!call) {
    ++late_replies_;  // its call timed out, or the reply is not ours
    return;
  }
  if (message.body_too_large) {
    complete(*call, failure(CallStatus::kRemoteError, "reply larger than 128 MiB dropped"));
    return;
  }
  CallOutcome outcome = client_detail::outcomeOfReply(std::move(message));
  if (outcome.ok()) {
    ++ok_;
  } else {
    ++remote_errors_;
  }
  complete(*call, std::move(outcome));
}

void Client::Impl::handleConfirm(amqp_channel_t channel, const amqp_method_t& method) {
  if (method.id == AMQP_BASIC_ACK_METHOD) {
    const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
    if (const auto tags = publish_channel_.confirmed(channel, ack->delivery_tag, ack->multiple)) {
      pending_.confirm(tags->first, tags->last);
    }
    return;
  }
  const auto* nack = static_cast<const amqp_basic_nack_t*>(method.decoded);
  const auto tags = publish_channel_.confirmed(channel, nack->delivery_tag, nack->multiple);
  if (!tags) return;
  publish_channel_.refused(channel);
  for (PendingCall& call : pending_.refuse(tags->first, tags->last)) {
    republishLater(std::move(call));
  }
}

void Client::Impl::complete(PendingCall& call, CallOutcome&& outcome) {
  finish(call.done, std::move(outcome));
}

void Client::Impl::finish(Done& done, CallOutcome&& outcome) noexcept {
  std::optional<ConnectionWatch::Callback> callback;
  // The watcher keeps the connection's heartbeats going meanwhile.
  if (connection_) callback.emplace(watch_);
  try {
    done(std::move(outcome));
  } catch (...) {
    // A throwing callback must not take the I/O thread down with it.
  }
}

void Client::Impl::expireCalls(Clock::time_point now) {
  for (PendingCall& call : pending_.expire(now)) {
    ++timeouts_;
    complete(call, failure(CallStatus::kTimeout,
                           "no reply from queue '" + call.queue + "' in time" +
                               (call.confirmed ? ""
                                               : " (the broker had not confirmed taking the "
                                                 "request: is the queue available?)")));
  }
}

void Client::Impl::dropConnection(CallStatus status, const std::string& why) {
  if (connection_) {
    brokers_.advance();  // a cluster's next node first: the lost one may be down
    {
      const ConnectionWatch::Send watched(watch_, Clock::now() + kCloseTimeout);
      connection_->close();
    }
    watch_.detach();
    connection_.reset();
  }
  // A call whose time is up timed out, whatever happens to the connection.
  const auto now = Clock::now();
  expireCalls(now);
  expireHeld(now);
  blocked_reason_.reset();
  failUnsent(held_, status, why + " (before the request was sent)");
  for (PendingCall& call : pending_.takeAll()) {
    ++connection_failures_;
    // A confirmed request is queued and may still run, its reply going to
    // a reply queue that is gone; an unconfirmed one may not be queued.
    complete(call, failure(status,
                           why + (call.confirmed ? " (the broker had taken the request: it may "
                                                   "still run)"
                                                 : " (before the broker confirmed the request: it "
                                                   "may not have been queued)")));
  }
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() = default;

Reply Client::call(std::string_view queue, std::string_view body, const CallOptions& options) {
  if (impl_->onIoThread()) {
    throw std::logic_error("warren::Client::call() from a callback would wait for itself");
  }
  return callAsync(queue, body, options).get();
}

std::future<Reply> Client::callAsync(std::string_view queue, std::string_view body,
                                     const CallOptions& options) {
  auto promise = std::make_shared<std::promise<Reply>>();
  std::future<Reply> future = promise->get_future();
  impl_->submit(queue, body, options, [promise](CallOutcome&& outcome) {
    if (outcome.ok()) {
      promise->set_value(std::move(outcome.reply));
    } else {
      promise->set_exception(std::make_exception_ptr(
          CallError(outcome.status, std::move(outcome.error_code), outcome.message)));
    }
  });
  return future;
}

void Client::callAsync(std::string_view queue, std::string_view body, const CallOptions& options,
                       std::function<void(CallOutcome&&)> done) {
  impl_->submit(queue, body, options, std::move(done));
}

ClientStats Client::stats() const { return impl_->stats(); }

}  // namespace warren
