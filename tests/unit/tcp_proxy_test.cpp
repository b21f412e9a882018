// SPDX-License-Identifier: Apache-2.0
// The test proxy (tests/support/tcp_proxy.h) against loopback sockets the
// test drives itself, and a one-thread echo server: no broker.
#include "tcp_proxy.h"
#include "unique_fd.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using warren::test::TcpProxy;

constexpr auto kTimeout = 10s;
constexpr std::size_t kMiB = 1024 * 1024;

using Fd = warren::test::UniqueFd;

int remainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Bytes that show a loss or a reordering: position i holds a function of i
// that does not repeat every 256 bytes.
std::string pattern(std::size_t offset, std::size_t size, unsigned seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    const std::size_t at = offset + i;
    bytes[i] = static_cast<char>((at * 131 + at / 251 + seed) & 0xff);
  }
  return bytes;
}

// A listening socket on a free loopback port; the test accepts from it.
class Listener {
 public:
  Listener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (!fd_ || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd_.get(), SOMAXCONN) != 0 ||
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
  }
  int port() const noexcept { return port_; }
  int fd() const noexcept { return fd_.get(); }
  // The next connection, non-blocking; an empty Fd on timeout.
  Fd accept(std::chrono::milliseconds timeout) const {
    pollfd entry{fd_.get(), POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(timeout.count())) != 1) return Fd();
    return Fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  }

 private:
  Fd fd_;
  int port_ = 0;
};

// A non-blocking socket connected to 127.0.0.1:port; empty on failure.
Fd connectTo(int port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    if (errno != EINPROGRESS) return Fd();
    pollfd entry{fd.get(), POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (::poll(&entry, 1, static_cast<int>(std::chrono::milliseconds(kTimeout).count())) != 1 ||
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      return Fd();
    }
  }
  return fd;
}

// One socket's part in pump(): what it sends, and how much it must receive.
struct Endpoint {
  Endpoint(int socket, std::string bytes_out, std::size_t bytes_expected)
      : fd(socket), out(std::move(bytes_out)), expect(bytes_expected) {}

  int fd;
  std::string out;
  std::size_t expect;
  std::size_t sent = 0;
  std::string in;
};

// Sends every endpoint's `out` and reads until each has `expect` bytes, all
// at once, so that neither side waits on the other.
::testing::AssertionResult pump(const std::vector<Endpoint*>& endpoints) {
  const auto deadline = Clock::now() + kTimeout;
  std::array<char, 65536> buffer{};
  for (;;) {
    std::vector<pollfd> fds;
    bool all_done = true;
    for (const Endpoint* endpoint : endpoints) {
      int events = 0;
      if (endpoint->sent < endpoint->out.size()) events |= POLLOUT;
      if (endpoint->in.size() < endpoint->expect) events |= POLLIN;
      all_done = all_done && events == 0;
      fds.push_back(pollfd{events == 0 ? -1 : endpoint->fd, static_cast<short>(events), 0});
    }
    if (all_done) return ::testing::AssertionSuccess();
    const int ready = ::poll(fds.data(), fds.size(), remainingMs(deadline));
    if (ready == 0) {
      auto failure = ::testing::AssertionFailure() << "timed out;";
      for (const Endpoint* endpoint : endpoints) {
        failure << " fd " << endpoint->fd << " sent " << endpoint->sent << "/"
                << endpoint->out.size() << ", received " << endpoint->in.size() << "/"
                << endpoint->expect << ";";
      }
      return failure;
    }
    if (ready < 0 && errno != EINTR) return ::testing::AssertionFailure() << "poll failed";
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      Endpoint& endpoint = *endpoints[i];
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
          endpoint.in.size() < endpoint.expect) {
        const ssize_t n = ::recv(endpoint.fd, buffer.data(), buffer.size(), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
          return ::testing::AssertionFailure()
                 << "fd " << endpoint.fd << " closed after " << endpoint.in.size() << " of "
                 << endpoint.expect << " bytes";
        }
        if (n > 0) endpoint.in.append(buffer.data(), static_cast<std::size_t>(n));
      }
      if ((fds[i].revents & POLLOUT) != 0 && endpoint.sent < endpoint.out.size()) {
        const ssize_t n = ::send(endpoint.fd, endpoint.out.data() + endpoint.sent,
                                 endpoint.out.size() - endpoint.sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
          return ::testing::AssertionFailure() << "send on fd " << endpoint.fd << " failed";
        }
        if (n > 0) endpoint.sent += static_cast<std::size_t>(n);
      }
    }
  }
}

