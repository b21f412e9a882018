// SPDX-License-Identifier: Apache-2.0
#include "steady_load.h"

#include <string_view>
#include <utility>

namespace warren::test {
namespace {

constexpr std::uint64_t kAddend = 1000000;
constexpr std::size_t kFailuresKept = 5;

}  // namespace

std::uint64_t LoadTally::failedTotal() const {
  std::uint64_t total = 0;
  for (const auto& [status, count] : failed) total += count;
  return total;
}

std::string LoadTally::describe() const {
  std::string text = "sent " + std::to_string(sent) + ", answered " + std::to_string(answered) +
                     ", wrong " + std::to_string(wrong) + ", duplicate " +
                     std::to_string(duplicate) + ", unfinished " + std::to_string(unfinished) +
                     ", failed " + std::to_string(failedTotal());
  for (const auto& [status, count] : failed) {
    text += " (" + std::string(callStatusName(status)) + " " + std::to_string(count) + ")";
  }
  for (const std::string& failure : failures) text += "\n  " + failure;
  return text;
}

SteadyLoad::SteadyLoad(Client& client, std::string queue, int in_flight,
                       std::chrono::milliseconds timeout)
    : client_(client), queue_(std::move(queue)), timeout_(timeout) {
  std::lock_guard lock(mutex_);
  for (int i = 0; i < in_flight; ++i) send();
}

SteadyLoad::~SteadyLoad() { stop(); }

void SteadyLoad::send() {
  const std::uint64_t sequence = next_++;
  ++tally_.sent;
  completions_[sequence] = 0;
  CallOptions options;
  options.timeout = timeout_;
  client_.callAsync(
      queue_, std::to_string(sequence) + "," + std::to_string(kAddend), options,
      [this, sequence](CallOutcome&& outcome) { done(sequence, std::move(outcome)); });
}

void SteadyLoad::done(std::uint64_t sequence, CallOutcome&& outcome) {
  std::lock_guard lock(mutex_);
  if (++completions_[sequence] > 1) {
    ++tally_.duplicate;
  } else if (outcome.ok()) {
    ++(outcome.reply.body == std::to_string(sequence + kAddend) ? tally_.answered : tally_.wrong);
  } else {
    ++tally_.failed[outcome.status];
    if (tally_.failures.size() < kFailuresKept) {
      tally_.failures.push_back(std::string(callStatusName(outcome.status)) + ": " +
                                outcome.message);
    }
  }
  if (!stopping_) send();
  changed_.notify_all();
}

bool SteadyLoad::waitAnswered(std::uint64_t count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return tally_.answered >= count; });
}

LoadTally SteadyLoad::stop() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  const auto all_done = [&] {
    for (const auto& [sequence, count] : completions_) {
      if (count == 0) return false;
    }
    return true;
  };
  // Every call ends by its own timeout; the margin is the client's timer.
  changed_.wait_for(lock, timeout_ + std::chrono::seconds(5), all_done);
  LoadTally final_tally = tally_;
  for (const auto& [sequence, count] : completions_) {
    if (count == 0) ++final_tally.unfinished;
  }
  return final_tally;
}

LoadTally SteadyLoad::tally() const {
  std::lock_guard lock(mutex_);
  return tally_;
}

}  // namespace warren::test
