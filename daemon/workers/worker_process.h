// SPDX-License-Identifier: Apache-2.0
// One handler worker process: spawned in its own process group with its
// stdin and stdout on pipes to warrend, killed (with its group) and reaped
// when it is no longer wanted.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace warren {

// A file descriptor, closed when it goes.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  ~OwnedFd() { reset(); }
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// A pipe; both ends close-on-exec.
struct Pipe {
  OwnedFd read;
  OwnedFd write;
};
Pipe makePipe();  // throws std::system_error

struct WorkerCommand {
  // What is run; empty: argv[0], looked up in PATH when it has no '/'.
  std::filesystem::path program;
  std::vector<std::string> argv;
  // Added to (or replacing in) warrend's environment.
  std::vector<std::pair<std::string, std::string>> env;
  std::filesystem::path working_directory;
};

// The path argv[0] of `command` runs, or a sentence saying why none: what a
// spawn would find (PATH, or relative to the working directory).
std::filesystem::path resolveExecutable(const WorkerCommand& command, std::string& why_not);

class WorkerProcess {
 public:
  // Starts `command` with `stderr_fd` as its stderr. Throws
  // std::system_error when it cannot (the program is missing, not
  // executable, the working directory is gone, no processes left).
  WorkerProcess(const WorkerCommand& command, int stderr_fd);
  // Kills the process group and reaps the process, unless done before.
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  int stdinFd() const noexcept { return stdin_.get(); }    // nonblocking
  int stdoutFd() const noexcept { return stdout_.get(); }  // nonblocking
  int pidFd() const noexcept { return pidfd_.get(); }      // readable once it has exited

  // True once it has exited (not yet reaped); never waits.
  bool hasExited() const noexcept;
  // Waits up to `timeout` for it to exit; true when it has.
  bool waitExited(std::chrono::milliseconds timeout) const noexcept;
  // Closes its stdin: no more requests; a worker then exits on its own.
  void closeInput() noexcept { stdin_.reset(); }
  // Waits up to `grace` for it to exit (it is dying), then kills its group
  // and reaps it. Returns how it ended: "exited with status 3", "was killed
  // by signal 11 (Segmentation fault)".
  std::string reap(std::chrono::milliseconds grace);
  // After reap(): true when it exited with status 0 on its own.
  bool exitedCleanly() const noexcept { return clean_exit_; }

 private:
  pid_t pid_ = -1;
  OwnedFd pidfd_;
  OwnedFd stdin_;
  OwnedFd stdout_;
  bool reaped_ = false;
  bool clean_exit_ = false;
};

}  // namespace warren
