// SPDX-License-Identifier: Apache-2.0
// The queue's inbox of completed deferred replies: what wakes the thread
// holding the connection, and when it need not.
#include "deferred_inbox.h"

#include <poll.h>

#include <gtest/gtest.h>

#include <memory>

namespace warren {
namespace {

bool readable(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, 0) == 1;
}

// A completed reply posted to `inbox`, as a plugin's reply_complete does.
void postOne(const std::shared_ptr<DeferredInbox>& inbox) {
  HandlerReply reply;
  warren_reply* handle = DeferredReply::begin(reply, inbox);
  ASSERT_NE(handle, nullptr);
  DeferredReply::complete(handle);
}

TEST(DeferredInbox, APostMakesTheDescriptorReadableUntilTaken) {
  const auto inbox = std::make_shared<DeferredInbox>();
  EXPECT_FALSE(readable(inbox->fd()));
  postOne(inbox);
  postOne(inbox);
  EXPECT_TRUE(inbox->posted());
  EXPECT_TRUE(readable(inbox->fd()));
  EXPECT_EQ(inbox->take().size(), 2u);
  EXPECT_FALSE(inbox->posted());
  EXPECT_FALSE(readable(inbox->fd()));
}

TEST(DeferredInbox, APostWhileTheTakerIsAwakeDoesNotWakeItButIsSeen) {
  const auto inbox = std::make_shared<DeferredInbox>();
  inbox->setTakerAwake(true);
  postOne(inbox);
  inbox->setTakerAwake(false);
  EXPECT_FALSE(readable(inbox->fd()));
  EXPECT_TRUE(inbox->posted());
  EXPECT_EQ(inbox->take().size(), 1u);
  // Asleep again: the next post wakes it.
  postOne(inbox);
  EXPECT_TRUE(readable(inbox->fd()));
  EXPECT_EQ(inbox->take().size(), 1u);
  EXPECT_FALSE(readable(inbox->fd()));
}

TEST(DeferredInbox, AClosedInboxFreesWhatIsPosted) {
  const auto inbox = std::make_shared<DeferredInbox>();
  postOne(inbox);
  inbox->close();
  EXPECT_FALSE(inbox->posted());
  postOne(inbox);
  EXPECT_FALSE(inbox->posted());
  EXPECT_TRUE(inbox->take().empty());
}

}  // namespace
}  // namespace warren
