// SPDX-License-Identifier: Apache-2.0
// A deliberately plain RPC caller for tests, written directly on rabbitmq-c
// (not on warren's own code paths): one connection, one exclusive reply
// queue, requests pipelined, replies matched by correlation_id.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <amqp.h>

#include "queue_argument.h"

namespace warren::test {

struct TestReply {
  std::string correlation_id;
  std::string body;
  std::string content_type;
  std::map<std::string, std::string> headers;  // string-valued ones
  bool isError() const { return headers.count("x-warren-error-code") != 0; }
  std::string errorCode() const { return isError() ? headers.at("x-warren-error-code") : ""; }
  std::string errorMessage() const {
    return headers.count("x-warren-error-message") ? headers.at("x-warren-error-message") : "";
  }
};

class TestClient {
 public:
  explicit TestClient(int port);
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  // Publishes a request; reply_to is this client's queue unless omitted.
  void send(const std::string& queue, const std::string& body, const std::string& correlation_id,
            bool with_reply_to = true);
  // The same with AMQP headers (integer and string values).
  void send(const std::string& queue, const std::string& body, const std::string& correlation_id,
            const std::map<std::string, QueueArgument>& headers);
  // The next reply, or nullopt after `timeout`.
  std::optional<TestReply> receive(std::chrono::milliseconds timeout);
  // Sends one request and waits for its reply; throws on timeout.
  TestReply call(const std::string& queue, const std::string& body,
                 std::chrono::milliseconds timeout = std::chrono::seconds(20));

  void declareQueue(const std::string& name,
                    const std::map<std::string, QueueArgument>& arguments = {},
                    bool durable = false);
  void deleteQueue(const std::string& name);

 private:
  void check(const char* what);
  amqp_connection_state_t state_;
  std::string reply_queue_;
  std::uint64_t next_id_ = 0;
};

}  // namespace warren::test
