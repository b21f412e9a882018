// SPDX-License-Identifier: Apache-2.0
// Tests of ServiceNotifier (daemon/notify/service_notifier.cpp): the test plays
// systemd, with its own datagram socket as $NOTIFY_SOCKET, and reads back the
// exact messages in the order they were sent.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <system_error>

#include "service_notifier.h"

namespace warren {
namespace {

namespace fs = std::filesystem;
using std::chrono::microseconds;

constexpr int kReceiveDeadlineMs = 5000;

std::uint64_t monotonicMicroseconds() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1000000U +
         static_cast<std::uint64_t>(now.tv_nsec) / 1000U;
}

class ServiceNotifierTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = (fs::temp_directory_path() / "warren-notify-XXXXXX").string();
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr) << std::strerror(errno);
    dir_ = dir_template;
    socket_path_ = dir_ / "notify";

    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(socket_path_.string().size(), sizeof address.sun_path);
    std::strncpy(address.sun_path, socket_path_.c_str(), sizeof address.sun_path - 1);
    ASSERT_EQ(bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0)
        << std::strerror(errno);
    setenv("NOTIFY_SOCKET", socket_path_.c_str(), /*overwrite=*/1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
  }

  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (fd_ >= 0) close(fd_);
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // The next datagram, waiting for it at most kReceiveDeadlineMs (sd_notify
  // has sent it before returning: the wait only guards against a hang).
  std::string receive() const {
    pollfd ready{fd_, POLLIN, 0};
    if (poll(&ready, 1, kReceiveDeadlineMs) != 1) return "(nothing received)";
    std::array<char, 4096> buffer{};
    const ssize_t size = recv(fd_, buffer.data(), buffer.size(), 0);
    if (size < 0) return std::string("(recv failed: ") + std::strerror(errno) + ")";
    return std::string(buffer.data(), static_cast<std::size_t>(size));
  }

  // Whether a datagram is waiting, without waiting.
  bool pending() const {
    pollfd ready{fd_, POLLIN, 0};
    return poll(&ready, 1, 0) == 1;
  }

  fs::path dir_;
  fs::path socket_path_;
  int fd_ = -1;
  ServiceNotifier notifier_;
};

TEST_F(ServiceNotifierTest, SendsTheLifecycleInOrder) {
  EXPECT_TRUE(notifier_.enabled());

  EXPECT_FALSE(notifier_.ready("serving 2 queues, 6 consumers"));
  const std::uint64_t before_reload = monotonicMicroseconds();
  EXPECT_FALSE(notifier_.reloading("reloading /etc/warren/warren.yaml"));
  const std::uint64_t after_reload = monotonicMicroseconds();
  EXPECT_FALSE(notifier_.ready("serving 3 queues, 8 consumers"));
  EXPECT_FALSE(notifier_.watchdog());
  EXPECT_FALSE(notifier_.status("draining 4 requests"));
  EXPECT_FALSE(notifier_.stopping("stopping: SIGTERM"));

  EXPECT_EQ(receive(), "READY=1\nSTATUS=serving 2 queues, 6 consumers");

  const std::string reloading = receive();
  const std::string head = "RELOADING=1\nMONOTONIC_USEC=";
  const std::string tail = "\nSTATUS=reloading /etc/warren/warren.yaml";
  ASSERT_TRUE(reloading.starts_with(head)) << reloading;
  ASSERT_TRUE(reloading.ends_with(tail)) << reloading;
  const std::string usec =
      reloading.substr(head.size(), reloading.size() - head.size() - tail.size());
  ASSERT_FALSE(usec.empty());
  ASSERT_EQ(usec.find_first_not_of("0123456789"), std::string::npos) << usec;
  const std::uint64_t stamp = std::stoull(usec);
  EXPECT_GE(stamp, before_reload);  // CLOCK_MONOTONIC, read while sending
  EXPECT_LE(stamp, after_reload);

  EXPECT_EQ(receive(), "READY=1\nSTATUS=serving 3 queues, 8 consumers");
  EXPECT_EQ(receive(), "WATCHDOG=1");
  EXPECT_EQ(receive(), "STATUS=draining 4 requests");
  EXPECT_EQ(receive(), "STOPPING=1\nSTATUS=stopping: SIGTERM");
  EXPECT_FALSE(pending());
}

// A newline would smuggle in another assignment (READY=1 here).
TEST_F(ServiceNotifierTest, StatusStaysOnOneLine) {
  EXPECT_FALSE(notifier_.status("broker down\nREADY=1\r\n"));
  EXPECT_EQ(receive(), "STATUS=broker down READY=1  ");
}

TEST_F(ServiceNotifierTest, NothingIsSentWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(notifier_.enabled());
  EXPECT_FALSE(notifier_.ready("ready"));
  EXPECT_FALSE(notifier_.reloading("reloading"));
  EXPECT_FALSE(notifier_.stopping("stopping"));
  EXPECT_FALSE(notifier_.status("status"));
  EXPECT_FALSE(notifier_.watchdog());
  EXPECT_FALSE(pending());  // sd_notify sends synchronously: nothing can be in flight
}

TEST_F(ServiceNotifierTest, UnreachableSocketIsReported) {
  const fs::path missing = dir_ / "missing";
  setenv("NOTIFY_SOCKET", missing.c_str(), /*overwrite=*/1);
  const std::error_code error = notifier_.ready("ready");
  EXPECT_EQ(error, std::errc::no_such_file_or_directory) << error.message();
}

TEST_F(ServiceNotifierTest, WatchdogIntervalIsZeroWhenOff) {
  EXPECT_EQ(notifier_.watchdogInterval(), microseconds(0));
}

TEST_F(ServiceNotifierTest, WatchdogIntervalComesFromTheEnvironment) {
  setenv("WATCHDOG_USEC", "3000000", /*overwrite=*/1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), /*overwrite=*/1);
  EXPECT_EQ(notifier_.watchdogInterval(), microseconds(3000000));

  unsetenv("WATCHDOG_PID");  // no PID: meant for whoever reads it
  EXPECT_EQ(notifier_.watchdogInterval(), microseconds(3000000));
}

TEST_F(ServiceNotifierTest, WatchdogMeantForAnotherProcessIsOff) {
  setenv("WATCHDOG_USEC", "3000000", /*overwrite=*/1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), /*overwrite=*/1);
  EXPECT_EQ(notifier_.watchdogInterval(), microseconds(0));
}

TEST_F(ServiceNotifierTest, MalformedWatchdogIsOff) {
  setenv("WATCHDOG_USEC", "soon", /*overwrite=*/1);
  EXPECT_EQ(notifier_.watchdogInterval(), microseconds(0));
}

}  // namespace
}  // namespace warren
