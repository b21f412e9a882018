// SPDX-License-Identifier: Apache-2.0
#include "worker_stderr.h"

#include "log_escape.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

namespace warren {
namespace {

// A longer line is logged in pieces of this size.
constexpr std::size_t kMaxLineBytes = 4096;

constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 7> kLevelPrefixes = {{
    {"[trace] ", spdlog::level::trace},
    {"[debug] ", spdlog::level::debug},
    {"[info] ", spdlog::level::info},
    {"[warning] ", spdlog::level::warn},
    {"[warn] ", spdlog::level::warn},
    {"[error] ", spdlog::level::err},
    {"[critical] ", spdlog::level::critical},
}};

}  // namespace

WorkerStderr::WorkerStderr(std::shared_ptr<spdlog::logger> logger)
    : logger_(std::move(logger)), pipe_(makePipe()), stop_(makePipe()) {
  const int flags = fcntl(pipe_.read.get(), F_GETFL);
  fcntl(pipe_.read.get(), F_SETFL, flags | O_NONBLOCK);
  thread_ = std::thread([this] { pump(); });
}

WorkerStderr::~WorkerStderr() {
  stop_.write.reset();  // POLLHUP on stop_.read
  thread_.join();
}

void WorkerStderr::logLine(std::string_view line) const {
  // "[error] text": at that level (what the plugin worker writes, and what
  // a program may); anything else at info.
  spdlog::level::level_enum level = spdlog::level::info;
  for (const auto& [prefix, prefixed] : kLevelPrefixes) {
    if (line.substr(0, prefix.size()) == prefix) {
      level = prefixed;
      line.remove_prefix(prefix.size());
      break;
    }
  }
  do {  // in pieces: a long line is cut, not lost
    logger_->log(level, "worker: {}", escapeForLog(line.substr(0, kMaxLineBytes), kMaxLineBytes));
    line.remove_prefix(std::min(line.size(), kMaxLineBytes));
  } while (!line.empty());
}

void WorkerStderr::pump() {
  std::string pending;
  std::array<char, 16384> buffer{};
  const auto logLines = [&](bool flush_partial) {
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = pending.find('\n', start);
      if (end == std::string::npos) break;
      logLine(std::string_view(pending).substr(start, end - start));
      start = end + 1;
    }
    pending.erase(0, start);
    // A line that never ends is logged as it comes, a piece at a time.
    if (pending.size() >= kMaxLineBytes || (flush_partial && !pending.empty())) {
      logLine(pending);
      pending.clear();
    }
  };
  for (;;) {
    std::array<pollfd, 2> fds{{{pipe_.read.get(), POLLIN, 0}, {stop_.read.get(), POLLIN, 0}}};
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    const bool stopping = fds[1].revents != 0;
    // Read what is there; at stop, everything written before it.
    for (;;) {
      const ssize_t got = read(pipe_.read.get(), buffer.data(), buffer.size());
      if (got <= 0) break;
      pending.append(buffer.data(), static_cast<std::size_t>(got));
      logLines(false);
    }
    if (stopping) break;
  }
  logLines(true);
}

}  // namespace warren
