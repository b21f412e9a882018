// SPDX-License-Identifier: Apache-2.0
// One handler instance of a plugin, created for one queue with its options.
#pragma once

#include "handler.h"
#include "handler_reply.h"
#include "plugin_library.h"

#include <spdlog/logger.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace warren {

// The plugin refused its options. `key()` is the offending option, empty
// when the plugin did not name one.
class PluginOptionError : public std::runtime_error {
 public:
  PluginOptionError(std::string key, const std::string& message)
      : std::runtime_error(message), key_(std::move(key)) {}
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

class PluginInstance final : public Handler {
 public:
  // Calls the plugin's create() with `options`. Throws PluginOptionError when
  // it refuses them (or returns NULL without saying why). `logger` receives
  // the plugin's log lines; the instance keeps `library` loaded.
  PluginInstance(std::shared_ptr<const PluginLibrary> library, std::string queue,
                 const std::vector<std::pair<std::string, std::string>>& options,
                 std::shared_ptr<spdlog::logger> logger);
  // Calls destroy(). The caller guarantees no handle() is running.
  ~PluginInstance() override;

  // Runs the handler for one request; thread-safe as the plugin's handle()
  // is. `request.queue` and `struct_size` are filled in here. Whatever the
  // plugin wrote through the host API lands in `reply`, which is reset first.
  void handle(warren_request request, HandlerReply& reply) const noexcept override;

  const PluginLibrary& library() const noexcept { return *library_; }
  const std::string& queue() const noexcept { return queue_; }

 private:
  std::shared_ptr<const PluginLibrary> library_;
  std::string queue_;
  std::shared_ptr<spdlog::logger> logger_;
  // What the plugin's log() calls reach (defined in plugin_instance.cpp); at
  // a stable address from create() to destroy().
  std::unique_ptr<warren_host> host_context_;
  void* instance_ = nullptr;
};

// The instance whose handle() runs on the calling thread, nullptr when
// none: for naming a plugin that ends the process (main.cpp).
const PluginInstance* handlerRunningOnThisThread() noexcept;

}  // namespace warren
