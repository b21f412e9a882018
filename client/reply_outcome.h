// SPDX-License-Identifier: Apache-2.0
// How a reply message becomes a CallOutcome (docs/protocol.md, "Replies"):
// the x-warren-error-code header marks an error reply, whatever the body.
#pragma once

#include "delivery_assembler.h"

#include <warren/client.hpp>

namespace warren::client_detail {

CallOutcome outcomeOfReply(InboundMessage&& reply);

}  // namespace warren::client_detail
