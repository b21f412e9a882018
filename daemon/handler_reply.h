// What a handler produced for one request, owned by the host.
#pragma once

#include <warren/plugin.h>

#include <optional>
#include <string>

namespace warren {

struct HandlerError {
  warren_error_code code = WARREN_ERROR_INTERNAL;
  std::string message;
};

struct HandlerReply {
  std::string body;
  std::string content_type;
  std::optional<HandlerError> error;  // set: an error reply, body unused
};

}  // namespace warren
