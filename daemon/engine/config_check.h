// SPDX-License-Identifier: Apache-2.0
// `warrend --check-config FILE`: everything a start would refuse, found
// without connecting to the broker, like `nginx -t`.
#pragma once

#include "config.h"
#include "plugin_instance.h"
#include "plugin_library.h"

#include <filesystem>
#include <string>
#include <vector>

namespace warren {

// Takes a loaded Config (the loader, loadConfig(), has already reported every
// error of the file, as a ConfigError, exactly as at start-up), then loads
// every queue's plugin (ABI check), creates its handler with the queue's
// options and destroys it again. Returns every error found, each as
// "FILE:LINE:COL: key: message"; empty when the configuration would start.
std::vector<std::string> checkConfig(const Config& config);

// The messages of a plugin that cannot be loaded, or refuses its options,
// pointing at the queue's `handler` line or the option's line.
std::string pluginErrorMessage(const Config& config, const QueueConfig& queue,
                               const PluginError& error);
std::string optionErrorMessage(const Config& config, const QueueConfig& queue,
                               const PluginOptionError& error);

// The queue's options as the plugin host takes them.
std::vector<std::pair<std::string, std::string>> optionPairs(const QueueConfig& queue);

}  // namespace warren
