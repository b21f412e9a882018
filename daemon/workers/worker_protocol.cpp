// SPDX-License-Identifier: Apache-2.0
#include "worker_protocol.h"

#include "metrics_outcome.h"

#include <charconv>
#include <stdexcept>

namespace warren {
namespace {

constexpr std::string_view kHeaderPrefix = "header.";

std::string_view viewOf(warren_str text) noexcept {
  return text.data != nullptr ? std::string_view(text.data, text.size) : std::string_view();
}

template <typename Integer>
std::optional<Integer> parseInteger(std::string_view text) {
  Integer value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The code a worker may answer with: every code warrend knows but its own
// handler_crashed.
std::optional<warren_error_code> workerErrorCode(std::string_view name) noexcept {
  for (const ErrorCodeInfo& info : kErrorCodes) {
    if (info.name == name && info.code != WARREN_ERROR_HANDLER_CRASHED) return info.code;
  }
  return std::nullopt;
}

}  // namespace

void encodeRequestFrame(std::uint64_t id, std::string_view queue, const warren_request& request,
                        std::string& out) {
  FrameEncoder frame(out);
  frame.field("id", static_cast<std::int64_t>(id));
  frame.field("queue", queue);
  if (request.correlation_id.size > 0)
    frame.field("correlation-id", viewOf(request.correlation_id));
  if (request.content_type.size > 0) frame.field("content-type", viewOf(request.content_type));
  frame.field("deadline-ms", request.deadline_ms);
  frame.field("delivery-count", static_cast<std::int64_t>(request.delivery_count));
  for (std::size_t i = 0; i < request.header_count; ++i) {
    const warren_header& header = request.headers[i];
    frame.field(kHeaderPrefix, viewOf(header.key), viewOf(header.value));
  }
  frame.finish(viewOf(request.body));
}

std::optional<std::string> decodeReplyFrame(const WorkerFrame& frame, std::uint64_t id,
                                            HandlerReply& reply) {
  const auto reply_id = frame.field("id");
  if (!reply_id) return "a reply without an `id` field";
  if (parseInteger<std::uint64_t>(*reply_id) != id) {
    return "a reply with id '" + std::string(*reply_id) + "' to request " + std::to_string(id);
  }
  const auto status = frame.field("status");
  if (status == "ok") {
    reply.body = frame.body;
    reply.content_type = frame.field("content-type").value_or(std::string_view());
    reply.error.reset();
    return std::nullopt;
  }
  if (status == "error") {
    const std::string_view code = frame.field("error").value_or(std::string_view());
    std::string message(frame.field("message").value_or(std::string_view()));
    reply.body.clear();
    reply.content_type.clear();
    if (const auto known = workerErrorCode(code)) {
      reply.error = HandlerError{*known, std::move(message)};
    } else {
      reply.error =
          HandlerError{WARREN_ERROR_INTERNAL, "error code '" + std::string(code) + "': " + message};
    }
    return std::nullopt;
  }
  if (!status) return "a reply without a `status` field";
  return "a reply with status '" + std::string(*status) + "' (ok or error)";
}

DecodedRequest::DecodedRequest(WorkerFrame frame) : frame_(std::move(frame)) {
  const auto id = frame_.field("id");
  if (!id) throw std::runtime_error("a request frame without an `id` field");
  id_ = *id;
  const auto deadline = frame_.field("deadline-ms");
  const auto deadline_ms = deadline ? parseInteger<std::int64_t>(*deadline) : std::nullopt;
  if (!deadline_ms) throw std::runtime_error("a request frame without a valid `deadline-ms`");
  const auto delivery = frame_.field("delivery-count");
  const std::uint32_t delivery_count =
      delivery ? parseInteger<std::uint32_t>(*delivery).value_or(0) : 0;
  for (const auto& [name, value] : frame_.fields) {
    if (name.size() > kHeaderPrefix.size() &&
        name.compare(0, kHeaderPrefix.size(), kHeaderPrefix) == 0) {
      headers_.emplace_back(name.substr(kHeaderPrefix.size()), value);
    }
  }
  header_views_.reserve(headers_.size());
  for (const auto& [key, value] : headers_) {
    header_views_.push_back({{key.data(), key.size()}, {value.data(), value.size()}});
  }
  const auto view = [](std::optional<std::string_view> text) {
    const std::string_view v = text.value_or(std::string_view());
    return warren_str{v.data(), v.size()};
  };
  request_.struct_size = sizeof(warren_request);
  request_.body = {frame_.body.data(), frame_.body.size()};
  request_.content_type = view(frame_.field("content-type"));
  request_.headers = header_views_.empty() ? nullptr : header_views_.data();
  request_.header_count = header_views_.size();
  request_.redelivered = delivery_count > 0 ? 1 : 0;
  request_.correlation_id = view(frame_.field("correlation-id"));
  request_.deadline_ms = *deadline_ms;
  request_.delivery_count = delivery_count;
}

void encodeReplyFrame(std::string_view id, const HandlerReply& reply, std::string& out) {
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("id", id);
  if (reply.error) {
    fields.emplace_back("status", "error");
    fields.emplace_back("error", errorCodeInfo(reply.error->code).name);
    // One line: a message holding a line break would not fit a field.
    std::string message = reply.error->message;
    for (char& c : message) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    fields.emplace_back("message", std::move(message));
    encodeFrame(fields, {}, out);
    return;
  }
  fields.emplace_back("status", "ok");
  if (!reply.content_type.empty()) fields.emplace_back("content-type", reply.content_type);
  encodeFrame(fields, reply.body, out);
}

}  // namespace warren
