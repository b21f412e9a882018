// SPDX-License-Identifier: Apache-2.0
// Capped exponential backoff with jitter, one per reconnecting thing.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace warren {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  // The delay before the next attempt: min(max, initial * 2^attempts), of
  // which a random 0-50 % is taken off so that many reconnecting
  // connections do not retry in lockstep. Counts the attempt.
  std::chrono::milliseconds next();
  // Back to the initial delay after a success.
  void reset() noexcept { attempts_ = 0; }
  std::uint32_t attempts() const noexcept { return attempts_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::uint32_t attempts_ = 0;
  std::minstd_rand random_;
};

}  // namespace warren
