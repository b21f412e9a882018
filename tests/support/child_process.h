// SPDX-License-Identifier: Apache-2.0
// A child process for tests, with its stdout+stderr captured and awaitable.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace warren::test {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`, in `cwd` when not empty.
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& cwd = "");
  // Kills it (SIGKILL) if still running.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  void signal(int signal_number) const;
  // Waits until the output contains `needle` (at least `times` times);
  // false at the deadline or when the child closed its output first.
  bool waitForOutput(const std::string& needle, std::chrono::milliseconds timeout, int times = 1);
  // Waits for exit; the exit code, or 128+signal, or nullopt at the deadline.
  std::optional<int> waitExit(std::chrono::milliseconds timeout);
  std::string output() const;

 private:
  void readOutput(int fd);

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string output_;
  bool output_closed_ = false;
  std::thread reader_;
};

}  // namespace warren::test
