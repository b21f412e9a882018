// SPDX-License-Identifier: Apache-2.0
#include "plugin_instance.h"

#include "deferred_reply.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The opaque handles of include/warren/plugin.h, as the host defines them.

// One per instance, from create() to destroy(): where the plugin's log lines go.
struct warren_host {
  spdlog::logger* logger;  // may be null: log lines are dropped
  std::string plugin;
};

// One per create() call, on the host's stack.
struct warren_create_error {
  bool set = false;
  std::string key;
  std::string message;
};

namespace warren {
namespace {

std::string_view viewOf(const char* data, std::size_t size) noexcept {
  return data != nullptr ? std::string_view(data, size) : std::string_view();
}

bool knownErrorCode(warren_error_code code) noexcept {
  switch (code) {
    case WARREN_ERROR_INVALID_ARGUMENT:
    case WARREN_ERROR_OUT_OF_RANGE:
    case WARREN_ERROR_TOO_LARGE:
    case WARREN_ERROR_INTERNAL:
    case WARREN_ERROR_UNAVAILABLE:
    case WARREN_ERROR_DEADLINE_EXCEEDED:
      return true;
    case WARREN_ERROR_HANDLER_CRASHED:  // the host's own: a plugin that sets it is wrong
      return false;
  }
  return false;
}

// Turns the reply into an internal error when the host itself failed (out of
// memory). The message is short enough not to allocate.
void failReply(HandlerReply& out) noexcept {
  out.body.clear();
  out.error.emplace();
  out.error->code = WARREN_ERROR_INTERNAL;
  try {
    out.error->message = "out of memory";
  } catch (...) {
    // Nothing left to report with: the code alone says it.
  }
}

void replyWrite(warren_reply* reply, const char* data, std::size_t size) noexcept {
  if (reply == nullptr || reply->out == nullptr) return;
  HandlerReply& out = *reply->out;
  if (out.error) return;  // an error reply has no body
  try {
    out.body.append(viewOf(data, size));
  } catch (...) {
    failReply(out);
  }
}

void replySetContentType(warren_reply* reply, const char* data, std::size_t size) noexcept {
  if (reply == nullptr || reply->out == nullptr) return;
  try {
    reply->out->content_type.assign(viewOf(data, size));
  } catch (...) {
    failReply(*reply->out);
  }
}

void replyError(warren_reply* reply, warren_error_code code, const char* message,
                std::size_t size) noexcept {
  if (reply == nullptr || reply->out == nullptr) return;
  HandlerReply& out = *reply->out;
  out.body.clear();
  try {
    HandlerError error;
    error.code = knownErrorCode(code) ? code : WARREN_ERROR_INTERNAL;
    error.message.assign(viewOf(message, size));
    out.error = std::move(error);
  } catch (...) {
    failReply(out);
  }
}

void createError(warren_create_error* error, const char* key, std::size_t key_size,
                 const char* message, std::size_t message_size) noexcept {
  if (error == nullptr) return;
  error->set = true;
  try {
    error->key.assign(viewOf(key, key_size));
    error->message.assign(viewOf(message, message_size));
  } catch (...) {
    error->key.clear();
    error->message.clear();
  }
}

spdlog::level::level_enum levelOf(warren_log_level level) noexcept {
  switch (level) {
    case WARREN_LOG_DEBUG:
      return spdlog::level::debug;
    case WARREN_LOG_INFO:
      return spdlog::level::info;
    case WARREN_LOG_WARN:
      return spdlog::level::warn;
    case WARREN_LOG_ERROR:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

void hostLog(warren_host* host, warren_log_level level, const char* message,
             std::size_t size) noexcept {
  if (host == nullptr || host->logger == nullptr) return;
  const spdlog::level::level_enum mapped = levelOf(level);
  if (!host->logger->should_log(mapped)) return;
  try {
    host->logger->log(mapped, "[{}] {}", host->plugin, viewOf(message, size));
  } catch (...) {
    // A lost log line is not worth failing the caller for.
  }
}

warren_reply* replyDefer(warren_reply* reply) noexcept {
  if (reply == nullptr || reply->deferrable == nullptr || reply->deferrable->deferred) {
    return nullptr;  // a deferred handle, or deferred already
  }
  HandlerReply& own = *reply->deferrable;
  warren_reply* handle = DeferredReply::begin(own, own.sink);
  if (handle != nullptr) reply->out = nullptr;  // writes go to the handle now
  return handle;
}

void replyComplete(warren_reply* deferred) noexcept { DeferredReply::complete(deferred); }

// The functions every instance offers its plugin. Immutable, static storage.
constexpr warren_host_api kHostApi = {
    sizeof(warren_host_api),
    WARREN_PLUGIN_ABI_MAJOR,
    WARREN_PLUGIN_ABI_MINOR,
    &replyWrite,
    &replySetContentType,
    &replyError,
    &createError,
    &hostLog,
    &replyDefer,
    &replyComplete,
};

}  // namespace

PluginInstance::PluginInstance(std::shared_ptr<const PluginLibrary> library, std::string queue,
                               const std::vector<std::pair<std::string, std::string>>& options,
                               std::shared_ptr<spdlog::logger> logger)
    : library_(std::move(library)), queue_(std::move(queue)), logger_(std::move(logger)) {
  if (!library_) throw std::invalid_argument("PluginInstance: no plugin library given");
  host_context_ = std::make_unique<warren_host>(warren_host{logger_.get(), library_->name()});

  std::vector<warren_option> raw_options;
  raw_options.reserve(options.size());
  for (const auto& [key, value] : options) {
    raw_options.push_back({{key.data(), key.size()}, {value.data(), value.size()}});
  }

  const warren_plugin& plugin = library_->descriptor();
  warren_create_error error;
  instance_ =
      plugin.create(&kHostApi, host_context_.get(), raw_options.data(), raw_options.size(), &error);
  if (instance_ != nullptr && error.set) {
    // It refused its options yet returned an instance: the refusal wins.
    plugin.destroy(instance_);
    instance_ = nullptr;
  }
  if (instance_ == nullptr) {
    if (!error.set) {
      throw PluginOptionError("", "the plugin's create() failed without saying why");
    }
    if (error.message.empty()) error.message = "the plugin refused its options without saying why";
    throw PluginOptionError(std::move(error.key), error.message);
  }
}

PluginInstance::~PluginInstance() {
  if (instance_ != nullptr) library_->descriptor().destroy(instance_);
}

namespace {

thread_local const PluginInstance* running_here = nullptr;

}  // namespace

const PluginInstance* handlerRunningOnThisThread() noexcept { return running_here; }

void PluginInstance::handle(warren_request request, HandlerReply& reply) const noexcept {
  request.struct_size = sizeof(warren_request);
  request.queue = {queue_.data(), queue_.size()};
  reply.body.clear();
  reply.content_type.clear();
  reply.error.reset();
  reply.deferred.reset();
  // A caller with no sink of its own waits here for a deferred reply.
  std::shared_ptr<DeferredWaiter> waiter;
  if (!reply.sink) {
    try {
      waiter = std::make_shared<DeferredWaiter>();
    } catch (const std::bad_alloc&) {
      // Without one the plugin cannot defer (reply_defer returns NULL).
    }
    reply.sink = waiter;
  }
  warren_reply raw_reply{&reply, reply.sink ? &reply : nullptr, nullptr};
  const PluginInstance* const outer = running_here;
  running_here = this;
  library_->descriptor().handle(instance_, &request, &raw_reply);
  running_here = outer;
  if (!waiter) return;
  reply.sink.reset();
  if (!reply.deferred) return;
  const std::shared_ptr<DeferredReply> deferred = std::move(reply.deferred);
  try {
    HandlerReply answer = waiter->wait(deferred, request.deadline_ms);
    reply.body = std::move(answer.body);
    reply.content_type = std::move(answer.content_type);
    reply.error = std::move(answer.error);
  } catch (...) {
    failReply(reply);
  }
}

}  // namespace warren
