// SPDX-License-Identifier: Apache-2.0
// The worker side of `isolation: process`: warrend started as
//   warrend --handler-worker PLUGIN_PATH QUEUE
// reads the queue's options from the first frame on stdin (not from its
// command line, which every local user can read in ps), loads the plugin,
// creates its instance for QUEUE with them and answers request frames on
// stdin with reply frames on stdout until stdin ends
// (docs/exec-handlers.md).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace warren {

inline constexpr const char* kHandlerWorkerFlag = "--handler-worker";

// The arguments after the program name that make warrend such a worker.
std::vector<std::string> pluginWorkerArguments(const std::string& plugin_path,
                                               const std::string& queue);

// The frame that hands a worker the queue's options (any bytes).
std::string pluginOptionsFrame(const std::vector<std::pair<std::string, std::string>>& options);

// Runs the worker for `arguments` (those after kHandlerWorkerFlag); returns
// the exit status: 0 when stdin ended between requests.
int runPluginWorker(const std::vector<std::string>& arguments);

}  // namespace warren
