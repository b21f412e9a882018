// SPDX-License-Identifier: Apache-2.0
// Keeps a fixed number of calls in flight against a queue that sums "a,b",
// checks every answer and accounts for every call, Jepsen-style: sent,
// answered (correctly), wrong, duplicate (a call completed twice), and failed
// by status. What the fault tests assert on.
#pragma once

#include <warren/client.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace warren::test {

struct LoadTally {
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;  // with the right sum
  std::uint64_t wrong = 0;     // answered with anything else
  std::uint64_t duplicate = 0;
  std::map<CallStatus, std::uint64_t> failed;  // by status, never kOk
  std::uint64_t unfinished = 0;                // sent, never completed
  std::vector<std::string> failures;           // the first few messages

  std::uint64_t failedTotal() const;
  std::string describe() const;
};

class SteadyLoad {
 public:
  // Starts `in_flight` calls at once; each completion sends the next.
  SteadyLoad(Client& client, std::string queue, int in_flight, std::chrono::milliseconds timeout);
  // stop()
  ~SteadyLoad();
  SteadyLoad(const SteadyLoad&) = delete;
  SteadyLoad& operator=(const SteadyLoad&) = delete;

  // Waits until at least `count` calls were answered; false at the deadline.
  bool waitAnswered(std::uint64_t count, std::chrono::milliseconds timeout);
  // Stops sending and waits for the calls in flight to complete (each is
  // bounded by its timeout). Returns the final tally.
  LoadTally stop();
  LoadTally tally() const;

 private:
  void send();  // with mutex_ held
  void done(std::uint64_t sequence, CallOutcome&& outcome);

  Client& client_;
  const std::string queue_;
  const std::chrono::milliseconds timeout_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, int> completions_;  // by sequence: how many times each completed
  LoadTally tally_;
};

}  // namespace warren::test
