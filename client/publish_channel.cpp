// SPDX-License-Identifier: Apache-2.0
#include "publish_channel.h"

#include <algorithm>

namespace warren::client_detail {

void PublishChannel::reset(amqp_channel_t channel) {
  const std::uint64_t base = current_.base + current_.count;
  current_ = Channel{channel, base, 0};
  closing_.clear();
  refused_ = false;
}

std::vector<PublishChannel::Channel>::const_iterator PublishChannel::closing(
    amqp_channel_t channel) const noexcept {
  return std::find_if(closing_.begin(), closing_.end(),
                      [channel](const Channel& c) { return c.channel == channel; });
}

const PublishChannel::Channel* PublishChannel::find(amqp_channel_t channel) const noexcept {
  if (channel == current_.channel) return &current_;
  const auto it = closing(channel);
  return it == closing_.end() ? nullptr : &*it;
}

std::optional<PublishChannel::Tags> PublishChannel::confirmed(amqp_channel_t channel,
                                                              std::uint64_t delivery_tag,
                                                              bool multiple) const noexcept {
  const Channel* found = find(channel);
  if (found == nullptr || delivery_tag == 0 || delivery_tag > found->count) return std::nullopt;
  const std::uint64_t last = found->base + delivery_tag;
  return Tags{multiple ? found->base + 1 : last, last};
}

std::optional<PublishChannel::Tags> PublishChannel::closed(amqp_channel_t channel) {
  const auto it = closing(channel);
  if (it == closing_.end()) return std::nullopt;
  const Tags tags{it->base + 1, it->base + it->count};
  closing_.erase(it);
  return tags;
}

void PublishChannel::refused(amqp_channel_t channel) noexcept {
  if (channel == current_.channel) refused_ = true;
}

bool PublishChannel::renewalDue(Clock::time_point now) const noexcept {
  return refused_ && (!last_renewal_ || now - *last_renewal_ >= renewal_interval_);
}

std::optional<amqp_channel_t> PublishChannel::replace(Clock::time_point now) {
  refused_ = false;
  last_renewal_ = now;
  const int channels = last_ - first_ + 1;
  for (int step = 1; step < channels; ++step) {
    const auto next =
        static_cast<amqp_channel_t>(first_ + (current_.channel - first_ + step) % channels);
    if (find(next) != nullptr) continue;  // still closing
    closing_.push_back(current_);
    current_ = Channel{next, current_.base + current_.count, 0};
    return next;
  }
  return std::nullopt;
}

}  // namespace warren::client_detail
