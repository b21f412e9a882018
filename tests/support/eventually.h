// SPDX-License-Identifier: Apache-2.0
// Waits for a condition only an outside tool can observe (rabbitmqctl's view
// of a queue): checks it until it holds or the deadline passes.
#pragma once

#include <chrono>
#include <thread>

namespace warren::test {

template <typename Condition>
bool eventually(Condition&& holds, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(200)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (holds()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace warren::test
