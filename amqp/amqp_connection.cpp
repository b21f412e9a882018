// SPDX-License-Identifier: Apache-2.0
#include "amqp_connection.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <type_traits>
#include <vector>

namespace warren {
namespace {

amqp_bytes_t bytesOf(std::string_view text) noexcept {
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}

std::string_view viewOf(amqp_bytes_t bytes) noexcept {
  return {static_cast<const char*>(bytes.bytes), bytes.len};
}

timeval toTimeval(std::chrono::milliseconds duration) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return tv;
}

amqp_table_entry_t stringEntry(std::string_view key, std::string_view value) noexcept {
  amqp_table_entry_t entry{};
  entry.key = bytesOf(key);
  entry.value.kind = AMQP_FIELD_KIND_UTF8;
  entry.value.value.bytes = bytesOf(value);
  return entry;
}

amqp_table_entry_t boolEntry(std::string_view key, bool value) noexcept {
  amqp_table_entry_t entry{};
  entry.key = bytesOf(key);
  entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  entry.value.value.boolean = value ? 1 : 0;
  return entry;
}

amqp_table_entry_t argumentEntry(const std::string& key, const QueueArgument& value) {
  amqp_table_entry_t entry{};
  entry.key = bytesOf(key);
  std::visit(
      [&entry](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::int64_t>) {
          entry.value.kind = AMQP_FIELD_KIND_I64;
          entry.value.value.i64 = v;
        } else if constexpr (std::is_same_v<T, double>) {
          entry.value.kind = AMQP_FIELD_KIND_F64;
          entry.value.value.f64 = v;
        } else if constexpr (std::is_same_v<T, bool>) {
          entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
          entry.value.value.boolean = v ? 1 : 0;
        } else {
          entry.value.kind = AMQP_FIELD_KIND_UTF8;
          entry.value.value.bytes = bytesOf(v);
        }
      },
      value);
  return entry;
}

std::string libraryError(std::string_view what, int status) {
  return std::string(what) + ": " + amqp_error_string2(status);
}

using Clock = std::chrono::steady_clock;

// OpenSSL's reason for the last failure of this thread, e.g. "no such file".
std::string opensslReason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
}

// Why opening the socket failed, in the words an operator needs.
std::string openFailure(const BrokerAddress& address, const TlsSettings& tls, int status) {
  const std::string where = address.endpoint();
  const std::string ca = tls.ca_file.empty() ? "the system trust store" : "'" + tls.ca_file + "'";
  switch (status) {
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
      return "cannot connect to " + where +
             ": the broker's TLS certificate is not signed by a CA in " + ca +
             " (broker.tls.ca_file)";
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
      return "cannot connect to " + where +
             ": the broker's TLS certificate is not for the host name '" + address.host +
             "' (connect by a name the certificate lists)";
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
    case AMQP_STATUS_SSL_ERROR:
      return "cannot connect to " + where + ": the TLS handshake failed (" + opensslReason() +
             "); is this the broker's TLS port (5671 by default)? amqp:// is for the plaintext one";
    default:
      return libraryError("cannot connect to " + where + " (is the broker up and listening there?)",
                          status);
  }
}

std::chrono::milliseconds sendTimeoutFor(std::chrono::milliseconds heartbeat,
                                         std::chrono::milliseconds rpc_timeout) noexcept {
  return heartbeat.count() > 0 ? 2 * heartbeat : rpc_timeout;
}

}  // namespace

// Marks the owner as inside a call that may block for up to `bound`.
class AmqpConnection::Busy {
 public:
  Busy(AmqpConnection& connection, std::chrono::milliseconds bound) noexcept
      : connection_(connection) {
    connection_.busy_until_.store((Clock::now() + bound).time_since_epoch().count(),
                                  std::memory_order_release);
  }
  ~Busy() { connection_.busy_until_.store(0, std::memory_order_release); }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  AmqpConnection& connection_;
};

