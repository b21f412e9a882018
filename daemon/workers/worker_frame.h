// SPDX-License-Identifier: Apache-2.0
// The frames warrend and a handler worker exchange over the worker's stdin
// and stdout (docs/exec-handlers.md): an 8-byte prefix (header length, body
// length; unsigned 32-bit big-endian), the header text ("name: value\n"
// lines) and the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren {

inline constexpr std::size_t kFramePrefixBytes = 8;
inline constexpr std::size_t kMaxFrameHeaderBytes = 64 * 1024;

struct WorkerFrame {
  std::vector<std::pair<std::string, std::string>> fields;  // in the order written
  std::string body;

  // The value of the first field named `name`, if any.
  std::optional<std::string_view> field(std::string_view name) const;
};

// A frame's lengths, and the options frame's strings (plugin_worker.h):
// unsigned 32-bit big-endian.
void appendU32(std::uint32_t value, std::string& out);
// The four bytes at `bytes`.
std::uint32_t readU32(const char* bytes) noexcept;

// True when `text` can be a field value: no CR or LF.
bool fitsFieldValue(std::string_view text) noexcept;

// Appends one frame to a string in place, field by field, so that encoding
// costs no allocation beyond the string's growth. Fields whose name or value
// does not fit (fitsFieldValue) are left out.
class FrameEncoder {
 public:
  // Starts the frame at the end of `out`.
  explicit FrameEncoder(std::string& out);
  // A field named `prefix` followed by `name`.
  void field(std::string_view prefix, std::string_view name, std::string_view value);
  void field(std::string_view name, std::string_view value) { field({}, name, value); }
  void field(std::string_view name, std::int64_t value);
  // Appends the body and fills in the lengths; the frame is complete.
  void finish(std::string_view body);

 private:
  std::string& out_;
  std::size_t start_;
};

// Appends the encoded frame to `out` (FrameEncoder).
void encodeFrame(const std::vector<std::pair<std::string, std::string>>& fields,
                 std::string_view body, std::string& out);

// The header length of the encoded frame starting at `at` in `bytes`.
std::size_t frameHeaderBytes(std::string_view bytes, std::size_t at);

// Reassembles frames from the bytes of a stream, as they arrive.
class FrameReader {
 public:
  // `max_body_bytes`: a larger announced body is a protocol error.
  explicit FrameReader(std::size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}

  // Takes the bytes read from the stream.
  void feed(std::string_view bytes) { buffer_.append(bytes); }

  // The next complete frame, std::nullopt while more bytes are needed.
  // Throws std::runtime_error, saying what was wrong, on a malformed frame;
  // the stream is beyond repair then.
  std::optional<WorkerFrame> next();

  // Bytes fed and not yet returned as frames.
  std::size_t buffered() const noexcept { return buffer_.size(); }

 private:
  std::size_t max_body_bytes_;
  std::string buffer_;
};

}  // namespace warren
