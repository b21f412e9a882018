// SPDX-License-Identifier: Apache-2.0
#include "private_broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace warren::test {
namespace {

const std::string kScript = std::string(WARREN_SOURCE_DIR) + "/scripts/rabbitmq-private";
const std::string kClusterScript = std::string(WARREN_SOURCE_DIR) + "/scripts/rabbitmq-cluster";

// A node takes PORT + 20000 for Erlang distribution; PORT stays within 45535.
constexpr int kDistributionOffset = 20000;
constexpr int kHighestPort = 45535;
// rabbitmqctl's own distribution ports (RABBITMQ_CTL_DIST_PORT_MIN/MAX).
constexpr int kCliFirstPort = 35672;
constexpr int kCliLastPort = 35682;

// The executable's broker: created in SetUp, destroyed in TearDown.
std::unique_ptr<PrivateBroker>& environmentBroker() {
  static std::unique_ptr<PrivateBroker> broker;
  return broker;
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }

std::filesystem::path makeTempDir(const std::string& prefix) {
  std::string templ = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + templ);
  return templ;
}

// The contents of every file in `dir`, each under its name.
std::string filesIn(const std::filesystem::path& dir) {
  std::string text;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::ifstream file(entry.path());
    std::stringstream content;
    content << file.rdbuf();
    text += "== " + entry.path().filename().string() + "\n" + content.str();
  }
  if (error) text += "(cannot list " + dir.string() + ": " + error.message() + ")\n";
  return text;
}

// A port the kernel hands out for binding to loopback right now.
int kernelPickedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// True when a listener could bind 127.0.0.1:port now (SO_REUSEADDR, as the
// broker's listeners do, so connections in TIME_WAIT do not count).
bool portFree(int port) {
  if (port < 1 || port > 65535 || (port >= kCliFirstPort && port <= kCliLastPort)) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

// Splits a line of rabbitmqctl's table output (tab-separated; a field may be
// empty, e.g. the counts of a queue whose node is down).
std::vector<std::string> tabFields(const std::string& line) {
  std::vector<std::string> fields;
  std::string::size_type start = 0;
  while (true) {
    const auto tab = line.find('\t', start);
    fields.push_back(
        line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

}  // namespace

std::string runCommand(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run: " + command);
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (status != 0) {
    throw std::runtime_error("command failed (status " + std::to_string(status) + "): " + command +
                             "\n" + output);
  }
  return output;
}

int freeLoopbackPort() { return freeLoopbackPorts(1); }

int freeLoopbackPorts(int count) {
  constexpr int kAttempts = 200;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    int first = kernelPickedPort();
    // Keep the last port's distribution port in range.
    if (first + count - 1 > kHighestPort) first = kDistributionOffset + first % kDistributionOffset;
    bool all_free = true;
    for (int port = first; port < first + count && all_free; ++port) {
      all_free = portFree(port) && portFree(port + kDistributionOffset);
    }
    if (all_free) return first;
  }
  throw std::runtime_error("found no " + std::to_string(count) +
                           " consecutive free loopback ports (with +20000 free) in " +
                           std::to_string(kAttempts) + " attempts");
}

bool portInUse(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool in_use = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return in_use;
}

PrivateBroker::PrivateBroker(int port) : PrivateBroker(Options{.port = port, .tls = false}) {}

PrivateBroker::PrivateBroker(const Options& options)
    : dir_(makeTempDir("warren-broker")),
      port_(options.port != 0 ? options.port : freeLoopbackPort()) {
  if (options.tls) {
    do {
      tls_port_ = freeLoopbackPort();
    } while (tls_port_ == port_ || tls_port_ == port_ + kDistributionOffset);
  }
  start();
}

PrivateBroker::~PrivateBroker() {
  try {
    stop();
    std::filesystem::remove_all(dir_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stopping the test broker: %s\n", e.what());
  }
}

std::string PrivateBroker::url() const {
  return "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/%2f";
}

std::string PrivateBroker::tlsUrl() const {
  if (tls_port_ == 0) throw std::logic_error("tlsUrl(): this broker has no TLS listener");
  return "amqps://guest:guest@localhost:" + std::to_string(tls_port_) + "/%2f";
}

std::filesystem::path PrivateBroker::certDir() const {
  if (tls_port_ == 0) throw std::logic_error("certDir(): this broker has no TLS listener");
  return dir_ / "tls";
}

void PrivateBroker::start() {
  std::string command = kScript + " start " + quoted(dir_.string()) + " " + std::to_string(port_);
  if (tls_port_ != 0) command += " --tls " + std::to_string(tls_port_);
  try {
    runCommand(command);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "\n--- broker log ---\n" + log());
  }
  running_ = true;
}

void PrivateBroker::stop() {
  if (!running_) return;
  runCommand(kScript + " stop " + quoted(dir_.string()));
  running_ = false;
}

void PrivateBroker::kill() {
  if (!running_) return;
  runCommand(kScript + " kill " + quoted(dir_.string()));
  running_ = false;
}

std::string PrivateBroker::ctl(const std::string& arguments) const {
  return runCommand(kScript + " ctl " + quoted(dir_.string()) + " " + arguments);
}

std::string PrivateBroker::queueState(const std::string& queue) const {
  std::istringstream lines(
      ctl("list_queues -q --no-table-headers name messages_ready messages_unacknowledged "
          "consumers"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != queue) continue;
    std::string ready, unacked, consumers;
    fields >> ready >> unacked >> consumers;
    return ready + " " + unacked + " " + consumers;
  }
  return "";
}

std::string PrivateBroker::log() const { return filesIn(dir_ / "log"); }

PrivateCluster::PrivateCluster()
    : dir_(makeTempDir("warren-cluster")), port_(freeLoopbackPorts(kNodes)) {
  try {
    // A failed start stops the nodes it started (the logs stay in dir_).
    runCommand(kClusterScript + " start " + quoted(dir_.string()) + " " + std::to_string(port_));
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "\n--- cluster logs (in " + dir_.string() +
                             ") ---\n" + log());
  }
  running_.fill(true);
}

PrivateCluster::~PrivateCluster() {
  try {
    runCommand(kClusterScript + " stop " + quoted(dir_.string()));
    std::filesystem::remove_all(dir_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stopping the test cluster (logs kept in %s): %s\n", dir_.c_str(),
                 e.what());
  }
}

void PrivateCluster::checkNode(int node) const {
  if (node < 1 || node > kNodes) {
    throw std::out_of_range("PrivateCluster: node " + std::to_string(node) + " is not 1.." +
                            std::to_string(kNodes));
  }
}

int PrivateCluster::port(int node) const {
  checkNode(node);
  return port_ + node - 1;
}

std::string PrivateCluster::url(int node) const {
  return "amqp://guest:guest@127.0.0.1:" + std::to_string(port(node)) + "/%2f";
}

std::vector<std::string> PrivateCluster::urls() const {
  std::vector<std::string> all;
  for (int node = 1; node <= kNodes; ++node) all.push_back(url(node));
  return all;
}

std::string PrivateCluster::nodeName(int node) const {
  return "warren" + std::to_string(port(node)) + "@localhost";
}

int PrivateCluster::nodeIndex(const std::string& node_name) const {
  for (int node = 1; node <= kNodes; ++node) {
    if (nodeName(node) == node_name) return node;
  }
  return 0;
}

void PrivateCluster::kill(int node) {
  checkNode(node);
  if (!running_[node - 1]) return;
  runCommand(kClusterScript + " kill " + quoted(dir_.string()) + " " + std::to_string(node));
  running_[node - 1] = false;
}

void PrivateCluster::restart(int node) {
  checkNode(node);
  try {
    runCommand(kClusterScript + " restart " + quoted(dir_.string()) + " " + std::to_string(node));
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "\n--- cluster logs ---\n" + log());
  }
  running_[node - 1] = true;
}

