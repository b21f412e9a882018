// What happened on a queue since start. Written by its consumer threads,
// readable from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace warren {

struct QueueCounters {
  std::atomic<std::uint64_t> received{0};          // deliveries
  std::atomic<std::uint64_t> handled{0};           // handler runs
  std::atomic<std::uint64_t> replied{0};           // success replies published and acked
  std::atomic<std::uint64_t> replied_error{0};     // error replies published and acked
  std::atomic<std::uint64_t> missing_reply_to{0};  // acked without a reply
  std::atomic<std::uint64_t> too_large{0};         // answered "too_large" unread
  std::atomic<std::uint64_t> returned{0};          // replies the broker could not route
  std::atomic<std::uint64_t> reply_failures{0};    // replies lost with their connection
  std::atomic<std::uint64_t> reply_refused{0};     // acked/dead-lettered: no reply deliverable
  std::atomic<std::uint64_t> requeued{0};          // handed back at shutdown
  std::atomic<std::uint64_t> sessions_lost{0};     // connection/channel/consumer losses
  std::atomic<std::uint64_t> blocked{0};           // connection.blocked notifications
};

}  // namespace warren
