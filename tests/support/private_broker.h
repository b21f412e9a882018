// A throwaway RabbitMQ node for one test executable, run through
// scripts/rabbitmq-private in a temporary directory on a free loopback port.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace warren::test {

class PrivateBroker {
 public:
  // Starts a node on `port`, or on a free port when 0. Throws on failure,
  // with the node's log in the message.
  explicit PrivateBroker(int port = 0);
  ~PrivateBroker();
  PrivateBroker(const PrivateBroker&) = delete;
  PrivateBroker& operator=(const PrivateBroker&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const;
  void stop();
  // SIGKILL to the node: no goodbye to its clients.
  void kill();
  void start();
  bool running() const noexcept { return running_; }
  // Runs rabbitmqctl against this node; returns its standard output.
  std::string ctl(const std::string& arguments) const;
  // "messages_ready messages_unacknowledged consumers" of a queue, or "" if absent.
  std::string queueState(const std::string& queue) const;
  std::string log() const;

 private:
  std::filesystem::path dir_;
  int port_;
  bool running_ = false;
};

// A port nobody listens on right now (bound and released by the kernel).
int freeLoopbackPort();
// True when something accepts TCP connections on 127.0.0.1:port.
bool portInUse(int port);
// Runs a shell command, returning its standard output; throws on failure.
std::string runCommand(const std::string& command);

// One broker for the whole executable; prints its log when a test failed.
class BrokerEnvironment : public ::testing::Environment {
 public:
  explicit BrokerEnvironment(int port = 0) : port_(port) {}
  void SetUp() override;
  void TearDown() override;
  static PrivateBroker& broker();

 private:
  int port_;
};

}  // namespace warren::test
