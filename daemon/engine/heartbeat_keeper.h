// Watches the connections of a queue's consumers (watched_connection.h):
// while a handler runs, its consumer reads nothing and sends nothing, so this
// thread sends the heartbeats; a handler may then run far longer than the
// heartbeat timeout without the broker closing anything. And a consumer
// stuck in a send the broker stopped taking has its connection cut, so that
// it reconnects instead of waiting forever.
#pragma once

#include "stop_signal.h"
#include "watched_connection.h"

#include <thread>
#include <vector>

namespace warren {

class HeartbeatKeeper {
 public:
  // The connections must outlive the keeper.
  explicit HeartbeatKeeper(std::vector<WatchedConnection*> connections);
  // Stops and joins.
  ~HeartbeatKeeper();
  HeartbeatKeeper(const HeartbeatKeeper&) = delete;
  HeartbeatKeeper& operator=(const HeartbeatKeeper&) = delete;

 private:
  void run();

  std::vector<WatchedConnection*> connections_;
  StopSignal stop_;
  std::thread thread_;
};

}  // namespace warren
