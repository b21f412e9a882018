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

namespace warren::test {
namespace {

const std::string kScript = std::string(WARREN_SOURCE_DIR) + "/scripts/rabbitmq-private";

// The executable's broker: created in SetUp, destroyed in TearDown.
std::unique_ptr<PrivateBroker>& environmentBroker() {
  static std::unique_ptr<PrivateBroker> broker;
  return broker;
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }

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

int freeLoopbackPort() {
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
  // The node also takes port + 20000 for Erlang distribution: keep both in range.
  const int port = ntohs(address.sin_port);
  return port < 45000 ? port : 20000 + port % 20000;
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

PrivateBroker::PrivateBroker(int port) : port_(port != 0 ? port : freeLoopbackPort()) {
  std::string templ = (std::filesystem::temp_directory_path() / "warren-broker-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = templ;
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

void PrivateBroker::start() {
  try {
    runCommand(kScript + " start " + quoted(dir_.string()) + " " + std::to_string(port_));
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
  // tail --pid returns when that process exits: an event, bounded by timeout.
  const std::string pid = "$(cat " + quoted((dir_ / "node.pid").string()) + ")";
  runCommand("pid=" + pid + "; kill -9 $pid && timeout 30 tail --pid=$pid -f /dev/null");
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

std::string PrivateBroker::log() const {
  std::string text;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "log")) {
    std::ifstream file(entry.path());
    std::stringstream content;
    content << file.rdbuf();
    text += "== " + entry.path().filename().string() + "\n" + content.str();
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
