// SPDX-License-Identifier: Apache-2.0
#include "log_throttle.h"

#include <gtest/gtest.h>

namespace warren {
namespace {

using std::chrono::seconds;

TEST(LogThrottle, LetsTheFirstEventThroughThenOnePerIntervalWithTheCountHeldBack) {
  LogThrottle throttle(seconds(10));
  const LogThrottle::Clock::time_point start{seconds(1000)};
  EXPECT_EQ(throttle.admit(start), 0u);
  EXPECT_FALSE(throttle.admit(start));
  EXPECT_FALSE(throttle.admit(start + seconds(9)));
  EXPECT_EQ(throttle.admit(start + seconds(10)), 2u);
  EXPECT_EQ(throttle.admit(start + seconds(30)), 0u);
  EXPECT_FALSE(throttle.admit(start + seconds(31)));
}

}  // namespace
}  // namespace warren
