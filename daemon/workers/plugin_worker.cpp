// SPDX-License-Identifier: Apache-2.0
#include "plugin_worker.h"

#include "plugin_instance.h"
#include "plugin_library.h"
#include "worker_frame.h"
#include "worker_protocol.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>

namespace warren {
namespace {

// Exit statuses of the worker (sysexits.h).
constexpr int kUsage = 64;
constexpr int kDataError = 65;
constexpr int kSoftware = 70;

// A request body the worker accepts: warrend enforces the queue's own limit.
constexpr std::size_t kMaxRequestBytes = std::size_t{1} << 30;

// Moves the frame streams off fds 0 and 1, so that what a plugin prints on
// stdout goes to stderr (warrend's log) instead of corrupting a reply.
struct FrameStreams {
  int in = -1;
  int out = -1;
};

FrameStreams takeFrameStreams() {
  FrameStreams streams{fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3),
                       fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)};
  if (streams.in < 0 || streams.out < 0) throw std::runtime_error("cannot duplicate stdin/stdout");
  const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    throw std::runtime_error("cannot redirect stdin/stdout");
  }
  close(null);
  return streams;
}

// The options of an options frame (pluginOptionsFrame()).
std::vector<std::pair<std::string, std::string>> readOptions(const WorkerFrame& frame) {
  if (frame.field("init") != "options") {
    throw std::runtime_error("the first frame is not the options frame");
  }
  std::vector<std::pair<std::string, std::string>> options;
  std::string_view rest = frame.body;
  const auto text = [&] {
    if (rest.size() < 4) throw std::runtime_error("a truncated options frame");
    const std::size_t size = readU32(rest.data());
    rest.remove_prefix(4);
    if (rest.size() < size) throw std::runtime_error("a truncated options frame");
    std::string value(rest.substr(0, size));
    rest.remove_prefix(size);
    return value;
  };
  while (!rest.empty()) {
    std::string key = text();
    options.emplace_back(std::move(key), text());
  }
  return options;
}

// Reads from `fd` into `reader` until it holds a whole frame; nullopt at
// the end of the stream between frames. Throws std::runtime_error.
std::optional<WorkerFrame> readFrame(int fd, FrameReader& reader, std::string& buffer) {
  buffer.resize(64 * 1024);
  for (;;) {
    if (auto frame = reader.next()) return frame;
    const ssize_t got = read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw std::runtime_error(std::string("reading stdin: ") + std::strerror(errno));
    if (got == 0) {
      if (reader.buffered() == 0) return std::nullopt;
      throw std::runtime_error("stdin ended inside a frame");
    }
    reader.feed(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
  }
}

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t put = write(fd, bytes.data(), bytes.size());
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(put));
  }
  return true;
}

}  // namespace

std::vector<std::string> pluginWorkerArguments(const std::string& plugin_path,
                                               const std::string& queue) {
  return {kHandlerWorkerFlag, plugin_path, queue};
}

std::string pluginOptionsFrame(const std::vector<std::pair<std::string, std::string>>& options) {
  std::string body;
  for (const auto& [key, value] : options) {
    for (const std::string* text : {&key, &value}) {
      appendU32(static_cast<std::uint32_t>(text->size()), body);
      body.append(*text);
    }
  }
  std::string frame;
  encodeFrame({{"init", "options"}}, body, frame);
  return frame;
}

int runPluginWorker(const std::vector<std::string>& arguments) {
  if (arguments.size() != 2) {
    std::fprintf(stderr, "usage: warrend %s PLUGIN_PATH QUEUE (options in the first frame)\n",
                 kHandlerWorkerFlag);
    return kUsage;
  }
  FrameStreams streams;
  FrameReader reader(kMaxRequestBytes);
  std::string buffer;  // what read() fills, reused
  std::unique_ptr<PluginInstance> instance;
  try {
    streams = takeFrameStreams();
    const auto options = readFrame(streams.in, reader, buffer);
    if (!options) return 0;  // ended before it was needed
    auto logger = std::make_shared<spdlog::logger>(
        arguments[1], std::make_shared<spdlog::sinks::stderr_sink_mt>());
    // warrend's queue logger filters by level; its stderr reader reads it.
    logger->set_level(spdlog::level::trace);
    logger->set_pattern("[%l] %v");
    instance = std::make_unique<PluginInstance>(PluginLibrary::load(arguments[0]), arguments[1],
                                                readOptions(*options), logger);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[error] cannot serve with %s: %s\n", arguments[0].c_str(), e.what());
    return kSoftware;
  }

  // warrend gone while a handler runs (it never closes stdin then): this
  // worker goes too, instead of finishing work nobody reads.
  const auto handling = std::make_shared<std::atomic<bool>>(false);
  std::thread([in = streams.in, handling] {
    pollfd entry{in, 0, 0};
    for (;;) {
      if (poll(&entry, 1, -1) < 0 && errno != EINTR) return;
      if ((entry.revents & (POLLHUP | POLLERR)) != 0) {
        if (handling->load()) _exit(kSoftware);
        return;  // idle: the read loop sees the end
      }
    }
  }).detach();

  HandlerReply reply;
  std::string out;
  for (;;) {
    try {
      auto frame = readFrame(streams.in, reader, buffer);
      if (!frame) return 0;  // warrend is done with this worker
      const DecodedRequest decoded(std::move(*frame));
      handling->store(true);
      instance->handle(decoded.request(), reply);
      handling->store(false);
      out.clear();
      encodeReplyFrame(decoded.id(), reply, out);
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "[error] %s\n", e.what());
      return kDataError;
    }
    if (!writeAll(streams.out, out)) {
      std::fprintf(stderr, "[error] writing a reply: %s\n", std::strerror(errno));
      return kSoftware;
    }
    releaseLargeBuffers(reply, 64 * 1024);
  }
}

}  // namespace warren
