// SPDX-License-Identifier: Apache-2.0
// Holds the gate fixture plugin (tests/fixtures/plugins/gate.cpp) inside
// handle() until the test lets it go: two FIFOs, no sleeping on either side.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

namespace warren::test {

class Gate {
 public:
  Gate() {
    std::string templ = (std::filesystem::temp_directory_path() / "warren-gate-XXXXXX").string();
    dir_ = ::mkdtemp(templ.data());
    ::mkfifo(entered().c_str(), 0600);
    ::mkfifo(release().c_str(), 0600);
    // Opened read-write so that opening never blocks and the plugin's writes
    // always find a reader.
    entered_fd_ = ::open(entered().c_str(), O_RDWR | O_NONBLOCK);
  }
  ~Gate() {
    ::close(entered_fd_);
    std::filesystem::remove_all(dir_);
  }
  std::string entered() const { return dir_ + "/entered"; }
  std::string release() const { return dir_ + "/release"; }
  std::string options() const {
    return "    options:\n      entered_fifo: " + entered() + "\n      release_fifo: " + release() +
           "\n";
  }
  // Waits until a handler has entered the gate.
  bool waitEntered(std::chrono::milliseconds timeout) {
    pollfd fd{entered_fd_, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(timeout.count())) != 1) return false;
    char byte = 0;
    return ::read(entered_fd_, &byte, 1) == 1;
  }
  // Lets one handler out.
  void open() {
    const int fd = ::open(release().c_str(), O_WRONLY);
    ASSERT_EQ(::write(fd, "x", 1), 1);
    ::close(fd);
  }

 private:
  std::string dir_;
  int entered_fd_ = -1;
};

}  // namespace warren::test
