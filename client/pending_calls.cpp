// SPDX-License-Identifier: Apache-2.0
#include "pending_calls.h"

#include <algorithm>
#include <charconv>
#include <functional>

namespace warren::client_detail {

std::string PendingCalls::add(Clock::time_point deadline, std::string queue, Done done,
                              std::uint64_t publish_tag) {
  PendingCall call;
  call.deadline = deadline;
  call.queue = std::move(queue);
  call.done = std::move(done);
  call.publish_tag = publish_tag;
  return add(std::move(call)).correlation_id;
}

PendingCalls::Added PendingCalls::add(PendingCall call) {
  const std::uint64_t id = ++next_id_;
  const Clock::time_point deadline = call.deadline;
  call.id = id;
  call.confirmed = false;
  unconfirmed_.emplace(call.publish_tag, id);
  const PendingCall& added = calls_.emplace(id, std::move(call)).first->second;
  deadlines_.push_back({deadline, id});
  std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
  // Answered calls leave their heap entries behind; rebuild before they pile up.
  if (deadlines_.size() > 4 * calls_.size() + 1024) {
    std::erase_if(deadlines_, [this](const Deadline& d) { return calls_.count(d.id) == 0; });
    std::make_heap(deadlines_.begin(), deadlines_.end(), std::greater<>());
  }
  return Added{prefix_ + std::to_string(id), added};
}

std::optional<PendingCall> PendingCalls::take(std::string_view correlation_id) {
  if (correlation_id.substr(0, prefix_.size()) != prefix_) return std::nullopt;
  const std::string_view digits = correlation_id.substr(prefix_.size());
  std::uint64_t id = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  const auto it = calls_.find(id);
  if (it == calls_.end()) return std::nullopt;
  return remove(it);
}

PendingCall PendingCalls::remove(std::unordered_map<std::uint64_t, PendingCall>::iterator it) {
  PendingCall call = std::move(it->second);
  calls_.erase(it);
  if (!call.confirmed) unconfirmed_.erase(call.publish_tag);
  return call;
}

std::vector<std::uint64_t> PendingCalls::takeTags(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> ids;
  if (first > last) return ids;
  const auto begin = unconfirmed_.lower_bound(first);
  const auto end = unconfirmed_.upper_bound(last);
  for (auto it = begin; it != end; ++it) ids.push_back(it->second);
  unconfirmed_.erase(begin, end);
  return ids;
}

void PendingCalls::confirm(std::uint64_t first, std::uint64_t last) {
  for (const std::uint64_t id : takeTags(first, last)) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    it->second.confirmed = true;
    std::string().swap(it->second.body);  // queued: never sent again
  }
}

void PendingCalls::forgetConfirms(std::uint64_t first, std::uint64_t last) {
  takeTags(first, last);
}

std::vector<PendingCall> PendingCalls::refuse(std::uint64_t first, std::uint64_t last) {
  std::vector<PendingCall> refused;
  for (const std::uint64_t id : takeTags(first, last)) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    refused.push_back(remove(it));
  }
  return refused;
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
    expired.push_back(remove(calls_.find(id)));
  }
  return expired;
}

std::vector<PendingCall> PendingCalls::takeAll() {
  std::vector<PendingCall> all;
  all.reserve(calls_.size());
  for (auto& [id, call] : calls_) all.push_back(std::move(call));
  calls_.clear();
  deadlines_.clear();
  unconfirmed_.clear();
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