// Waits for the peer to close fd: recv() returns 0 or ECONNRESET. Any data
// instead is a failure.
::testing::AssertionResult closedByPeer(int fd) {
  pollfd entry{fd, POLLIN, 0};
  const int ready =
      ::poll(&entry, 1, static_cast<int>(std::chrono::milliseconds(kTimeout).count()));
  if (ready != 1) return ::testing::AssertionFailure() << "fd " << fd << " still open";
  char byte = 0;
  const ssize_t n = ::recv(fd, &byte, 1, 0);
  if (n == 0 || (n < 0 && errno == ECONNRESET)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "fd " << fd << ": recv returned " << n
                                       << (n < 0 ? " with errno " + std::to_string(errno) : "");
}

// Sends from `offset` of the pattern until send() says EAGAIN; returns what
// was sent. Stops at `limit` bytes, which means nothing filled up.
std::string sendUntilFull(int fd, unsigned seed, std::size_t limit) {
  std::string sent;
  while (sent.size() < limit) {
    const std::string chunk = pattern(sent.size(), 16 * 1024, seed);
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      ADD_FAILURE() << "send failed with errno " << errno;
      break;
    }
    sent.append(chunk, 0, static_cast<std::size_t>(n));
  }
  return sent;
}

int bytesWaiting(int fd) {
  int bytes = -1;
  ::ioctl(fd, FIONREAD, &bytes);
  return bytes;
}

// Echoes every byte back, on any number of connections, from one thread.
class EchoServer {
 public:
  EchoServer() : stop_(::eventfd(0, EFD_CLOEXEC)), thread_([this] { run(); }) {}
  ~EchoServer() {
    ::eventfd_write(stop_.get(), 1);
    thread_.join();
  }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  int port() const noexcept { return listener_.port(); }

 private:
  struct Peer {
    Fd fd;
    std::string pending;  // read, not yet echoed; nothing more is read meanwhile
  };

  void run() {
    std::vector<Peer> peers;
    std::array<char, 65536> buffer{};
    for (;;) {
      std::vector<pollfd> fds{{stop_.get(), POLLIN, 0}, {listener_.fd(), POLLIN, 0}};
      for (const Peer& peer : peers) {
        fds.push_back(
            pollfd{peer.fd.get(), static_cast<short>(peer.pending.empty() ? POLLIN : POLLOUT), 0});
      }
      // The destructor's eventfd_write ends the wait.
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if ((fds[0].revents & POLLIN) != 0) return;
      for (std::size_t i = 0; i < peers.size(); ++i) {
        Peer& peer = peers[i];
        if (fds[i + 2].revents == 0) continue;
        if (peer.pending.empty()) {
          const ssize_t n = ::recv(peer.fd.get(), buffer.data(), buffer.size(), 0);
          if (n == 0 || (n < 0 && errno != EAGAIN)) peer.fd.reset();
          if (n > 0) peer.pending.assign(buffer.data(), static_cast<std::size_t>(n));
        } else {
          const ssize_t n =
              ::send(peer.fd.get(), peer.pending.data(), peer.pending.size(), MSG_NOSIGNAL);
          if (n < 0 && errno != EAGAIN) peer.fd.reset();
          if (n > 0) peer.pending.erase(0, static_cast<std::size_t>(n));
        }
      }
      std::erase_if(peers, [](const Peer& peer) { return !peer.fd; });
      if ((fds[1].revents & POLLIN) != 0) {
        Fd accepted = listener_.accept(0ms);
        if (accepted) peers.push_back(Peer{std::move(accepted), {}});
      }
    }
  }

  Listener listener_;
  Fd stop_;
  std::thread thread_;  // last: it starts once everything above exists
};