std::string describeBrokerClose(const amqp_method_t& method) {
  if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
    const auto* close = static_cast<const amqp_connection_close_t*>(method.decoded);
    return std::to_string(close->reply_code) + " " + std::string(viewOf(close->reply_text));
  }
  if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const auto* close = static_cast<const amqp_channel_close_t*>(method.decoded);
    return std::to_string(close->reply_code) + " " + std::string(viewOf(close->reply_text));
  }
  return std::string("unexpected method ") + amqp_method_name(method.id);
}

AmqpConnection::AmqpConnection(const BrokerAddress& address, const ConnectionOptions& options)
    : state_(amqp_new_connection()),
      send_timeout_(sendTimeoutFor(options.heartbeat, options.rpc_timeout)),
      rpc_timeout_(options.rpc_timeout) {
  if (state_ == nullptr) throw AmqpError(AmqpError::Scope::kConnection, 0, "out of memory");
  try {
    amqp_socket_t* socket = newSocket(address, options.tls);  // owned by state_
    timeval connect_timeout = toTimeval(options.connect_timeout);
    if (const int status =
            amqp_socket_open_noblock(socket, address.host.c_str(), address.port, &connect_timeout);
        status != AMQP_STATUS_OK) {
      closed_ = true;
      throw AmqpError(AmqpError::Scope::kConnection, 0, openFailure(address, options.tls, status));
    }
    fd_ = amqp_get_sockfd(state_);
    setTcpUserTimeout();
    checkStatus(amqp_set_handshake_timeout(state_, &connect_timeout), "handshake timeout");
    timeval rpc_timeout = toTimeval(options.rpc_timeout);
    checkStatus(amqp_set_rpc_timeout(state_, &rpc_timeout), "rpc timeout");

    std::array<amqp_table_entry_t, 3> capabilities = {
        boolEntry("consumer_cancel_notify", true), boolEntry("connection.blocked", true),
        boolEntry("authentication_failure_close", true)};
    amqp_table_entry_t capabilities_entry{};
    capabilities_entry.key = bytesOf("capabilities");
    capabilities_entry.value.kind = AMQP_FIELD_KIND_TABLE;
    capabilities_entry.value.value.table.num_entries = static_cast<int>(capabilities.size());
    capabilities_entry.value.value.table.entries = capabilities.data();
    std::array<amqp_table_entry_t, 4> client_properties = {
        stringEntry("product", "warren"), stringEntry("version", WARREN_VERSION),
        stringEntry("connection_name", options.connection_name), capabilities_entry};
    amqp_table_t properties{static_cast<int>(client_properties.size()), client_properties.data()};

    const auto heartbeat_seconds =
        static_cast<int>(std::chrono::ceil<std::chrono::seconds>(options.heartbeat).count());
    // A plaintext client at a TLS port sees the connection closed during the
    // handshake: say so, instead of only "connection closed unexpectedly".
    const std::string hint = address.tls ? "" : " (if this is the broker's TLS port, use amqps://)";
    if (options.login == LoginMechanism::kExternal) {
      check(amqp_login_with_properties(state_, address.vhost.c_str(), /*channel_max=*/0,
                                       /*frame_max=*/131072, heartbeat_seconds, &properties,
                                       // rabbitmq-c fails ("could not allocate
                                       // memory") on an empty response; RabbitMQ
                                       // ignores it and names the user from the
                                       // certificate.
                                       AMQP_SASL_METHOD_EXTERNAL, "certificate"),
            "login to vhost '" + address.vhost + "' at " + address.endpoint() +
                " with the client certificate (EXTERNAL)",
            0, hint);
    } else {
      check(amqp_login_with_properties(state_, address.vhost.c_str(), /*channel_max=*/0,
                                       /*frame_max=*/131072, heartbeat_seconds, &properties,
                                       AMQP_SASL_METHOD_PLAIN, address.user.c_str(),
                                       address.password.c_str()),
            "login to vhost '" + address.vhost + "' at " + address.endpoint() + " as '" +
                address.user + "'",
            0, hint);
    }
    // The broker may have lowered the heartbeat we proposed.
    send_timeout_ = sendTimeoutFor(heartbeat(), options.rpc_timeout);
    setTcpUserTimeout();
  } catch (...) {
    amqp_destroy_connection(state_);
    throw;
  }
}

