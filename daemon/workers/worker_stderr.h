// SPDX-License-Identifier: Apache-2.0
// The stderr of a queue's worker processes, into warrend's log: one pipe
// they all write to, and a thread that logs each line under the queue's
// logger, at info or at the level a "[error] " (etc.) prefix names.
#pragma once

#include "worker_process.h"

#include <spdlog/logger.h>

#include <memory>
#include <string_view>
#include <thread>

namespace warren {

class WorkerStderr {
 public:
  // Starts the thread; throws std::system_error when it cannot.
  explicit WorkerStderr(std::shared_ptr<spdlog::logger> logger);
  // Logs what is left to read, then stops the thread.
  ~WorkerStderr();
  WorkerStderr(const WorkerStderr&) = delete;
  WorkerStderr& operator=(const WorkerStderr&) = delete;

  // For a worker's fd 2.
  int writeFd() const noexcept { return pipe_.write.get(); }

 private:
  void pump();
  void logLine(std::string_view line) const;

  std::shared_ptr<spdlog::logger> logger_;
  Pipe pipe_;
  Pipe stop_;
  std::thread thread_;
};

}  // namespace warren
