// Keeps the connections of a queue's busy consumers alive: while a handler
// runs, its consumer reads nothing and sends nothing, so this thread sends
// the heartbeats (see parked_connection.h). A handler may then run far
// longer than the heartbeat timeout without the broker closing anything.
#pragma once

#include "parked_connection.h"
#include "stop_signal.h"

#include <thread>
#include <vector>

namespace warren {

class HeartbeatKeeper {
 public:
  // The connections must outlive the keeper.
  explicit HeartbeatKeeper(std::vector<ParkedConnection*> connections);
  // Stops and joins.
  ~HeartbeatKeeper();
  HeartbeatKeeper(const HeartbeatKeeper&) = delete;
  HeartbeatKeeper& operator=(const HeartbeatKeeper&) = delete;

 private:
  void run();

  std::vector<ParkedConnection*> connections_;
  StopSignal stop_;
  std::thread thread_;
};

}  // namespace warren
