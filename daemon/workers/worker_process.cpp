// SPDX-License-Identifier: Apache-2.0
#include "worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/fmt/fmt.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <system_error>

extern char** environ;

namespace warren {
namespace {

std::system_error systemError(int error, const std::string& what) {
  return {error, std::generic_category(), what};
}

void setNonblocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw systemError(errno, "fcntl(O_NONBLOCK)");
  }
}

// posix_spawn's attributes and file actions, destroyed with it.
struct SpawnAttributes {
  posix_spawnattr_t attr{};
  posix_spawn_file_actions_t actions{};
  SpawnAttributes() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttributes() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
};

// warrend's environment with `env` and the worker variables applied.
std::vector<std::string> environmentFor(const WorkerCommand& command) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    merged[std::string(text.substr(0, equals))] = text.substr(equals + 1);
  }
  for (const auto& [name, value] : command.env) merged[name] = value;
  std::vector<std::string> result;
  result.reserve(merged.size());
  for (const auto& [name, value] : merged) result.push_back(name + "=" + value);
  return result;
}

std::string describeStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = strsignal(signal);
    return "was killed by signal " + std::to_string(signal) + " (" + (name ? name : "?") + ")" +
           (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

bool waitReadable(int fd, std::chrono::milliseconds timeout) {
  pollfd entry{fd, POLLIN, 0};
  int ready = 0;
  do {
    ready = poll(&entry, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  return ready > 0;
}

}  // namespace

void OwnedFd::reset() noexcept {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Pipe makePipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw systemError(errno, "pipe2");
  return {OwnedFd(fds[0]), OwnedFd(fds[1])};
}

std::filesystem::path resolveExecutable(const WorkerCommand& command, std::string& why_not) {
  if (!command.program.empty()) return command.program;
  if (command.argv.empty()) {
    why_not = "no command";
    return {};
  }
  const std::string& program = command.argv.front();
  const auto runnable = [](const std::filesystem::path& path) {
    std::error_code error;
    return std::filesystem::is_regular_file(path, error) && access(path.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) {
    const std::filesystem::path path = std::filesystem::path(program).is_absolute()
                                           ? std::filesystem::path(program)
                                           : command.working_directory / program;
    if (runnable(path)) return path;
    // Formatted: GCC 12 at -O2 wrongly warns (-Wrestrict) of the string
    // concatenations this would otherwise be.
    why_not = fmt::format("'{}' is not an executable file", path.string());
    return {};
  }
  std::string search;
  for (const auto& [name, value] : command.env) {
    if (name == "PATH") search = value;
  }
  if (search.empty()) {
    const char* path = std::getenv("PATH");
    search = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  }
  std::size_t start = 0;
  while (start <= search.size()) {
    std::size_t end = search.find(':', start);
    if (end == std::string::npos) end = search.size();
    std::filesystem::path dir = search.substr(start, end - start);
    if (dir.empty()) dir = ".";
    if (dir.is_relative()) dir = command.working_directory / dir;
    if (runnable(dir / program)) return dir / program;
    start = end + 1;
  }
  why_not = fmt::format("'{}' is not found in PATH ({})", program, search);
  return {};
}

WorkerProcess::WorkerProcess(const WorkerCommand& command, int stderr_fd) {
  std::string why_not;
  const std::filesystem::path program = resolveExecutable(command, why_not);
  if (program.empty()) throw systemError(ENOENT, why_not);
  Pipe input = makePipe();
  Pipe output = makePipe();

  SpawnAttributes spawn;
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (const int signal : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
    sigaddset(&defaults, signal);
  }
  posix_spawnattr_setsigmask(&spawn.attr, &none);
  posix_spawnattr_setsigdefault(&spawn.attr, &defaults);
  posix_spawnattr_setpgroup(&spawn.attr, 0);
  posix_spawnattr_setflags(&spawn.attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  posix_spawn_file_actions_adddup2(&spawn.actions, input.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&spawn.actions, output.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&spawn.actions, stderr_fd, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&spawn.actions, 3);
  if (!command.working_directory.empty()) {
    posix_spawn_file_actions_addchdir_np(&spawn.actions, command.working_directory.c_str());
  }

  std::vector<std::string> environment = environmentFor(command);
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> arguments = command.argv;
  std::vector<char*> argv;
  argv.reserve(arguments.size() + 1);
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);

  const int error =
      posix_spawn(&pid_, program.c_str(), &spawn.actions, &spawn.attr, argv.data(), envp.data());
  if (error != 0) {
    throw systemError(error, "cannot start '" + program.string() + "' in '" +
                                 command.working_directory.string() + "'");
  }
  // Not reaped by anyone but this object, so the pid cannot be reused
  // before the pidfd refers to it.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd < 0) {
    const int open_error = errno;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    throw systemError(open_error, "pidfd_open");
  }
  pidfd_ = OwnedFd(pidfd);
  stdin_ = std::move(input.write);
  stdout_ = std::move(output.read);
  setNonblocking(stdin_.get());
  setNonblocking(stdout_.get());
}

bool WorkerProcess::hasExited() const noexcept { return waitExited(std::chrono::milliseconds(0)); }

bool WorkerProcess::waitExited(std::chrono::milliseconds timeout) const noexcept {
  return !reaped_ && pidfd_ && waitReadable(pidfd_.get(), timeout);
}

WorkerProcess::~WorkerProcess() {
  if (!reaped_) reap(std::chrono::milliseconds(0));
}

std::string WorkerProcess::reap(std::chrono::milliseconds grace) {
  if (reaped_) return "already reaped";
  if (grace.count() > 0 && pidfd_) waitReadable(pidfd_.get(), grace);
  // The group first, while the leader (a zombie at worst) holds its id.
  kill(-pid_, SIGKILL);
  int status = 0;
  pid_t done = 0;
  do {
    done = waitpid(pid_, &status, 0);
  } while (done < 0 && errno == EINTR);
  reaped_ = true;
  stdin_.reset();
  stdout_.reset();
  pidfd_.reset();
  if (done != pid_) return "not reaped: " + std::string(strerror(errno));
  clean_exit_ = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return describeStatus(status);
}

}  // namespace warren
