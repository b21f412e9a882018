#include "pending_calls.h"

#include <algorithm>
#include <charconv>
#include <functional>

namespace warren::client_detail {

std::string PendingCalls::add(Clock::time_point deadline, std::string queue, Done done) {
  const std::uint64_t id = ++next_id_;
  calls_.emplace(id, PendingCall{id, deadline, std::move(queue), std::move(done)});
  deadlines_.push_back({deadline, id});
  std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
  // Answered calls leave their heap entries behind; rebuild before they pile up.
  if (deadlines_.size() > 4 * calls_.size() + 1024) {
    std::erase_if(deadlines_, [this](const Deadline& d) { return calls_.count(d.id) == 0; });
    std::make_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
  }
  return prefix_ + std::to_string(id);
}

std::optional<PendingCall> PendingCalls::take(std::string_view correlation_id) {
  if (correlation_id.substr(0, prefix_.size()) != prefix_) return std::nullopt;
  const std::string_view digits = correlation_id.substr(prefix_.size());
  std::uint64_t id = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  const auto it = calls_.find(id);
  if (it == calls_.end()) return std::nullopt;
  PendingCall call = std::move(it->second);
  calls_.erase(it);
  return call;
}

void PendingCalls::pruneHeapTop() {
  while (!deadlines_.empty() && calls_.count(deadlines_.front().id) == 0) {
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
    deadlines_.pop_back();
  }
}

std::vector<PendingCall> PendingCalls::expire(Clock::time_point now) {
  std::vector<PendingCall> expired;
  for (pruneHeapTop(); !deadlines_.empty() && deadlines_.front().when <= now; pruneHeapTop()) {
    const std::uint64_t id = deadlines_.front().id;
    std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
    deadlines_.pop_back();
    const auto it = calls_.find(id);
    expired.push_back(std::move(it->second));
    calls_.erase(it);
  }
  return expired;
}

std::vector<PendingCall> PendingCalls::takeAll() {
  std::vector<PendingCall> all;
  all.reserve(calls_.size());
  for (auto& [id, call] : calls_) all.push_back(std::move(call));
  calls_.clear();
  deadlines_.clear();
  std::sort(all.begin(), all.end(),
            [](const PendingCall& a, const PendingCall& b) { return a.id < b.id; });
  return all;
}

std::optional<Clock::time_point> PendingCalls::nextDeadline() {
  pruneHeapTop();
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.front().when;
}

}  // namespace warren::client_detail
