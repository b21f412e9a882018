// One AMQP connection, wrapped for RAII and for errors that say what failed.
//
// rabbitmq-c connections are not thread-safe: an AmqpConnection belongs to
// the one thread that created it. Every operation either succeeds or throws
// AmqpError; after a connection-scoped error the object is only good for
// destruction.
#pragma once

#include "broker_url.h"
#include "queue_argument.h"

#include <amqp.h>

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
};

struct QueueDeclaration {
  std::string_view name;
  bool durable = false;
  bool auto_delete = false;
  const std::map<std::string, QueueArgument>* arguments = nullptr;
};

class AmqpConnection {
 public:
  // Opens the socket (bounded by connect_timeout) and logs in, announcing
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

  // The next frame, if one is buffered or on the socket now; false when
  // there is none. Never blocks (heartbeats due are sent on the way).
  // Throws AmqpError when the connection failed.
  bool readFrameNoWait(amqp_frame_t& frame);
  // True when a frame can be read without touching the socket.
  bool hasBufferedInput() const noexcept;

  void openChannel(amqp_channel_t channel);
  void setPrefetch(amqp_channel_t channel, std::uint16_t prefetch);
  // Publisher confirms on `channel`: from now on the broker answers every
  // publish there, numbered from 1, with basic.ack (it took the message:
  // routed, and written to disk where it is persistent and its queue
  // durable) or basic.nack, read as frames like any other.
  void confirmSelect(amqp_channel_t channel);
  void declareQueue(amqp_channel_t channel, const QueueDeclaration& queue);
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
  // daemon/engine/parked_connection.h). False when the send failed.
  bool sendHeartbeat() noexcept;
  void reject(amqp_channel_t channel, std::uint64_t delivery_tag, bool requeue);

  // Answers a channel.close / connection.close the broker sent.
  void confirmChannelClose(amqp_channel_t channel) noexcept;
  void confirmConnectionClose() noexcept;

  // Polite close (connection.close, bounded by the rpc timeout); errors are
  // ignored, the destructor frees everything either way.
  void close() noexcept;

 private:
  // Throws AmqpError for a failed synchronous call, answering the broker's
  // close first when it sent one.
  void check(amqp_rpc_reply_t reply, std::string_view what, amqp_channel_t channel);
  void checkStatus(int status, std::string_view what);

  amqp_connection_state_t state_;
  bool closed_ = false;
};

// "406 PRECONDITION_FAILED - inequivalent arg ..." from a broker close method.
std::string describeBrokerClose(const amqp_method_t& method);

}  // namespace warren