bool PrivateCluster::running(int node) const {
  checkNode(node);
  return running_[node - 1];
}

std::string PrivateCluster::ctl(int node, const std::string& arguments) const {
  checkNode(node);
  return runCommand(kClusterScript + " ctl " + quoted(dir_.string()) + " " + std::to_string(node) +
                    " " + arguments);
}

int PrivateCluster::firstRunningNode() const {
  for (int node = 1; node <= kNodes; ++node) {
    if (running_[node - 1]) return node;
  }
  throw std::logic_error("PrivateCluster: no node runs");
}

std::vector<std::string> PrivateCluster::queueFields(const std::string& queue,
                                                     const std::string& items) const {
  std::istringstream lines(
      ctl(firstRunningNode(), "list_queues -q --no-table-headers name " + items));
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields = tabFields(line);
    if (fields.front() != queue) continue;
    fields.erase(fields.begin());
    return fields;
  }
  return {};
}

std::string PrivateCluster::queueState(const std::string& queue) const {
  const std::vector<std::string> fields =
      queueFields(queue, "messages_ready messages_unacknowledged consumers");
  if (fields.size() != 3 || fields[0].empty()) return "";
  return fields[0] + " " + fields[1] + " " + fields[2];
}

std::string PrivateCluster::leaderOf(const std::string& queue) const {
  const std::vector<std::string> fields = queueFields(queue, "leader");
  return fields.empty() ? "" : fields[0];
}

std::string PrivateCluster::log() const {
  std::string text;
  for (int node = 1; node <= kNodes; ++node) {
    text += "=== node " + std::to_string(node) + " (" + nodeName(node) + ")\n" +
            filesIn(dir_ / ("node" + std::to_string(node)) / "log");
  }
  return text;
}

void BrokerEnvironment::SetUp() { environmentBroker() = std::make_unique<PrivateBroker>(port_); }

void BrokerEnvironment::TearDown() {
  auto& broker = environmentBroker();
  if (broker && ::testing::UnitTest::GetInstance()->failed_test_count() > 0) {
    std::fprintf(stderr, "\n--- RabbitMQ log (a test failed) ---\n%s\n", broker->log().c_str());
  }
  broker.reset();
}

PrivateBroker& BrokerEnvironment::broker() {
  auto& broker = environmentBroker();
  if (!broker) throw std::logic_error("BrokerEnvironment is not set up");
  return *broker;
}

}  // namespace warren::test
