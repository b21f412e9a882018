// SPDX-License-Identifier: Apache-2.0
#include "child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>

extern char** environ;

namespace warren::test {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& cwd) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  std::vector<std::string> command = argv;
  if (!cwd.empty()) {
    // posix_spawn_file_actions_addchdir_np exists from glibc 2.29 (Debian 12 has 2.36).
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  }
  // The child must not inherit the test's blocked signal mask.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (auto& arg : command) args.push_back(arg.data());
  args.push_back(nullptr);
  const int error = ::posix_spawn(&pid_, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_fds[1]);
  if (error != 0) {
    ::close(pipe_fds[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::to_string(error));
  }
  reader_ = std::thread(&ChildProcess::readOutput, this, pipe_fds[0]);
}

ChildProcess::~ChildProcess() {
  if (!waitExit(std::chrono::milliseconds(0))) {
    ::kill(pid_, SIGKILL);
    waitExit(std::chrono::seconds(10));
  }
  if (reader_.joinable()) reader_.join();
}

void ChildProcess::readOutput(int fd) {
  std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mutex_);
    output_.append(buffer.data(), static_cast<std::size_t>(n));
    changed_.notify_all();
  }
  ::close(fd);
  std::lock_guard lock(mutex_);
  output_closed_ = true;
  changed_.notify_all();
}

void ChildProcess::signal(int signal_number) const { ::kill(pid_, signal_number); }

bool ChildProcess::waitForOutput(const std::string& needle, std::chrono::milliseconds timeout,
                                 int times) {
  const auto found = [&] {
    int count = 0;
    for (auto at = output_.find(needle); at != std::string::npos && count < times;
         at = output_.find(needle, at + 1)) {
      ++count;
    }
    return count >= times;
  };
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return found() || output_closed_; });
  return found();
}

std::optional<int> ChildProcess::waitExit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  // The child's output closes when it exits (or hands its pipe on): wait for
  // that event, then reap.
  bool closed = false;
  {
    std::unique_lock lock(mutex_);
    closed = changed_.wait_for(lock, timeout, [&] { return output_closed_; });
  }
  int status = 0;
  const pid_t reaped = ::waitpid(pid_, &status, closed ? 0 : WNOHANG);
  if (reaped != pid_) return std::nullopt;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

std::string ChildProcess::output() const {
  std::lock_guard lock(mutex_);
  return output_;
}

}  // namespace warren::test
