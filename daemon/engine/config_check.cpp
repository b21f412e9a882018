// SPDX-License-Identifier: Apache-2.0
#include "config_check.h"

#include "worker_process.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <memory>
#include <utility>

namespace warren {

std::vector<std::pair<std::string, std::string>> optionPairs(const QueueConfig& queue) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(queue.options.size());
  for (const QueueOption& option : queue.options) pairs.emplace_back(option.key, option.value);
  return pairs;
}

std::string pluginErrorMessage(const Config& config, const QueueConfig& queue,
                               const PluginError& error) {
  return formatConfigError(config.file, queue.handler_mark, queue.path + ".handler", error.what());
}

std::string optionErrorMessage(const Config& config, const QueueConfig& queue,
                               const PluginOptionError& error) {
  SourceMark mark = queue.options_mark;
  std::string key = queue.path + ".options";
  for (const QueueOption& option : queue.options) {
    if (!error.key().empty() && option.key == error.key()) mark = option.mark;
  }
  if (!error.key().empty()) key += "." + error.key();
  return formatConfigError(config.file, mark, key,
                           "plugin '" + queue.handler + "' refused its options: " + error.what());
}

std::vector<std::string> checkConfig(const Config& config) {
  std::vector<std::string> errors;
  // Plugins may log from create()/destroy(); a check prints only its verdict.
  auto quiet =
      std::make_shared<spdlog::logger>("check", std::make_shared<spdlog::sinks::null_sink_mt>());
  for (const QueueConfig& queue : config.queues) {
    if (queue.isExec()) {
      // What a start would run; the program itself is not started.
      std::string why_not;
      const WorkerCommand command{{}, queue.command, queue.env, queue.working_directory};
      if (resolveExecutable(command, why_not).empty()) {
        errors.push_back(
            formatConfigError(config.file, queue.handler_mark, queue.path + ".command", why_not));
      }
      continue;
    }
    std::shared_ptr<const PluginLibrary> library;
    try {
      library = PluginLibrary::load(queue.plugin_path);
    } catch (const PluginError& e) {
      errors.push_back(pluginErrorMessage(config, queue, e));
      continue;
    }
    try {
      // Created and destroyed at once: options validated, resources released.
      const PluginInstance instance(library, queue.name, optionPairs(queue), quiet);
    } catch (const PluginOptionError& e) {
      errors.push_back(optionErrorMessage(config, queue, e));
    }
  }
  return errors;
}

}  // namespace warren
