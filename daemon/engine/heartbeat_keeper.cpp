#include "heartbeat_keeper.h"

#include <algorithm>

namespace warren {

HeartbeatKeeper::HeartbeatKeeper(std::vector<WatchedConnection*> connections)
    : connections_(std::move(connections)), thread_(&HeartbeatKeeper::run, this) {}

HeartbeatKeeper::~HeartbeatKeeper() {
  stop_.request();
  thread_.join();
}

void HeartbeatKeeper::run() {
  // Bounded even with no connection: keepAlive() answers at most a second.
  constexpr std::chrono::milliseconds kLongest{1000};
  auto next = kLongest;
  do {
    next = kLongest;
    const auto now = WatchedConnection::Clock::now();
    for (WatchedConnection* connection : connections_) {
      next = std::min(next, connection->keepAlive(now));
    }
  } while (!stop_.waitFor(next));
}

}  // namespace warren