TEST(TcpProxyTest, ForwardsOneMiBEachWayIntact) {
  const Listener server;
  TcpProxy proxy(server.port());
  const Fd client = connectTo(proxy.port());
  ASSERT_TRUE(client);
  const Fd upstream = server.accept(kTimeout);
  ASSERT_TRUE(upstream) << "the proxy did not connect to its target";

  Endpoint down{client.get(), pattern(0, kMiB, 1), kMiB};
  Endpoint up{upstream.get(), pattern(0, kMiB, 2), kMiB};
  ASSERT_TRUE(pump({&down, &up}));
  // EXPECT_TRUE, not EXPECT_EQ: a mismatch would print two MiB.
  EXPECT_TRUE(up.in == down.out) << "client to server bytes differ";
  EXPECT_TRUE(down.in == up.out) << "server to client bytes differ";
  EXPECT_EQ(proxy.connections(), 1);
}

TEST(TcpProxyTest, EchoesOnManyConnectionsAtOnceAndCountsThem) {
  const EchoServer echo;
  TcpProxy proxy(echo.port());
  EXPECT_EQ(proxy.connections(), 0);

  constexpr int kClients = 4;
  constexpr std::size_t kBytes = 256 * 1024;
  std::vector<Fd> clients;
  std::vector<Endpoint> endpoints;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connectTo(proxy.port()));
    ASSERT_TRUE(clients.back());
    endpoints.push_back(
        Endpoint{clients.back().get(), pattern(0, kBytes, static_cast<unsigned>(10 + i)), kBytes});
  }
  std::vector<Endpoint*> all;
  for (Endpoint& endpoint : endpoints) all.push_back(&endpoint);
  ASSERT_TRUE(pump(all));
  for (const Endpoint& endpoint : endpoints) EXPECT_TRUE(endpoint.in == endpoint.out);
  EXPECT_TRUE(proxy.waitForConnections(kClients, kTimeout)) << proxy.connections();

  // A client that goes away takes its upstream connection with it.
  clients[0].reset();
  clients[1].reset();
  EXPECT_TRUE(proxy.waitForConnections(2, kTimeout)) << proxy.connections();
}

TEST(TcpProxyTest, PauseStopsBothDirectionsAndResumeDeliversEverythingInOrder) {
  const Listener server;
  TcpProxy proxy(server.port());
  const Fd client = connectTo(proxy.port());
  ASSERT_TRUE(client);
  const Fd upstream = server.accept(kTimeout);
  ASSERT_TRUE(upstream);
  Endpoint hello_down{client.get(), "hello", 2};
  Endpoint hello_up{upstream.get(), "hi", 5};
  ASSERT_TRUE(pump({&hello_down, &hello_up}));

  proxy.pause();
  // Had the proxy forwarded anything, the sends below could only fill up
  // once the far side's receive buffer was full: it would have bytes waiting.
  constexpr std::size_t kLimit = 256 * kMiB;
  const std::string sent_down = sendUntilFull(client.get(), 3, kLimit);
  ASSERT_LT(sent_down.size(), kLimit) << "the client's sends never blocked";
  EXPECT_EQ(bytesWaiting(upstream.get()), 0) << "bytes reached the server while paused";
  const std::string sent_up = sendUntilFull(upstream.get(), 4, kLimit);
  ASSERT_LT(sent_up.size(), kLimit) << "the server's sends never blocked";
  EXPECT_EQ(bytesWaiting(client.get()), 0) << "bytes reached the client while paused";

  // Accepted while paused, but not forwarded until resume().
  const Fd late = connectTo(proxy.port());
  ASSERT_TRUE(late);
  ASSERT_EQ(::send(late.get(), "late", 4, MSG_NOSIGNAL), 4);
  EXPECT_TRUE(proxy.waitForConnections(2, kTimeout)) << proxy.connections();

  proxy.resume();
  Endpoint down{client.get(), "", sent_up.size()};
  Endpoint up{upstream.get(), "", sent_down.size()};
  ASSERT_TRUE(pump({&down, &up}));
  EXPECT_TRUE(up.in == sent_down) << "client to server: " << sent_down.size() << " bytes differ";
  EXPECT_TRUE(down.in == sent_up) << "server to client: " << sent_up.size() << " bytes differ";

  const Fd late_upstream = server.accept(kTimeout);
  ASSERT_TRUE(late_upstream);
  Endpoint late_up{late_upstream.get(), "", 4};
  ASSERT_TRUE(pump({&late_up}));
  EXPECT_EQ(late_up.in, "late");
}