AmqpConnection::~AmqpConnection() { amqp_destroy_connection(state_); }

amqp_socket_t* AmqpConnection::newSocket(const BrokerAddress& address, const TlsSettings& tls) {
  if (!address.tls) {
    amqp_socket_t* socket = amqp_tcp_socket_new(state_);
    if (socket == nullptr) {
      throw AmqpError(AmqpError::Scope::kConnection, 0, "cannot create a TCP socket");
    }
    return socket;
  }
  amqp_socket_t* socket = amqp_ssl_socket_new(state_);
  if (socket == nullptr) {
    throw AmqpError(AmqpError::Scope::kConnection, 0, "cannot set up TLS: " + opensslReason());
  }
  const auto fail = [](const std::string& what) {
    throw AmqpError(AmqpError::Scope::kConnection, 0, what + ": " + opensslReason());
  };
  if (amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
    fail("cannot require TLS 1.2 or later");
  }
  if (tls.ca_file.empty()) {
    // rabbitmq-c's context trusts nothing until told: the system store.
    auto* context = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
    if (SSL_CTX_set_default_verify_paths(context) != 1) fail("cannot load the system trust store");
  } else if (amqp_ssl_socket_set_cacert(socket, tls.ca_file.c_str()) != AMQP_STATUS_OK) {
    fail("cannot load the CA file '" + tls.ca_file + "'");
  }
  if (!tls.cert_file.empty() && amqp_ssl_socket_set_key(socket, tls.cert_file.c_str(),
                                                        tls.key_file.c_str()) != AMQP_STATUS_OK) {
    fail("cannot load the client certificate '" + tls.cert_file + "' with the key '" +
         tls.key_file + "'");
  }
  amqp_ssl_socket_set_verify_peer(socket, tls.verify ? 1 : 0);
  amqp_ssl_socket_set_verify_hostname(socket, tls.verify ? 1 : 0);
  return socket;
}

int AmqpConnection::fd() const noexcept { return fd_; }

void AmqpConnection::setTcpUserTimeout() noexcept {
  // Unacknowledged data older than this ends the connection in the kernel,
  // also when nothing is waiting on it. A peer that acknowledges but does
  // not read (a full window) is cutIfOverdue()'s.
  const auto value = static_cast<unsigned int>(send_timeout_.count());
  ::setsockopt(fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, &value, sizeof value);
}

std::uint64_t AmqpConnection::bytesUnsent() const noexcept {
  int unsent = 0;
  if (::ioctl(fd_, SIOCOUTQ, &unsent) != 0) return 0;
  return static_cast<std::uint64_t>(unsent);
}

bool AmqpConnection::cutIfOverdue(Clock::time_point now) noexcept {
  const auto until = busy_until_.load(std::memory_order_acquire);
  if (until == 0) {
    sampled_ = false;
    return false;
  }
  // Progress is the send queue moving (the broker acknowledging bytes, or
  // the owner adding more): a large publish on a slow path is not stuck,
  // however long it takes.
  const std::uint64_t unsent = bytesUnsent();
  if (!sampled_ || unsent != unsent_at_sample_) {
    sampled_ = true;
    unsent_at_sample_ = unsent;
    progress_at_sample_ = now;
  }
  if (now.time_since_epoch().count() <= until || now - progress_at_sample_ < send_timeout_) {
    return false;
  }
  cut();
  return true;
}

void AmqpConnection::cut() noexcept { ::shutdown(fd_, SHUT_RDWR); }

std::chrono::seconds AmqpConnection::heartbeat() const noexcept {
  return std::chrono::seconds(amqp_get_heartbeat(state_));
}

bool AmqpConnection::readFrameNoWait(amqp_frame_t& frame) {
  const Busy busy(*this, send_timeout_);  // a heartbeat may be sent on the way
  timeval no_wait{0, 0};
  const int status = amqp_simple_wait_frame_noblock(state_, &frame, &no_wait);
  if (status == AMQP_STATUS_TIMEOUT) return false;
  if (status != AMQP_STATUS_OK) {
    closed_ = true;
    throw AmqpError(AmqpError::Scope::kConnection, 0,
                    libraryError("reading from the broker", status));
  }
  return true;
}

