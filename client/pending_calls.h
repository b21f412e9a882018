// SPDX-License-Identifier: Apache-2.0
// The calls a Client has in flight: correlation id -> who waits, and when
// each one times out. Used by the client's I/O thread only (not thread-safe).
#pragma once

#include <warren/client.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace warren::client_detail {

using Clock = std::chrono::steady_clock;
using Done = std::function<void(CallOutcome&&)>;

struct PendingCall {
  std::uint64_t id = 0;  // set by PendingCalls::add
  Clock::time_point deadline;
  std::string queue;
  Done done;
  std::uint64_t publish_tag = 0;
  // The broker confirmed taking the request (publisher confirms).
  bool confirmed = false;
  // The request, kept until the broker confirms it: a refused request was
  // not queued and is published again.
  std::string body;
  std::string content_type;
  // Times the broker refused the request so far.
  int refusals = 0;
};

class PendingCalls {
 public:
  // Correlation ids are `prefix` + a decimal sequence number; the prefix
  // should be unique per client so that no other caller's reply matches.
  explicit PendingCalls(std::string prefix) : prefix_(std::move(prefix)) {}

  // Registers a call whose request is published with `call.publish_tag`, a
  // publisher-confirm sequence number unique for the client's life;
  // returns its correlation id.
  struct Added {
    std::string correlation_id;
    const PendingCall& call;  // valid until the call is taken
  };
  Added add(PendingCall call);
  std::string add(Clock::time_point deadline, std::string queue, Done done,
                  std::uint64_t publish_tag);
  // basic.ack: the broker took the requests with the publish tags
  // first..last; they no longer keep their bodies.
  void confirm(std::uint64_t first, std::uint64_t last);
  // basic.nack: the broker did not take those requests; their calls,
  // removed (a call already answered is not among them).
  std::vector<PendingCall> refuse(std::uint64_t first, std::uint64_t last);
  // The channel that would confirm tags first..last is gone: those calls
  // stay unconfirmed, waiting for their replies.
  void forgetConfirms(std::uint64_t first, std::uint64_t last);
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
  // Waiting calls whose request the broker has not confirmed yet.
  std::size_t unconfirmed() const noexcept { return unconfirmed_.size(); }

 private:
  struct Deadline {
    Clock::time_point when;
    std::uint64_t id;
    bool operator>(const Deadline& other) const noexcept { return when > other.when; }
  };
  // Drops heap entries of calls that are no longer waiting.
  void pruneHeapTop();
  // Removes the publish tags first..last; returns their call ids.
  std::vector<std::uint64_t> takeTags(std::uint64_t first, std::uint64_t last);
  // Removes a call that stops waiting; returns it.
  PendingCall remove(std::unordered_map<std::uint64_t, PendingCall>::iterator it);

  std::string prefix_;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, PendingCall> calls_;
  // A min-heap of deadlines; entries of answered calls are removed lazily
  // (when they reach the top, or when they outnumber the live ones).
  std::vector<Deadline> deadlines_;
  // Publish tag -> id of a waiting call whose request the broker has
  // neither confirmed nor refused yet.
  std::map<std::uint64_t, std::uint64_t> unconfirmed_;
};

}  // namespace warren::client_detail
