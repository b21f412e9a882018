// The calls a Client has in flight: correlation id -> who waits, and when
// each one times out. Used by the client's I/O thread only (not thread-safe).
#pragma once

#include <warren/client.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace warren::client_detail {

using Clock = std::chrono::steady_clock;
using Done = std::function<void(CallOutcome&&)>;

struct PendingCall {
  std::uint64_t id = 0;
  Clock::time_point deadline;
  std::string queue;
  Done done;
};

class PendingCalls {
 public:
  // Correlation ids are `prefix` + a decimal sequence number; the prefix
  // should be unique per client so that no other caller's reply matches.
  explicit PendingCalls(std::string prefix) : prefix_(std::move(prefix)) {}

  // Registers a call; returns its correlation id.
  std::string add(Clock::time_point deadline, std::string queue, Done done);
  // The call waiting for `correlation_id`, removed; nullopt when there is
  // none (a late reply to a call that timed out, or not ours).
  std::optional<PendingCall> take(std::string_view correlation_id);
  // Removes and returns the calls whose deadline is at or before `now`.
  std::vector<PendingCall> expire(Clock::time_point now);
  // Removes and returns every call (the connection is gone).
  std::vector<PendingCall> takeAll();
  // The earliest deadline of a call still waiting.
  std::optional<Clock::time_point> nextDeadline();

  std::size_t size() const noexcept { return calls_.size(); }

 private:
  struct Deadline {
    Clock::time_point when;
    std::uint64_t id;
    bool operator>(const Deadline& other) const noexcept { return when > other.when; }
  };
  // Drops heap entries of calls that are no longer waiting.
  void pruneHeapTop();

  std::string prefix_;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, PendingCall> calls_;
  // A min-heap of deadlines; entries of answered calls are removed lazily
  // (when they reach the top, or when they outnumber the live ones).
  std::vector<Deadline> deadlines_;
};

}  // namespace warren::client_detail