bool AmqpConnection::hasBufferedInput() const noexcept {
  return amqp_frames_enqueued(state_) != 0 || amqp_data_in_buffer(state_) != 0;
}

bool AmqpConnection::socketReadable() const noexcept {
  pollfd ready{fd_, POLLIN, 0};
  return ::poll(&ready, 1, 0) == 1;
}

bool AmqpConnection::socketWritable() const noexcept {
  pollfd ready{fd_, POLLOUT, 0};
  return ::poll(&ready, 1, 0) == 1 && (ready.revents & POLLOUT) != 0;
}

void AmqpConnection::openChannel(amqp_channel_t channel) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  amqp_channel_open(state_, channel);
  check(amqp_get_rpc_reply(state_), "channel.open", channel);
}

void AmqpConnection::setPrefetch(amqp_channel_t channel, std::uint16_t prefetch) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  amqp_basic_qos(state_, channel, /*prefetch_size=*/0, prefetch, /*global=*/0);
  check(amqp_get_rpc_reply(state_), "basic.qos", channel);
}

void AmqpConnection::confirmSelect(amqp_channel_t channel) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  amqp_confirm_select(state_, channel);
  check(amqp_get_rpc_reply(state_), "confirm.select", channel);
}

void AmqpConnection::declareQueue(amqp_channel_t channel, const QueueDeclaration& queue) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  std::vector<amqp_table_entry_t> entries;
  if (queue.arguments != nullptr) {
    for (const auto& [key, value] : *queue.arguments) entries.push_back(argumentEntry(key, value));
  }
  amqp_table_t arguments{static_cast<int>(entries.size()), entries.data()};
  amqp_queue_declare(state_, channel, bytesOf(queue.name), /*passive=*/0, queue.durable,
                     /*exclusive=*/0, queue.auto_delete, arguments);
  check(amqp_get_rpc_reply(state_), "queue.declare of '" + std::string(queue.name) + "'", channel);
}

void AmqpConnection::declareDirectExchange(amqp_channel_t channel, std::string_view name) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  amqp_exchange_declare(state_, channel, bytesOf(name), amqp_cstring_bytes("direct"),
                        /*passive=*/0, /*durable=*/1, /*auto_delete=*/0, /*internal=*/0,
                        amqp_empty_table);
  check(amqp_get_rpc_reply(state_), "exchange.declare of '" + std::string(name) + "'", channel);
}

void AmqpConnection::bindQueue(amqp_channel_t channel, std::string_view queue,
                               std::string_view exchange, std::string_view routing_key) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  amqp_queue_bind(state_, channel, bytesOf(queue), bytesOf(exchange), bytesOf(routing_key),
                  amqp_empty_table);
  check(amqp_get_rpc_reply(state_),
        "queue.bind of '" + std::string(queue) + "' to '" + std::string(exchange) + "'", channel);
}

std::string AmqpConnection::declareExclusiveQueue(amqp_channel_t channel) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  const amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(state_, channel, amqp_empty_bytes, /*passive=*/0, /*durable=*/0,
                         /*exclusive=*/1, /*auto_delete=*/1, amqp_empty_table);
  check(amqp_get_rpc_reply(state_), "queue.declare of an exclusive reply queue", channel);
  return std::string(viewOf(ok->queue));
}

std::string AmqpConnection::consume(amqp_channel_t channel, std::string_view queue, bool no_ack) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  const amqp_basic_consume_ok_t* ok =
      amqp_basic_consume(state_, channel, bytesOf(queue), amqp_empty_bytes, /*no_local=*/0,
                         no_ack ? 1 : 0, /*exclusive=*/0, amqp_empty_table);
  check(amqp_get_rpc_reply(state_), "basic.consume on '" + std::string(queue) + "'", channel);
  return std::string(viewOf(ok->consumer_tag));
}

