// SPDX-License-Identifier: Apache-2.0
#include "backoff.h"

#include <algorithm>

namespace warren {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      random_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  // Doubling stops at the cap, and never doubles past it, so it cannot
  // overflow even when max_ is near milliseconds::max().
  std::chrono::milliseconds ceiling = initial_;
  for (std::uint32_t i = 0; i < attempts_ && ceiling < max_; ++i) {
    ceiling = ceiling > max_ / 2 ? max_ : ceiling * 2;
  }
  ceiling = std::min(ceiling, max_);
  ++attempts_;
  std::uniform_int_distribution<std::int64_t> jitter(0, ceiling.count() / 2);
  return ceiling - std::chrono::milliseconds(jitter(random_));
}

}  // namespace warren
