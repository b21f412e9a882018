// SPDX-License-Identifier: Apache-2.0
// Throwaway RabbitMQ for tests: one node (PrivateBroker, optionally with TLS)
// or a 3-node cluster (PrivateCluster), run through scripts/rabbitmq-private
// and scripts/rabbitmq-cluster in a temporary directory on free loopback ports.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace warren::test {

class PrivateBroker {
 public:
  struct Options {
    // AMQP port; 0: a free one.
    int port = 0;
    // Also an AMQPS listener on tlsPort(), with the certificates of
    // scripts/make-test-certs in certDir(): the server certificate names
    // localhost only (not 127.0.0.1); client certificates are asked for but
    // not required; EXTERNAL login with client.pem logs in as warren-client.
    bool tls = false;
  };

  // Starts a node on `port`, or on a free port when 0. Throws on failure,
  // with the node's log in the message.
  explicit PrivateBroker(int port = 0);
  explicit PrivateBroker(const Options& options);
  ~PrivateBroker();
  PrivateBroker(const PrivateBroker&) = delete;
  PrivateBroker& operator=(const PrivateBroker&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const;
  // The AMQPS port, 0 without TLS.
  int tlsPort() const noexcept { return tls_port_; }
  // amqps://guest:guest@localhost:TLSPORT/%2f; throws without TLS.
  std::string tlsUrl() const;
  // ca.pem, server.pem, client.pem, other-ca.pem and their .key files; throws without TLS.
  std::filesystem::path certDir() const;
  void stop();
  // SIGKILL to the node: no goodbye to its clients.
  void kill();
  // Starts the node again (after stop or kill), with TLS if it had it.
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
  int tls_port_ = 0;
  bool running_ = false;
};

// Three clustered nodes (warren<PORT>@localhost) on consecutive free ports,
// started by the constructor (about 15 s), stopped by the destructor. Nodes
// are numbered 1..3. The counts of a quorum queue come from metrics its
// leader publishes every few seconds: poll them.
class PrivateCluster {
 public:
  static constexpr int kNodes = 3;

  // Throws on failure, with the nodes' logs in the message.
  PrivateCluster();
  ~PrivateCluster();
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  int port(int node) const;
  // amqp://guest:guest@127.0.0.1:PORT/%2f of one node.
  std::string url(int node) const;
  // url(1), url(2), url(3).
  std::vector<std::string> urls() const;
  // warren<PORT>@localhost.
  std::string nodeName(int node) const;
  // 1..3 for a node name of this cluster, 0 for any other.
  int nodeIndex(const std::string& node_name) const;
  // SIGKILL to a node's VM; returns once it is gone.
  void kill(int node);
  // Starts a killed node again; returns once it is a running member.
  void restart(int node);
  bool running(int node) const;
  // Runs rabbitmqctl against one node; returns its standard output.
  std::string ctl(int node, const std::string& arguments) const;
  // "messages_ready messages_unacknowledged consumers" of a queue as the
  // first running node reports it; "" if absent or its node is down.
  std::string queueState(const std::string& queue) const;
  // The node name of a quorum queue's leader, as the first running node
  // reports it; "" if the queue is absent or has no leader.
  std::string leaderOf(const std::string& queue) const;
  // Every node's log files, for failure output.
  std::string log() const;

 private:
  void checkNode(int node) const;
  int firstRunningNode() const;
  // The tab-separated fields after the name of `queue` in list_queues, asked
  // of the first running node; empty if absent.
  std::vector<std::string> queueFields(const std::string& queue, const std::string& items) const;

  std::filesystem::path dir_;
  int port_;
  std::array<bool, kNodes> running_{};
};

// A port nobody listens on right now (bound and released by the kernel),
// whose distribution port (+20000) is free too.
int freeLoopbackPort();
// The first of `count` consecutive free ports, each with its distribution
// port (+20000) free too and clear of the CLI's own (35672..35682).
int freeLoopbackPorts(int count);
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