void AmqpConnection::cancel(amqp_channel_t channel, std::string_view consumer_tag) {
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  amqp_basic_cancel(state_, channel, bytesOf(consumer_tag));
  check(amqp_get_rpc_reply(state_), "basic.cancel", channel);
}

void AmqpConnection::publish(amqp_channel_t channel, std::string_view routing_key,
                             const amqp_basic_properties_t* properties, std::string_view body,
                             bool mandatory) {
  const Busy busy(*this, send_timeout_);
  checkStatus(amqp_basic_publish(state_, channel, amqp_empty_bytes, bytesOf(routing_key),
                                 mandatory ? 1 : 0, /*immediate=*/0, properties, bytesOf(body)),
              "basic.publish");
}

void AmqpConnection::ack(amqp_channel_t channel, std::uint64_t delivery_tag) {
  const Busy busy(*this, send_timeout_);
  checkStatus(amqp_basic_ack(state_, channel, delivery_tag, /*multiple=*/0), "basic.ack");
}

bool AmqpConnection::sendHeartbeat() noexcept {
  const Busy busy(*this, send_timeout_);
  amqp_frame_t heartbeat{};
  heartbeat.frame_type = AMQP_FRAME_HEARTBEAT;
  heartbeat.channel = 0;
  return amqp_send_frame(state_, &heartbeat) == AMQP_STATUS_OK;
}

void AmqpConnection::reject(amqp_channel_t channel, std::uint64_t delivery_tag, bool requeue) {
  const Busy busy(*this, send_timeout_);
  checkStatus(amqp_basic_reject(state_, channel, delivery_tag, requeue ? 1 : 0), "basic.reject");
}

void AmqpConnection::closeChannelNoWait(amqp_channel_t channel) {
  const Busy busy(*this, send_timeout_);
  amqp_channel_close_t close{};
  close.reply_code = AMQP_REPLY_SUCCESS;
  close.reply_text = amqp_cstring_bytes("replaced");
  checkStatus(amqp_send_method(state_, channel, AMQP_CHANNEL_CLOSE_METHOD, &close),
              "sending channel.close");
}

void AmqpConnection::confirmChannelClose(amqp_channel_t channel) noexcept {
  const Busy busy(*this, send_timeout_);
  amqp_channel_close_ok_t ok{};
  amqp_send_method(state_, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
}

void AmqpConnection::confirmConnectionClose() noexcept {
  const Busy busy(*this, send_timeout_);
  amqp_connection_close_ok_t ok{};
  amqp_send_method(state_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  closed_ = true;
}

void AmqpConnection::close() noexcept {
  if (closed_) return;
  closed_ = true;
  const Busy busy(*this, send_timeout_ + rpc_timeout_);
  amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
}

void AmqpConnection::check(amqp_rpc_reply_t reply, std::string_view what, amqp_channel_t channel,
                           std::string_view library_hint) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return;
    case AMQP_RESPONSE_NONE:
      throw AmqpError(AmqpError::Scope::kConnection, 0,
                      std::string(what) + ": the library returned no reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      closed_ = true;
      throw AmqpError(AmqpError::Scope::kConnection, 0,
                      libraryError(what, reply.library_error) + std::string(library_hint));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      break;
  }
  const std::string detail =
      std::string(what) + " refused by the broker: " + describeBrokerClose(reply.reply);
  if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
    confirmChannelClose(channel);
    throw AmqpError(AmqpError::Scope::kChannel, close->reply_code, detail);
  }
  int code = 0;
  if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    code = static_cast<const amqp_connection_close_t*>(reply.reply.decoded)->reply_code;
    confirmConnectionClose();
  }
  closed_ = true;
  throw AmqpError(AmqpError::Scope::kConnection, code, detail);
}

void AmqpConnection::checkStatus(int status, std::string_view what) {
  if (status == AMQP_STATUS_OK) return;
  closed_ = true;
  throw AmqpError(AmqpError::Scope::kConnection, 0, libraryError(what, status));
}

}  // namespace warren
