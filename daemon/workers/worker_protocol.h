// SPDX-License-Identifier: Apache-2.0
// The meaning of the frames (worker_frame.h) warrend and a handler worker
// exchange: a request one way, its reply the other (docs/exec-handlers.md,
// protocol version 1).
#pragma once

#include "handler_reply.h"
#include "worker_frame.h"

#include <warren/plugin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren {

// The version warrend speaks, passed to workers as WARREN_PROTOCOL.
inline constexpr int kWorkerProtocolVersion = 1;

// Appends the request frame of `request`, numbered `id`, to `out`.
void encodeRequestFrame(std::uint64_t id, std::string_view queue, const warren_request& request,
                        std::string& out);

// Reads the reply to request `id` from `frame` into `reply`. Returns what is
// wrong when the frame is not a valid reply to that request (another id, no
// or an unknown status); an error code warrend does not know becomes
// `internal`, the message kept.
std::optional<std::string> decodeReplyFrame(const WorkerFrame& frame, std::uint64_t id,
                                            HandlerReply& reply);

// A request frame as a worker reads it: the strings it owns and a
// warren_request pointing into them (valid while this lives, not moved).
class DecodedRequest {
 public:
  // Throws std::runtime_error when `frame` is not a request.
  explicit DecodedRequest(WorkerFrame frame);
  DecodedRequest(const DecodedRequest&) = delete;
  DecodedRequest& operator=(const DecodedRequest&) = delete;

  const warren_request& request() const noexcept { return request_; }
  const std::string& id() const noexcept { return id_; }

 private:
  WorkerFrame frame_;
  std::string id_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<warren_header> header_views_;
  warren_request request_{};
};

// Appends the reply frame answering request `id` to `out`.
void encodeReplyFrame(std::string_view id, const HandlerReply& reply, std::string& out);

}  // namespace warren
