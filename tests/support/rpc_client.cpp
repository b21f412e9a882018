// SPDX-License-Identifier: Apache-2.0
#include "rpc_client.h"

#include <amqp_tcp_socket.h>

#include <stdexcept>
#include <vector>

namespace warren::test {
namespace {

amqp_bytes_t bytesOf(const std::string& text) {
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}
std::string textOf(amqp_bytes_t bytes) {
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}
constexpr amqp_channel_t kChannel = 1;

}  // namespace

TestClient::TestClient(int port) : state_(amqp_new_connection()) {
  amqp_socket_t* socket = amqp_tcp_socket_new(state_);
  timeval timeout{5, 0};
  if (amqp_socket_open_noblock(socket, "127.0.0.1", port, &timeout) != AMQP_STATUS_OK) {
    amqp_destroy_connection(state_);
    throw std::runtime_error("test client: cannot connect to port " + std::to_string(port));
  }
  amqp_rpc_reply_t login =
      amqp_login(state_, "/", 0, 131072, /*heartbeat=*/0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    amqp_destroy_connection(state_);
    throw std::runtime_error("test client: login failed");
  }
  amqp_channel_open(state_, kChannel);
  check("channel.open");
  amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(state_, kChannel, amqp_empty_bytes, 0, 0,
                         /*exclusive=*/1, /*auto_delete=*/1, amqp_empty_table);
  check("declare reply queue");
  reply_queue_ = textOf(ok->queue);
  amqp_basic_consume(state_, kChannel, ok->queue, amqp_empty_bytes, 0, /*no_ack=*/1, 1,
                     amqp_empty_table);
  check("consume reply queue");
}

TestClient::~TestClient() {
  amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(state_);
}

void TestClient::check(const char* what) {
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    throw std::runtime_error(std::string("test client: ") + what + " failed");
  }
}

namespace {

// An AMQP table of `values` (integers and strings); its entries point into
// `values` and `entries`.
amqp_table_t tableOf(const std::map<std::string, QueueArgument>& values,
                     std::vector<amqp_table_entry_t>& entries) {
  entries.clear();
  for (const auto& [key, value] : values) {
    amqp_table_entry_t entry{};
    entry.key = bytesOf(key);
    if (const auto* number = std::get_if<std::int64_t>(&value)) {
      entry.value.kind = AMQP_FIELD_KIND_I64;
      entry.value.value.i64 = *number;
    } else if (const auto* text = std::get_if<std::string>(&value)) {
      entry.value.kind = AMQP_FIELD_KIND_UTF8;
      entry.value.value.bytes = bytesOf(*text);
    } else {
      throw std::invalid_argument("test client: only integer and string table values");
    }
    entries.push_back(entry);
  }
  return amqp_table_t{static_cast<int>(entries.size()), entries.data()};
}

}  // namespace

void TestClient::send(const std::string& queue, const std::string& body,
                      const std::string& correlation_id,
                      const std::map<std::string, QueueArgument>& headers) {
  std::vector<amqp_table_entry_t> entries;
  amqp_basic_properties_t properties{};
  properties._flags =
      AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_HEADERS_FLAG;
  properties.correlation_id = bytesOf(correlation_id);
  properties.reply_to = bytesOf(reply_queue_);
  properties.headers = tableOf(headers, entries);
  if (amqp_basic_publish(state_, kChannel, amqp_empty_bytes, bytesOf(queue), 0, 0, &properties,
                         bytesOf(body)) != AMQP_STATUS_OK) {
    throw std::runtime_error("test client: publish failed");
  }
}

void TestClient::send(const std::string& queue, const std::string& body,
                      const std::string& correlation_id, bool with_reply_to) {
  amqp_basic_properties_t properties{};
  properties._flags = AMQP_BASIC_CORRELATION_ID_FLAG;
  properties.correlation_id = bytesOf(correlation_id);
  if (with_reply_to) {
    properties._flags |= AMQP_BASIC_REPLY_TO_FLAG;
    properties.reply_to = bytesOf(reply_queue_);
  }
  if (amqp_basic_publish(state_, kChannel, amqp_empty_bytes, bytesOf(queue), 0, 0, &properties,
                         bytesOf(body)) != AMQP_STATUS_OK) {
    throw std::runtime_error("test client: publish failed");
  }
}

std::optional<TestReply> TestClient::receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    timeval tv{static_cast<time_t>(left.count() / 1000000),
               static_cast<suseconds_t>(left.count() % 1000000)};
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(state_);
    const amqp_rpc_reply_t result = amqp_consume_message(state_, &envelope, &tv, 0);
    if (result.reply_type == AMQP_RESPONSE_NORMAL) {
      TestReply reply;
      const amqp_basic_properties_t& p = envelope.message.properties;
      if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG)
        reply.correlation_id = textOf(p.correlation_id);
      if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) reply.content_type = textOf(p.content_type);
      if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < p.headers.num_entries; ++i) {
          const amqp_table_entry_t& entry = p.headers.entries[i];
          if (entry.value.kind == AMQP_FIELD_KIND_UTF8 ||
              entry.value.kind == AMQP_FIELD_KIND_BYTES) {
            reply.headers[textOf(entry.key)] = textOf(entry.value.value.bytes);
          }
        }
      }
      reply.body = textOf(envelope.message.body);
      amqp_destroy_envelope(&envelope);
      return reply;
    }
    if (result.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        result.library_error == AMQP_STATUS_TIMEOUT) {
      return std::nullopt;
    }
    if (result.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        result.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      amqp_frame_t frame;
      if (amqp_simple_wait_frame(state_, &frame) != AMQP_STATUS_OK) {
        throw std::runtime_error("test client: connection lost");
      }
      if (frame.frame_type == AMQP_FRAME_METHOD &&
          (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
           frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        throw std::runtime_error("test client: the broker closed the channel or connection");
      }
      continue;
    }
    throw std::runtime_error("test client: consume failed");
  }
}

TestReply TestClient::call(const std::string& queue, const std::string& body,
                           std::chrono::milliseconds timeout) {
  const std::string id = "call-" + std::to_string(++next_id_);
  send(queue, body, id);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto reply = receive(std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()));
    if (reply && reply->correlation_id == id) return *reply;
  }
  throw std::runtime_error("test client: no reply to '" + body + "' on '" + queue + "' in time");
}

void TestClient::declareQueue(const std::string& name,
                              const std::map<std::string, QueueArgument>& arguments, bool durable) {
  std::vector<amqp_table_entry_t> entries;
  const amqp_table_t table = tableOf(arguments, entries);
  amqp_queue_declare(state_, kChannel, bytesOf(name), 0, durable ? 1 : 0, 0, 0, table);
  check("queue.declare");
}

void TestClient::deleteQueue(const std::string& name) {
  amqp_queue_delete(state_, kChannel, bytesOf(name), 0, 0);
  check("queue.delete");
}

}  // namespace warren::test