TEST(TcpProxyTest, CutResetsBothSidesAndKeepsListening) {
  const Listener server;
  TcpProxy proxy(server.port());
  const Fd client = connectTo(proxy.port());
  ASSERT_TRUE(client);
  const Fd upstream = server.accept(kTimeout);
  ASSERT_TRUE(upstream);
  Endpoint hello{client.get(), "hello", 0};
  Endpoint hello_up{upstream.get(), "", 5};
  ASSERT_TRUE(pump({&hello, &hello_up}));
  EXPECT_EQ(proxy.connections(), 1);

  proxy.cut();
  EXPECT_EQ(proxy.connections(), 0);
  EXPECT_TRUE(closedByPeer(client.get()));
  EXPECT_TRUE(closedByPeer(upstream.get()));

  const Fd again = connectTo(proxy.port());
  ASSERT_TRUE(again);
  const Fd again_upstream = server.accept(kTimeout);
  ASSERT_TRUE(again_upstream);
  Endpoint down{again.get(), "ping", 4};
  Endpoint up{again_upstream.get(), "pong", 4};
  ASSERT_TRUE(pump({&down, &up}));
  EXPECT_EQ(down.in, "pong");
  EXPECT_EQ(up.in, "ping");
  EXPECT_TRUE(proxy.waitForConnections(1, kTimeout)) << proxy.connections();
}

TEST(TcpProxyTest, ClosesTheClientWhenTheTargetRefuses) {
  int port = 0;
  {
    const Listener gone;  // bound and released: nobody listens there now
    port = gone.port();
  }
  TcpProxy proxy(port);
  const Fd client = connectTo(proxy.port());
  ASSERT_TRUE(client);
  EXPECT_TRUE(closedByPeer(client.get()));
  EXPECT_TRUE(proxy.waitForConnections(0, kTimeout)) << proxy.connections();
}

TEST(TcpProxyTest, PassesOnWhatWasSentBeforeASideClosed) {
  const Listener server;
  TcpProxy proxy(server.port());
  constexpr std::size_t kBytes = 100 * 1024;  // more than the proxy holds in one buffer

  // The server says its last words and closes before the client reads any.
  {
    const Fd client = connectTo(proxy.port());
    ASSERT_TRUE(client);
    Fd upstream = server.accept(kTimeout);
    ASSERT_TRUE(upstream);
    Endpoint last_words{upstream.get(), pattern(0, kBytes, 5), 0};
    ASSERT_TRUE(pump({&last_words}));
    upstream.reset();
    Endpoint down{client.get(), "", kBytes};
    ASSERT_TRUE(pump({&down}));
    EXPECT_TRUE(down.in == last_words.out);
    EXPECT_TRUE(closedByPeer(client.get()));
  }
  // And the other way round.
  {
    Fd client = connectTo(proxy.port());
    ASSERT_TRUE(client);
    const Fd upstream = server.accept(kTimeout);
    ASSERT_TRUE(upstream);
    Endpoint last_words{client.get(), pattern(0, kBytes, 6), 0};
    ASSERT_TRUE(pump({&last_words}));
    client.reset();
    Endpoint up{upstream.get(), "", kBytes};
    ASSERT_TRUE(pump({&up}));
    EXPECT_TRUE(up.in == last_words.out);
    EXPECT_TRUE(closedByPeer(upstream.get()));
  }
  EXPECT_TRUE(proxy.waitForConnections(0, kTimeout)) << proxy.connections();
}

TEST(TcpProxyTest, RejectsATargetThatIsNotAnIPv4Address) {
  try {
    const TcpProxy proxy(5672, "rabbit.example");
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("'rabbit.example' is not an IPv4 address"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
