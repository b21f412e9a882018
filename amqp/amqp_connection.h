// SPDX-License-Identifier: Apache-2.0
// One AMQP connection, wrapped for RAII and for errors that say what failed.
//
// rabbitmq-c connections are not thread-safe: an AmqpConnection belongs to
// the one thread that created it. Every operation either succeeds or throws
// AmqpError; after a connection-scoped error the object is only good for
// destruction.
#pragma once

#include "broker_url.h"
#include "queue_argument.h"
#include "tls_settings.h"

#include <amqp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace warren {

class AmqpError : public std::runtime_error {
 public:
  enum class Scope {
    kConnection,  // the socket or the connection is gone
    kChannel,     // the broker closed one channel; the connection lives
  };
  AmqpError(Scope scope, int reply_code, const std::string& message)
      : std::runtime_error(message), scope_(scope), reply_code_(reply_code) {}
  Scope scope() const noexcept { return scope_; }
  // The AMQP reply code the broker gave (404, 406, 320, ...), 0 for
  // failures of the library or the socket.
  int replyCode() const noexcept { return reply_code_; }

 private:
  Scope scope_;
  int reply_code_;
};

struct ConnectionOptions {
  std::chrono::milliseconds heartbeat{10000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds rpc_timeout{10000};
  std::string connection_name;  // shown by the broker's management tools
  TlsSettings tls;              // for an amqps:// address
  LoginMechanism login = LoginMechanism::kPlain;
};

struct QueueDeclaration {
  std::string_view name;
  bool durable = false;
  bool auto_delete = false;
  const std::map<std::string, QueueArgument>* arguments = nullptr;
};

class AmqpConnection {
 public:
  // Opens the socket (bounded by connect_timeout; TLS for an amqps://
  // address, its handshake within the same bound) and logs in, announcing
  // the consumer_cancel_notify and connection.blocked capabilities so that
  // the broker tells us when a consumer is cancelled or publishing blocks.
  AmqpConnection(const BrokerAddress& address, const ConnectionOptions& options);
  ~AmqpConnection();
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  amqp_connection_state_t raw() const noexcept { return state_; }
  int fd() const noexcept;
  // Heartbeat negotiated with the broker; zero when off.
  std::chrono::seconds heartbeat() const noexcept;
  // How long a send may go without the broker taking a byte of it: twice
  // the negotiated heartbeat (the rpc timeout when heartbeats are off). It
  // is also the socket's TCP_USER_TIMEOUT.
  std::chrono::milliseconds sendTimeout() const noexcept { return send_timeout_; }

  // rabbitmq-c waits forever in a send the peer does not read. These two are
  // for a supervising thread, called while the connection exists (the owner
  // destroys it only after that thread let go of it), by one such thread at
  // a time; neither blocks.
  //
  // Shuts the socket down when the owner's current call has run past its
  // bound (the send timeout, plus the rpc timeout for a synchronous call)
  // and its send queue has not moved for a send timeout: the call fails
  // and the owner sees a lost connection. True when it cut.
  bool cutIfOverdue(std::chrono::steady_clock::time_point now) noexcept;
  // Shuts the socket down now: every call blocked on it returns an error.
  void cut() noexcept;

  // The next frame, if one is buffered or on the socket now; false when
  // there is none. Never blocks (heartbeats due are sent on the way).
  // Throws AmqpError when the connection failed.
  bool readFrameNoWait(amqp_frame_t& frame);
  // True when a frame can be read without touching the socket.
  bool hasBufferedInput() const noexcept;
  // True when the socket has bytes the library has not read yet. After a
  // long stretch without reading (a handler, a callback), what arrived
  // meanwhile counts as heard from the broker: readFrameNoWait() consumes
  // heartbeats without returning them.
  bool socketReadable() const noexcept;
  // True when the socket has room to send a frame now: a heartbeat sent by
  // a watching thread then cannot block.
  bool socketWritable() const noexcept;

  void openChannel(amqp_channel_t channel);
  void setPrefetch(amqp_channel_t channel, std::uint16_t prefetch);
  // Publisher confirms on `channel`: from now on the broker answers every
  // publish there, numbered from 1, with basic.ack (it took the message:
  // routed, and written to disk where it is persistent and its queue
  // durable) or basic.nack, read as frames like any other.
  void confirmSelect(amqp_channel_t channel);
  void declareQueue(amqp_channel_t channel, const QueueDeclaration& queue);
  // A durable direct exchange (the dead-letter target of a queue).
  void declareDirectExchange(amqp_channel_t channel, std::string_view name);
  void bindQueue(amqp_channel_t channel, std::string_view queue, std::string_view exchange,
                 std::string_view routing_key);
  // A server-named queue, exclusive to this connection and deleted with it.
  std::string declareExclusiveQueue(amqp_channel_t channel);
  // Starts a consumer (manual acks unless `no_ack`); returns the
  // broker-assigned consumer tag.
  std::string consume(amqp_channel_t channel, std::string_view queue, bool no_ack = false);
  void cancel(amqp_channel_t channel, std::string_view consumer_tag);

  void publish(amqp_channel_t channel, std::string_view routing_key,
               const amqp_basic_properties_t* properties, std::string_view body, bool mandatory);
  void ack(amqp_channel_t channel, std::uint64_t delivery_tag);
  // One heartbeat frame, for a connection nobody reads for a while (see
  // daemon/engine/watched_connection.h). False when the send failed.
  bool sendHeartbeat() noexcept;
  void reject(amqp_channel_t channel, std::uint64_t delivery_tag, bool requeue);

  // Sends channel.close without waiting for channel.close-ok, which then
  // arrives as a frame like any other; meanwhile the broker may still send
  // frames on the channel.
  void closeChannelNoWait(amqp_channel_t channel);

  // Answers a channel.close / connection.close the broker sent.
  void confirmChannelClose(amqp_channel_t channel) noexcept;
  void confirmConnectionClose() noexcept;

  // Polite close (connection.close, bounded by the rpc timeout); errors are
  // ignored, the destructor frees everything either way.
  void close() noexcept;

 private:
  // Throws AmqpError for a failed synchronous call, answering the broker's
  // close first when it sent one.
  // `library_hint` follows the message of a library (not broker) failure.
  void check(amqp_rpc_reply_t reply, std::string_view what, amqp_channel_t channel,
             std::string_view library_hint = {});
  void checkStatus(int status, std::string_view what);
  // The socket of the connection: plain TCP, or TLS set up from `tls`.
  amqp_socket_t* newSocket(const BrokerAddress& address, const TlsSettings& tls);
  // The owner is inside a library call that may block (see cutIfOverdue).
  class Busy;
  void setTcpUserTimeout() noexcept;
  // Bytes in the socket's send queue, not yet acknowledged by the broker.
  std::uint64_t bytesUnsent() const noexcept;

  amqp_connection_state_t state_;
  bool closed_ = false;
  int fd_ = -1;  // read by the supervising thread: set before it sees the object
  std::chrono::milliseconds send_timeout_;
  std::chrono::milliseconds rpc_timeout_;
  // steady_clock ticks by which the current call should be done; 0: none.
  std::atomic<std::chrono::steady_clock::rep> busy_until_{0};
  // The supervising thread's own (one at a time, see cutIfOverdue).
  bool sampled_ = false;
  std::uint64_t unsent_at_sample_ = 0;
  std::chrono::steady_clock::time_point progress_at_sample_;
};

// "406 PRECONDITION_FAILED - inequivalent arg ..." from a broker close method.
std::string describeBrokerClose(const amqp_method_t& method);

}  // namespace warren
