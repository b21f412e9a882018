// SPDX-License-Identifier: Apache-2.0
#include "worker_frame.h"

#include <array>
#include <charconv>
#include <stdexcept>

namespace warren {
namespace {

void writeU32(std::uint32_t value, char* bytes) {
  bytes[0] = static_cast<char>((value >> 24) & 0xff);
  bytes[1] = static_cast<char>((value >> 16) & 0xff);
  bytes[2] = static_cast<char>((value >> 8) & 0xff);
  bytes[3] = static_cast<char>(value & 0xff);
}

bool fitsFieldName(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || (c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> parseFields(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> fields;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    if (end == std::string_view::npos) {
      throw std::runtime_error("the frame header does not end with a newline");
    }
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    const std::size_t colon = line.find(": ");
    if (colon == std::string_view::npos || !fitsFieldName(line.substr(0, colon))) {
      throw std::runtime_error("a frame header line is not 'name: value'");
    }
    const std::string_view value = line.substr(colon + 2);
    if (value.find('\r') != std::string_view::npos) {
      throw std::runtime_error("a frame header value holds a carriage return");
    }
    fields.emplace_back(line.substr(0, colon), value);
  }
  return fields;
}

}  // namespace

std::optional<std::string_view> WorkerFrame::field(std::string_view name) const {
  for (const auto& [key, value] : fields) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

void appendU32(std::uint32_t value, std::string& out) {
  std::array<char, 4> bytes{};
  writeU32(value, bytes.data());
  out.append(bytes.data(), bytes.size());
}

std::uint32_t readU32(const char* bytes) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(bytes);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
         std::uint32_t{u[3]};
}

bool fitsFieldValue(std::string_view text) noexcept {
  return text.find_first_of("\r\n") == std::string_view::npos;
}

FrameEncoder::FrameEncoder(std::string& out) : out_(out), start_(out.size()) {
  out_.append(kFramePrefixBytes, '\0');
}

void FrameEncoder::field(std::string_view prefix, std::string_view name, std::string_view value) {
  const std::size_t at = out_.size();
  out_.append(prefix).append(name);
  if (!fitsFieldName(std::string_view(out_).substr(at)) || !fitsFieldValue(value)) {
    out_.resize(at);
    return;
  }
  out_.append(": ").append(value).push_back('\n');
}

void FrameEncoder::field(std::string_view name, std::int64_t value) {
  std::array<char, 24> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  field(name, std::string_view(digits.data(), static_cast<std::size_t>(end - digits.data())));
}

void FrameEncoder::finish(std::string_view body) {
  const std::size_t header_bytes = out_.size() - start_ - kFramePrefixBytes;
  std::array<char, kFramePrefixBytes> prefix{};
  writeU32(static_cast<std::uint32_t>(header_bytes), prefix.data());
  writeU32(static_cast<std::uint32_t>(body.size()), prefix.data() + 4);
  out_.replace(start_, kFramePrefixBytes, prefix.data(), prefix.size());
  out_.append(body);
}

void encodeFrame(const std::vector<std::pair<std::string, std::string>>& fields,
                 std::string_view body, std::string& out) {
  FrameEncoder frame(out);
  for (const auto& [name, value] : fields) frame.field(name, value);
  frame.finish(body);
}

std::size_t frameHeaderBytes(std::string_view bytes, std::size_t at) {
  return readU32(bytes.data() + at);
}

std::optional<WorkerFrame> FrameReader::next() {
  if (buffer_.size() < kFramePrefixBytes) return std::nullopt;
  const std::uint32_t header_bytes = readU32(buffer_.data());
  const std::uint32_t body_bytes = readU32(buffer_.data() + 4);
  if (header_bytes > kMaxFrameHeaderBytes) {
    throw std::runtime_error("a frame header of " + std::to_string(header_bytes) +
                             " bytes (at most " + std::to_string(kMaxFrameHeaderBytes) + ")");
  }
  if (body_bytes > max_body_bytes_) {
    throw std::runtime_error("a frame body of " + std::to_string(body_bytes) + " bytes (at most " +
                             std::to_string(max_body_bytes_) + ")");
  }
  const std::size_t total = kFramePrefixBytes + header_bytes + body_bytes;
  if (buffer_.size() < total) return std::nullopt;
  WorkerFrame frame;
  frame.fields = parseFields(std::string_view(buffer_).substr(kFramePrefixBytes, header_bytes));
  frame.body.assign(buffer_, kFramePrefixBytes + header_bytes, body_bytes);
  buffer_.erase(0, total);
  return frame;
}

}  // namespace warren
