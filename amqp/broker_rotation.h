// SPDX-License-Identifier: Apache-2.0
// The nodes of one RabbitMQ cluster, tried in turn: where a connection
// opens, and where it goes after losing one.
#pragma once

#include "amqp_connection.h"
#include "broker_url.h"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace warren {

class BrokerRotation {
 public:
  // Starts at addresses[first % size]: callers give each connection a
  // different `first`, so that connections spread over the nodes.
  BrokerRotation(std::vector<BrokerAddress> addresses, std::size_t first)
      : addresses_(std::move(addresses)), current_(first % addresses_.size()) {}

  const BrokerAddress& current() const noexcept { return addresses_[current_]; }
  std::size_t size() const noexcept { return addresses_.size(); }
  // After losing the current node's connection: the next one is tried first.
  void advance() noexcept { current_ = (current_ + 1) % addresses_.size(); }

  // Calls open(address) for each address from the current one on until a
  // call returns; that address stays current. When every call throws
  // AmqpError, throws one naming each failure (the last one's code and
  // scope), and the current address is where it started.
  template <typename Open>
  void open(Open&& open_at) {
    std::string failures;
    for (std::size_t tried = 0;; ++tried) {
      try {
        open_at(current());
        return;
      } catch (const AmqpError& e) {
        if (addresses_.size() == 1) throw;
        failures += (failures.empty() ? "" : "; ") + std::string(e.what());
        advance();
        if (tried + 1 == addresses_.size()) {
          throw AmqpError(e.scope(), e.replyCode(),
                          "no broker of " + std::to_string(addresses_.size()) +
                              " could be reached: " + failures);
        }
      }
    }
  }

 private:
  std::vector<BrokerAddress> addresses_;
  std::size_t current_;
};

}  // namespace warren
