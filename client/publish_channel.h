// SPDX-License-Identifier: Apache-2.0
// The channel a Client publishes its requests on, and the publisher-confirm
// tags of those requests. Used by the client's I/O thread only.
//
// The broker numbers a channel's publishes from 1 and confirms them with
// basic.ack / basic.nack on that channel. Tags here are unique for the
// client's life (a channel's first publish gets the tag after the previous
// channel's last), so that calls from a replaced channel and its successor
// never mix.
//
// A channel is replaced after the broker refused a request on it: RabbitMQ
// 3.10 (rabbit_fifo_client) keeps refusing every publish of a channel that
// first published to a quorum queue while the node it asked was down, even
// after a new leader took over; a new channel asks the current leader. The
// old channel is closed without waiting: its confirms still count until its
// channel.close-ok arrives.
#pragma once

#include <amqp.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace warren::client_detail {

class PublishChannel {
 public:
  using Clock = std::chrono::steady_clock;
  struct Tags {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
  };

  // Channels first..last take turns as the publishing channel.
  PublishChannel(amqp_channel_t first, amqp_channel_t last, std::chrono::milliseconds interval)
      : first_(first), last_(last), renewal_interval_(interval) {}

  // A new connection publishes on `channel`.
  void reset(amqp_channel_t channel);
  amqp_channel_t channel() const noexcept { return current_.channel; }
  // The tag of the next publish on the current channel.
  std::uint64_t nextTag() noexcept { return current_.base + ++current_.count; }

  // The tags a basic.ack / basic.nack on `channel` covers; nullopt when the
  // channel publishes no requests of ours.
  std::optional<Tags> confirmed(amqp_channel_t channel, std::uint64_t delivery_tag,
                                bool multiple) const noexcept;
  // channel.close-ok (or close) on a replaced channel: the tags it will now
  // never confirm; nullopt when `channel` was not closing.
  std::optional<Tags> closed(amqp_channel_t channel);

  // The broker refused a request on `channel`: replace it (when current).
  void refused(amqp_channel_t channel) noexcept;
  // A replacement is due: refused, and the last one is at least the
  // renewal interval ago (a full queue refuses for as long as it is full).
  bool renewalDue(Clock::time_point now) const noexcept;
  // Moves the current channel to the closing ones; returns the channel to
  // open and publish on next, nullopt when every channel is still closing.
  std::optional<amqp_channel_t> replace(Clock::time_point now);

 private:
  struct Channel {
    amqp_channel_t channel = 0;
    std::uint64_t base = 0;   // tags of this channel: base + 1 ... base + count
    std::uint64_t count = 0;  // publishes so far
  };
  const Channel* find(amqp_channel_t channel) const noexcept;
  std::vector<Channel>::const_iterator closing(amqp_channel_t channel) const noexcept;

  amqp_channel_t first_;
  amqp_channel_t last_;
  std::chrono::milliseconds renewal_interval_;
  Channel current_;
  std::vector<Channel> closing_;
  bool refused_ = false;
  std::optional<Clock::time_point> last_renewal_;
};

}  // namespace warren::client_detail
