// SPDX-License-Identifier: Apache-2.0
// Fuzzes DeliveryAssembler and textHeaders() with frames decoded from the
// input (frame_stream.h), checking what every completed message promises.
#include "frame_stream.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  warren::fuzz::feedFrames(data, size, [](warren::InboundMessage&& message) {
    // A kept body is exactly the declared size; a dropped one stays empty.
    if (message.body_too_large ? !message.body.empty() : message.body.size() != message.body_size) {
      __builtin_trap();
    }
    if (message.has_reply_to == message.reply_to.empty()) __builtin_trap();
  });
  return 0;
}
