// SPDX-License-Identifier: Apache-2.0
// Request fields in log lines. A correlation_id or reply_to is whatever the
// caller sent: written raw, a newline in one forges a log line of its own.
#pragma once

#include <string>
#include <string_view>

namespace warren {

// `text` with backslash, control bytes (newline, CR, tab, ESC, DEL, ...) and
// no other byte escaped: "\n", "\r", "\t", "\\", else "\xHH". Bytes >= 0x80
// are kept, so UTF-8 stays readable. Cut after `max_bytes` of input, marked
// with "...".
std::string escapeForLog(std::string_view text, std::size_t max_bytes = 256);

}  // namespace warren
