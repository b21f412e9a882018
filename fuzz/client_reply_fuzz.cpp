// SPDX-License-Identifier: Apache-2.0
// Fuzzes how the client turns a reply into a CallOutcome: the reply is
// assembled from frames decoded from the input (frame_stream.h), then goes
// through client_detail::outcomeOfReply(), the pure step after assembly
// (the rest of Client::Impl::handleMessage needs a pending call and a
// connection).
#include "frame_stream.h"
#include "reply_outcome.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  warren::fuzz::feedFrames(data, size, [](warren::InboundMessage&& message) {
    bool error_reply = false;
    std::string error_code;
    for (const auto& [key, value] : message.headers) {
      if (key == "x-warren-error-code") {
        error_reply = true;
        error_code = value;  // the last one wins
      }
    }
    const std::string body = message.body;
    const std::string content_type = message.content_type;
    const warren::CallOutcome outcome = warren::client_detail::outcomeOfReply(std::move(message));
    if (error_reply) {
      // docs/protocol.md: the header marks an error reply, whatever the body.
      if (outcome.status != warren::CallStatus::kRemoteError) __builtin_trap();
      if (outcome.error_code != error_code) __builtin_trap();
    } else {
      if (outcome.status != warren::CallStatus::kOk) __builtin_trap();
      if (outcome.reply.body != body || outcome.reply.content_type != content_type) {
        __builtin_trap();
      }
      if (!outcome.message.empty()) __builtin_trap();
    }
  });
  return 0;
}
