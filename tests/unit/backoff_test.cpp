// SPDX-License-Identifier: Apache-2.0
// Tests of the capped exponential backoff with jitter (amqp/backoff.cpp).
// The jitter is random, so each property is checked over many samples.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "backoff.h"

namespace warren {
namespace {

using std::chrono::milliseconds;

constexpr int kSamples = 200;

// min(max, initial * 2^attempt), computed without overflow.
milliseconds ceilingAt(milliseconds initial, milliseconds max, std::uint32_t attempt) {
  milliseconds ceiling = initial;
  for (std::uint32_t i = 0; i < attempt && ceiling < max; ++i) {
    ceiling = ceiling > max / 2 ? max : ceiling * 2;
  }
  return std::min(ceiling, max);
}

// The documented range: the ceiling with 0-50 % taken off.
::testing::AssertionResult withinJitterRange(milliseconds delay, milliseconds ceiling) {
  if (delay <= ceiling && delay.count() >= ceiling.count() - ceiling.count() / 2) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << delay.count() << "ms is outside [ceiling/2, ceiling] "
                                       << "for a ceiling of " << ceiling.count() << "ms";
}

TEST(Backoff, DoublesTheCeilingEachAttemptUpToTheMax) {
  const milliseconds initial(100);
  const milliseconds max(10'000);
  for (int sample = 0; sample < kSamples; ++sample) {
    Backoff backoff(initial, max);
    for (std::uint32_t attempt = 0; attempt < 12; ++attempt) {
      const milliseconds ceiling = ceilingAt(initial, max, attempt);
      ASSERT_TRUE(withinJitterRange(backoff.next(), ceiling)) << "attempt " << attempt;
    }
  }
}

TEST(Backoff, FirstDelayIsWithinTheInitialRange) {
  for (int sample = 0; sample < kSamples; ++sample) {
    Backoff backoff(milliseconds(1000), milliseconds(30'000));
    const milliseconds delay = backoff.next();
    ASSERT_GE(delay, milliseconds(500));
    ASSERT_LE(delay, milliseconds(1000));
  }
}

TEST(Backoff, JitterSpreadsTheDelaysAcrossTheRange) {
  // With a 1000 ms ceiling the delay is uniform over [500, 1000]: across many
  // samples both halves of the range turn up (failure odds about 2^-199).
  Backoff backoff(milliseconds(1000), milliseconds(1000));
  bool lower_half = false;
  bool upper_half = false;
  for (int sample = 0; sample < kSamples; ++sample) {
    const milliseconds delay = backoff.next();
    ASSERT_TRUE(withinJitterRange(delay, milliseconds(1000)));
    if (delay < milliseconds(750)) lower_half = true;
    if (delay > milliseconds(750)) upper_half = true;
  }
  EXPECT_TRUE(lower_half);
  EXPECT_TRUE(upper_half);
}

TEST(Backoff, NeverExceedsTheMaxEvenAfterOneHundredAttempts) {
  const milliseconds initial(250);
  const milliseconds max(60'000);
  for (int sample = 0; sample < kSamples / 10; ++sample) {
    Backoff backoff(initial, max);
    for (int attempt = 0; attempt < 100; ++attempt) {
      const milliseconds delay = backoff.next();
      ASSERT_LE(delay, max) << "attempt " << attempt;
      ASSERT_GE(delay, initial / 2) << "attempt " << attempt;
    }
    // Long past the cap the delay stays within [max/2, max].
    for (int attempt = 0; attempt < 20; ++attempt) {
      ASSERT_TRUE(withinJitterRange(backoff.next(), max));
    }
  }
}

TEST(Backoff, DoesNotOverflowWithTheLargestRepresentableMax) {
  // The configuration accepts any int64 number of milliseconds as max_delay,
  // so doubling must stop before it would overflow.
  const milliseconds initial(1);
  const milliseconds max = milliseconds::max();
  Backoff backoff(initial, max);
  for (std::uint32_t attempt = 0; attempt < 100; ++attempt) {
    const milliseconds delay = backoff.next();
    ASSERT_TRUE(withinJitterRange(delay, ceilingAt(initial, max, attempt)))
        << "attempt " << attempt;
  }
}

TEST(Backoff, CountsAttempts) {
  Backoff backoff(milliseconds(10), milliseconds(1000));
  EXPECT_EQ(backoff.attempts(), 0u);
  backoff.next();
  EXPECT_EQ(backoff.attempts(), 1u);
  for (int i = 0; i < 9; ++i) backoff.next();
  EXPECT_EQ(backoff.attempts(), 10u);
}

TEST(Backoff, ResetReturnsToTheInitialRange) {
  for (int sample = 0; sample < kSamples; ++sample) {
    Backoff backoff(milliseconds(100), milliseconds(100'000));
    for (int i = 0; i < 10; ++i) backoff.next();
    backoff.reset();
    EXPECT_EQ(backoff.attempts(), 0u);
    ASSERT_TRUE(withinJitterRange(backoff.next(), milliseconds(100)));
    ASSERT_TRUE(withinJitterRange(backoff.next(), milliseconds(200)));
    EXPECT_EQ(backoff.attempts(), 2u);
  }
}

TEST(Backoff, TreatsAZeroInitialDelayAsOneMillisecond) {
  for (int sample = 0; sample < kSamples; ++sample) {
    Backoff backoff(milliseconds(0), milliseconds(1000));
    // A 1 ms ceiling leaves no room for jitter: the first delay is exactly 1 ms.
    ASSERT_EQ(backoff.next(), milliseconds(1));
    ASSERT_TRUE(withinJitterRange(backoff.next(), milliseconds(2)));
    ASSERT_TRUE(withinJitterRange(backoff.next(), milliseconds(4)));
  }
}

TEST(Backoff, NeverReturnsAZeroDelay) {
  for (int sample = 0; sample < kSamples; ++sample) {
    Backoff backoff(milliseconds(0), milliseconds(0));
    for (int attempt = 0; attempt < 10; ++attempt) {
      ASSERT_EQ(backoff.next(), milliseconds(1));
    }
  }
}

TEST(Backoff, RaisesAMaxBelowTheInitialDelayToTheInitialDelay) {
  for (int sample = 0; sample < kSamples; ++sample) {
    Backoff backoff(milliseconds(800), milliseconds(100));
    for (int attempt = 0; attempt < 10; ++attempt) {
      ASSERT_TRUE(withinJitterRange(backoff.next(), milliseconds(800))) << "attempt " << attempt;
    }
  }
}

}  // namespace
}  // namespace warren
