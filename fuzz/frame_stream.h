// SPDX-License-Identifier: Apache-2.0
// Turns fuzz input into the frames an AMQP connection hands the
// DeliveryAssembler, decoded by rabbitmq-c itself from the fuzzed bytes.
//
// The input is a list of records, each
//   [op: 1 byte] [channel: 1 byte] [length: 2 bytes, little endian] [payload]
// op % 5: 0 basic.deliver, 1 basic.return, 2 content header, 3 content body,
// 4 some other frame (heartbeat). A method payload is the method's encoded
// arguments; a header payload is 8 bytes of body size (little endian)
// (only the first two count: up to 64 KiB, so that the body frames that
// complete it fit an input) followed by the encoded basic properties. fuzz/make_corpus.py writes
// seeds in this format.
#pragma once

#include "delivery_assembler.h"

#include <amqp.h>
#include <amqp_framing.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>

namespace warren::fuzz {

// A rabbitmq-c decoding pool for one input.
class Pool {
 public:
  Pool() { init_amqp_pool(&pool_, 4096); }
  ~Pool() { empty_amqp_pool(&pool_); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  amqp_pool_t* get() { return &pool_; }

 private:
  amqp_pool_t pool_;
};

// Feeds every record of `data` to an assembler and calls `complete` with each
// message it completes. Framing errors (std::runtime_error) are the
// assembler's documented answer to a broken stream: the connection is
// dropped, so the assembler is reset and the stream goes on.
inline void feedFrames(const std::uint8_t* data, std::size_t size,
                       const std::function<void(InboundMessage&&)>& complete) {
  Pool pool;
  // The limit comes from the input too, so that both paths (kept, dropped) run.
  std::size_t limit = size > 0 ? data[0] * 16u : 0;
  DeliveryAssembler assembler(limit);
  std::size_t at = size > 0 ? 1 : 0;
  while (size - at >= 4) {
    const std::uint8_t op = data[at] % 5;
    const amqp_channel_t channel = data[at + 1];
    std::size_t length = data[at + 2] | (std::size_t{data[at + 3]} << 8);
    at += 4;
    if (length > size - at) length = size - at;
    amqp_bytes_t payload{length, const_cast<std::uint8_t*>(data + at)};
    at += length;

    amqp_frame_t frame{};
    frame.channel = channel;
    try {
      if (op == 0 || op == 1) {
        const amqp_method_number_t id =
            op == 0 ? AMQP_BASIC_DELIVER_METHOD : AMQP_BASIC_RETURN_METHOD;
        void* decoded = nullptr;
        if (amqp_decode_method(id, pool.get(), payload, &decoded) != AMQP_STATUS_OK) continue;
        frame.frame_type = AMQP_FRAME_METHOD;
        frame.payload.method.id = id;
        frame.payload.method.decoded = decoded;
        if (!assembler.beginIfContentMethod(frame)) __builtin_trap();  // it is a content method
        continue;
      }
      std::optional<InboundMessage> message;
      if (op == 2) {
        if (payload.len < 8) continue;
        const auto* bytes = static_cast<const std::uint8_t*>(payload.bytes);
        std::uint64_t body_size = 0;
        for (int i = 0; i < 2; ++i) body_size |= std::uint64_t{bytes[i]} << (8 * i);
        amqp_bytes_t encoded{payload.len - 8, const_cast<std::uint8_t*>(bytes + 8)};
        void* decoded = nullptr;
        if (amqp_decode_properties(AMQP_BASIC_CLASS, pool.get(), encoded, &decoded) !=
            AMQP_STATUS_OK) {
          continue;
        }
        frame.frame_type = AMQP_FRAME_HEADER;
        frame.payload.properties.class_id = AMQP_BASIC_CLASS;
        frame.payload.properties.body_size = body_size;
        frame.payload.properties.decoded = decoded;
        message = assembler.feed(frame);
      } else if (op == 3) {
        frame.frame_type = AMQP_FRAME_BODY;
        frame.payload.body_fragment = payload;
        message = assembler.feed(frame);
      } else {
        frame.frame_type = AMQP_FRAME_HEARTBEAT;
        message = assembler.feed(frame);
      }
      if (message) complete(std::move(*message));
    } catch (const std::runtime_error&) {
      assembler.reset();
    }
  }
}

}  // namespace warren::fuzz
