#include "worker_frame.h"

#include <stdexcept>

namespace warren {
namespace {

void appendU32(std::uint32_t value, std::string& out) {
  out.push_back(static_cast<char>((value >> 24) & 0xff));
  out.push_back(static_cast<char>((value >> 16) & 0xff));
  out.push_back(static_cast<char>((value >> 8) & 0xff));
  out.push_back(static_cast<char>(value & 0xff));
}

std::uint32_t readU32(const char* bytes) {
  const auto* u = reinterpret_cast<const unsigned char*>(bytes);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
         std::uint32_t{u[3]};
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

bool fitsFieldValue(std::string_view text) noexcept {
  return text.find_first_of("\r\n") == std::string_view::npos;
}

void encodeFrame(const std::vector<std::pair<std::string, std::string>>& fields,
                 std::string_view body, std::string& out) {
  const std::size_t start = out.size();
  out.append(kFramePrefixBytes, '\0');
  for (const auto& [name, value] : fields) {
    if (!fitsFieldName(name) || !fitsFieldValue(value)) continue;
    out.append(name).append(": ").append(value).push_back('\n');
  }
  const std::size_t header_bytes = out.size() - start - kFramePrefixBytes;
  std::string prefix;
  appendU32(static_cast<std::uint32_t>(header_bytes), prefix);
  appendU32(static_cast<std::uint32_t>(body.size()), prefix);
  out.replace(start, kFramePrefixBytes, prefix);
  out.append(body);
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
