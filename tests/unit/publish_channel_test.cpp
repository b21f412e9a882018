// SPDX-License-Identifier: Apache-2.0
// Which channel the client publishes on and which calls a confirm covers,
// without a broker (client/publish_channel.h).
#include "publish_channel.h"

#include <gtest/gtest.h>

namespace warren::client_detail {
namespace {

using namespace std::chrono_literals;
using Clock = PublishChannel::Clock;

TEST(PublishChannel, ConfirmsCoverTheTagsOfTheirOwnChannelOnly) {
  PublishChannel publishing(2, 4, 1s);
  publishing.reset(2);
  EXPECT_EQ(publishing.nextTag(), 1u);
  EXPECT_EQ(publishing.nextTag(), 2u);
  EXPECT_EQ(publishing.nextTag(), 3u);
  const auto single = publishing.confirmed(2, 2, /*multiple=*/false);
  ASSERT_TRUE(single);
  EXPECT_EQ(single->first, 2u);
  EXPECT_EQ(single->last, 2u);
  const auto multiple = publishing.confirmed(2, 3, /*multiple=*/true);
  ASSERT_TRUE(multiple);
  EXPECT_EQ(multiple->first, 1u);
  EXPECT_EQ(multiple->last, 3u);
  EXPECT_FALSE(publishing.confirmed(1, 1, false)) << "the reply channel publishes nothing";
  EXPECT_FALSE(publishing.confirmed(2, 4, false)) << "a tag never published";
  EXPECT_FALSE(publishing.confirmed(2, 0, true));
}

TEST(PublishChannel, AReplacedChannelKeepsItsTagsUntilItIsClosed) {
  PublishChannel publishing(2, 4, 1s);
  publishing.reset(2);
  publishing.nextTag();
  publishing.nextTag();
  publishing.refused(2);
  const auto now = Clock::now();
  ASSERT_TRUE(publishing.renewalDue(now));
  EXPECT_EQ(publishing.replace(now), 3);
  EXPECT_EQ(publishing.channel(), 3);
  // The new channel numbers its publishes from 1 again: tags go on.
  EXPECT_EQ(publishing.nextTag(), 3u);
  const auto fresh = publishing.confirmed(3, 1, /*multiple=*/true);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->first, 3u) << "a multiple ack on the new channel covered the old one's calls";
  EXPECT_EQ(fresh->last, 3u);
  // The old channel's late confirms still count, until its close-ok.
  const auto late = publishing.confirmed(2, 2, /*multiple=*/true);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->first, 1u);
  EXPECT_EQ(late->last, 2u);
  const auto closed = publishing.closed(2);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->first, 1u);
  EXPECT_EQ(closed->last, 2u);
  EXPECT_FALSE(publishing.confirmed(2, 1, false));
  EXPECT_FALSE(publishing.closed(2));
}

TEST(PublishChannel, ReplacesAtMostOncePerIntervalAndSkipsChannelsStillClosing) {
  PublishChannel publishing(2, 4, 1s);
  publishing.reset(2);
  const auto start = Clock::now();
  EXPECT_FALSE(publishing.renewalDue(start)) << "nothing was refused";
  publishing.refused(1);  // not the publishing channel
  EXPECT_FALSE(publishing.renewalDue(start));
  publishing.refused(2);
  EXPECT_EQ(publishing.replace(start), 3);
  publishing.refused(3);
  EXPECT_FALSE(publishing.renewalDue(start + 500ms));
  ASSERT_TRUE(publishing.renewalDue(start + 1s));
  EXPECT_EQ(publishing.replace(start + 1s), 4);
  // 2 and 3 are still closing: 4 has nowhere to go.
  EXPECT_FALSE(publishing.replace(start + 2s));
}

TEST(PublishChannel, ANewConnectionForgetsTheOldChannelsButNotTheTags) {
  PublishChannel publishing(2, 4, 1s);
  publishing.reset(2);
  publishing.nextTag();
  publishing.refused(2);
  publishing.replace(Clock::now());
  publishing.reset(2);
  EXPECT_FALSE(publishing.closed(2));
  EXPECT_FALSE(publishing.renewalDue(Clock::now()));
  EXPECT_EQ(publishing.nextTag(), 2u);
}

}  // namespace
}  // namespace warren::client_detail
