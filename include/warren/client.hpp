// SPDX-License-Identifier: Apache-2.0
// libwarren-client: call warren (or any server of the seed's protocol) over
// RabbitMQ.
//
//   warren::Client client({.broker_url = "amqp://guest:guest@localhost:5672/%2f"});
//   warren::Reply reply = client.call("sum", "3,4");        // reply.body == "7"
//   std::future<warren::Reply> later = client.callAsync("sum", "5,6");
//
// One Client is one AMQP connection with one I/O thread. Any number of calls
// may be in flight at once, from any number of threads: each request carries
// a unique correlation_id and its reply is matched to it. Every call has a
// timeout; the request carries the remaining time as its `expiration`, so the
// broker drops a request nobody waits for any more. docs/client.md has more.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// What libwarren-client.so exports (client/libwarren-client.map versions
// it); everything else in the library is hidden.
#if defined(__GNUC__)
#define WARREN_CLIENT_API __attribute__((visibility("default")))
#else
#define WARREN_CLIENT_API
#endif

namespace warren {

enum class ReplyMode {
  // One exclusive, server-named reply queue per Client (never one per call).
  // Measured faster on RabbitMQ 3.10 (docs/performance.md); the default.
  kExclusiveQueue,
  // RabbitMQ's direct reply-to (amq.rabbitmq.reply-to): no queue at all, but
  // a reply is lost if the connection drops before it arrives (at-most-once).
  kDirectReplyTo,
};

// TLS for amqps:// URLs.
struct ClientTlsOptions {
  // PEM CA certificate(s) the broker's certificate must chain to; empty:
  // the system trust store.
  std::string ca_file;
  // PEM client certificate and its key, both or neither (a broker that
  // verifies clients; external_login).
  std::string cert_file;
  std::string key_file;
  // Check the broker's certificate and host name. false accepts any
  // certificate: for tests only.
  bool verify = true;
};

struct ClientOptions {
  // amqp://user:password@host:port/vhost or amqps://... (TLS), or the URLs
  // of one cluster's nodes separated by spaces: the client connects to one
  // of them (a random one first, so clients spread) and, after losing it,
  // to the next that answers. Empty: $WARREN_BROKER_URL, else
  // amqp://guest:guest@localhost:5672/%2f.
  std::string broker_url;
  ReplyMode reply_mode = ReplyMode::kExclusiveQueue;
  std::chrono::milliseconds default_timeout{30000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::seconds heartbeat{10};
  // New fields go last: aggregate initialisation of the older ones keeps
  // compiling.
  // File holding the password (one line), instead of a password in the
  // URL; both is an error. Empty: $WARREN_BROKER_PASSWORD_FILE, if set.
  std::string password_file;
  ClientTlsOptions tls;
  // Log in with the TLS client certificate (SASL EXTERNAL; RabbitMQ's
  // rabbitmq_auth_mechanism_ssl) instead of a user and password.
  bool external_login = false;
};

struct CallOptions {
  // Overrides ClientOptions::default_timeout for this call.
  std::optional<std::chrono::milliseconds> timeout;
  std::string content_type;
};

struct Reply {
  std::string body;
  std::string content_type;
  // The reply's AMQP headers with text values (strings; integers and
  // booleans written as text), in the order they came. For an error reply
  // (kRemoteError) they are filled too, with its body and content type.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Why a call failed.
enum class CallStatus {
  kOk = 0,
  kRemoteError,     // the server answered with an error reply (code + message)
  kTimeout,         // no reply in time; a late reply is dropped
  kNoRoute,         // no queue of that name: the broker returned the request
  kConnectionLost,  // the connection failed before the reply arrived
  kNotConnected,    // the client could not connect to the broker
  // The broker refused to take the request (basic.nack) each time it was
  // published, until the call's deadline: the queue is full and rejects new
  // messages (x-overflow reject-publish), or a quorum queue has no leader
  // or majority. Nothing ran it.
  kRejected,
};

WARREN_CLIENT_API std::string_view callStatusName(CallStatus status) noexcept;

// The result of one call, as callbacks receive it (no exceptions).
struct CallOutcome {
  CallStatus status = CallStatus::kOk;
  Reply reply;             // kOk, and kRemoteError (the error reply as received)
  std::string error_code;  // kRemoteError: the server's code ("invalid_argument", ...)
  std::string message;     // every failure: what went wrong
  bool ok() const noexcept { return status == CallStatus::kOk; }
};

// What call() throws and callAsync()'s future holds when a call fails.
class WARREN_CLIENT_API CallError : public std::runtime_error {
 public:
  CallError(CallStatus status, std::string error_code, const std::string& message)
      : std::runtime_error(message), status_(status), error_code_(std::move(error_code)) {}
  CallStatus status() const noexcept { return status_; }
  // The server's error code for kRemoteError, empty otherwise.
  const std::string& errorCode() const noexcept { return error_code_; }

 private:
  CallStatus status_;
  std::string error_code_;
};

struct ClientStats {
  std::uint64_t calls = 0;
  std::uint64_t ok = 0;
  std::uint64_t remote_errors = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t no_route = 0;
  std::uint64_t connection_failures = 0;
  std::uint64_t late_replies = 0;  // replies to calls that had timed out, dropped
  std::uint64_t connects = 0;
  // Connections cut because a send was not taken by its deadline (a broker
  // or path that stopped reading).
  std::uint64_t stalled_sends_cut = 0;
  // Heartbeats sent for the connection while a callback held the I/O thread
  // (nonzero: some callback ran longer than half a heartbeat interval).
  std::uint64_t callback_heartbeats = 0;
  // Calls whose request the broker refused until their deadline (kRejected).
  std::uint64_t rejected = 0;
  // Requests published again after the broker refused them (not queued, so
  // never run twice).
  std::uint64_t republished = 0;
};

class WARREN_CLIENT_API Client {
 public:
  // Connects at once; throws CallError(kNotConnected) when the broker cannot
  // be reached, std::invalid_argument when the URL is malformed. A connection lost later fails the
  // calls in flight (kConnectionLost) and is re-opened for the next call.
  explicit Client(ClientOptions options = {});
  // Fails calls still in flight (kConnectionLost) and closes the connection.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Blocks until the reply, or throws CallError.
  Reply call(std::string_view queue, std::string_view body, const CallOptions& options = {});
  // The reply later; the future holds a CallError on failure.
  std::future<Reply> callAsync(std::string_view queue, std::string_view body,
                               const CallOptions& options = {});
  // `done` runs exactly once, on the client's I/O thread: keep it short and
  // never call back into this Client's blocking call() from it.
  void callAsync(std::string_view queue, std::string_view body, const CallOptions& options,
                 std::function<void(CallOutcome&&)> done);

  ClientStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The broker URL a command-line tool should use: `flag` when not empty,
// else $WARREN_BROKER_URL, else the local default.
WARREN_CLIENT_API std::string defaultBrokerUrl(std::string_view flag = {});
// The password file a command-line tool should use: `flag` when not empty,
// else $WARREN_BROKER_PASSWORD_FILE, else none ("").
WARREN_CLIENT_API std::string defaultPasswordFile(std::string_view flag = {});

}  // namespace warren
