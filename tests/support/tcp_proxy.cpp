// SPDX-License-Identifier: Apache-2.0
#include "tcp_proxy.h"
#include "unique_fd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace warren::test {
namespace {

// Small kernel buffers, so that a paused proxy blocks its peers' sends after
// a few hundred KiB instead of several MiB.
constexpr int kSocketBufferBytes = 64 * 1024;
// What the proxy itself holds per direction of a connection.
constexpr std::size_t kPipeBytes = 64 * 1024;
// How long pause(), resume() and cut() wait for the I/O thread to apply them.
constexpr std::chrono::seconds kCommandTimeout{5};

constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
constexpr short kWritable = POLLOUT | POLLHUP | POLLERR;

std::runtime_error systemError(const std::string& what) {
  const int error = errno;
  return std::runtime_error("TcpProxy: " + what + ": " +
                            std::error_code(error, std::generic_category()).message());
}

bool transient(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

using Fd = UniqueFd;

bool setOption(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof value) == 0;
}

// So that close() sends a RST: the peer sees ECONNRESET, as after a crash.
void resetOnClose(const Fd& fd) {
  if (!fd) return;
  const linger option{/*l_onoff=*/1, /*l_linger=*/0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &option, sizeof option);
}

// One direction of a connection: bytes read from one socket and not yet
// written to the other.
class Pipe {
 public:
  bool empty() const noexcept { return begin_ == end_; }
  bool eof() const noexcept { return eof_; }
  // Whether to read from the source: not after its end, nor when full.
  bool wantsInput() const noexcept { return !eof_ && end_ - begin_ < buffer_.size(); }

  // One recv(); the end of the stream, or an error, ends this direction.
  void fill(int fd) {
    if (end_ == buffer_.size()) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    const ssize_t n = ::recv(fd, buffer_.data() + end_, buffer_.size() - end_, 0);
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
    } else if (n == 0 || !transient(errno)) {
      eof_ = true;
    }
  }

  // One send(); false when the destination is broken.
  bool drain(int fd) {
    const ssize_t n = ::send(fd, buffer_.data() + begin_, end_ - begin_, MSG_NOSIGNAL);
    if (n < 0) return transient(errno);
    begin_ += static_cast<std::size_t>(n);
    if (begin_ == end_) begin_ = end_ = 0;
    return true;
  }

 private:
  std::vector<char> buffer_ = std::vector<char>(kPipeBytes);
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
};

struct Connection {
  Fd down;  // accepted from the client
  Fd up;    // to the target
  bool connecting = true;
  bool broken = false;
  Pipe to_up;
  Pipe to_down;

  short downEvents() const {
    int events = 0;
    if (to_up.wantsInput()) events |= POLLIN;
    if (!to_down.empty()) events |= POLLOUT;
    return static_cast<short>(events);
  }
  short upEvents() const {
    if (connecting) return POLLOUT;
    int events = 0;
    if (to_down.wantsInput()) events |= POLLIN;
    if (!to_up.empty()) events |= POLLOUT;
    return static_cast<short>(events);
  }
  // Done when a side is broken, or has ended and all it sent was passed on.
  bool finished() const {
    return broken || (to_up.eof() && to_up.empty()) || (to_down.eof() && to_down.empty());
  }
};

// An fd with nothing to wait for is left out (-1): poll() would still report
// POLLHUP on it, over and over.
pollfd entry(int fd, short events) { return pollfd{events == 0 ? -1 : fd, events, 0}; }

bool connectSucceeded(int fd) {
  int error = 0;
  socklen_t length = sizeof error;
  return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
}

}  // namespace

class TcpProxy::Impl {
 public:
  Impl(int target_port, const std::string& target_host);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  enum class Command { kPause, kResume, kCut, kStop };

  int port() const noexcept { return port_; }
  void apply(Command command, const char* name);
  int connections() const;
  bool waitForConnections(int count, std::chrono::milliseconds timeout) const;

 private:
  std::uint64_t post(Command command);
  void run();
  bool applyCommands();
  void publishConnections();
  void acceptAll();
  void serve(Connection& connection, short down_events, short up_events);

  sockaddr_in target_{};
  Fd wake_;
  Fd listen_;
  int port_ = 0;

  // The I/O thread's own.
  std::vector<std::unique_ptr<Connection>> connections_;
  bool paused_ = false;
  std::size_t published_ = 0;

  // Shared with the callers, under mutex_.
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<Command> commands_;
  std::uint64_t requested_ = 0;
  std::uint64_t applied_ = 0;
  int open_connections_ = 0;

  std::thread thread_;  // last: it starts once everything above exists
};

TcpProxy::Impl::Impl(int target_port, const std::string& target_host) {
  if (target_port <= 0 || target_port > 65535) {
    throw std::runtime_error("TcpProxy: target port " + std::to_string(target_port) +
                             " is not in 1..65535");
  }
  target_.sin_family = AF_INET;
  target_.sin_port = htons(static_cast<std::uint16_t>(target_port));
  if (::inet_pton(AF_INET, target_host.c_str(), &target_.sin_addr) != 1) {
    throw std::runtime_error("TcpProxy: target host '" + target_host +
                             "' is not an IPv4 address such as 127.0.0.1");
  }

  wake_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_) throw systemError("eventfd");
  listen_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_) throw systemError("socket");
  // Accepted sockets inherit the buffer sizes, which must be set before listen().
  if (!setOption(listen_.get(), SOL_SOCKET, SO_RCVBUF, kSocketBufferBytes) ||
      !setOption(listen_.get(), SOL_SOCKET, SO_SNDBUF, kSocketBufferBytes)) {
    throw systemError("setsockopt SO_RCVBUF/SO_SNDBUF on the listening socket");
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw systemError("cannot bind 127.0.0.1:0");
  }
  if (::listen(listen_.get(), SOMAXCONN) != 0) throw systemError("cannot listen");
  if (::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw systemError("getsockname");
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { run(); });
}

TcpProxy::Impl::~Impl() {
  post(Command::kStop);
  thread_.join();
}

std::uint64_t TcpProxy::Impl::post(Command command) {
  std::uint64_t ticket = 0;
  {
    const std::lock_guard lock(mutex_);
    commands_.push_back(command);
    ticket = ++requested_;
  }
  // Cannot fail: the counter is far from overflowing.
  ::eventfd_write(wake_.get(), 1);
  return ticket;
}

void TcpProxy::Impl::apply(Command command, const char* name) {
  const std::uint64_t ticket = post(command);
  std::unique_lock lock(mutex_);
  if (!changed_.wait_for(lock, kCommandTimeout, [&] { return applied_ >= ticket; })) {
    throw std::runtime_error(std::string("TcpProxy: the I/O thread did not apply ") + name +
                             "() within " + std::to_string(kCommandTimeout.count()) + " s");
  }
}

int TcpProxy::Impl::connections() const {
  const std::lock_guard lock(mutex_);
  return open_connections_;
}

bool TcpProxy::Impl::waitForConnections(int count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return open_connections_ == count; });
}

void TcpProxy::Impl::run() {
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back(pollfd{wake_.get(), POLLIN, 0});
    fds.push_back(pollfd{listen_.get(), POLLIN, 0});
    // Paused: the connections' fds are left out, so nothing is read or
    // written and their hang-ups wait until resume().
    for (const auto& connection : connections_) {
      fds.push_back(entry(connection->down.get(), paused_ ? short{0} : connection->downEvents()));
      fds.push_back(entry(connection->up.get(), paused_ ? short{0} : connection->upEvents()));
    }
    // No timeout: every command, the destructor's included, wakes it.
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;  // callers' commands then time out and say so
    }
    if ((fds[0].revents & POLLIN) != 0) {
      if (applyCommands()) return;
      // The other events of this round may predate the commands: poll again.
      continue;
    }
    const std::size_t polled = connections_.size();
    if ((fds[1].revents & POLLIN) != 0) acceptAll();
    // serve() tries writes without waiting for POLLOUT: never while paused.
    for (std::size_t i = 0; i < polled && !paused_; ++i) {
      serve(*connections_[i], fds[2 + 2 * i].revents, fds[3 + 2 * i].revents);
    }
    std::erase_if(connections_, [](const auto& connection) { return connection->finished(); });
    publishConnections();
  }
}

// Applies the queued commands in order, then acknowledges them all. True on
// kStop.
bool TcpProxy::Impl::applyCommands() {
  eventfd_t ignored = 0;
  ::eventfd_read(wake_.get(), &ignored);
  std::vector<Command> commands;
  std::uint64_t last = 0;
  {
    const std::lock_guard lock(mutex_);
    commands.swap(commands_);
    last = requested_;
  }
  bool stop = false;
  for (const Command command : commands) {
    switch (command) {
      case Command::kPause:
        paused_ = true;
        break;
      case Command::kResume:
        paused_ = false;
        break;
      case Command::kCut:
        for (const auto& connection : connections_) {
          resetOnClose(connection->down);
          resetOnClose(connection->up);
        }
        connections_.clear();
        break;
      case Command::kStop:
        stop = true;
        break;
    }
  }
  {
    const std::lock_guard lock(mutex_);
    applied_ = last;
    open_connections_ = static_cast<int>(connections_.size());
    published_ = connections_.size();
  }
  changed_.notify_all();
  return stop;
}

void TcpProxy::Impl::publishConnections() {
  if (published_ == connections_.size()) return;
  published_ = connections_.size();
  {
    const std::lock_guard lock(mutex_);
    open_connections_ = static_cast<int>(published_);
  }
  changed_.notify_all();
}

// Takes every pending connection, paused or not (the kernel has completed
// the handshake anyway), and starts its upstream connection. A client whose
// upstream cannot even be started is closed at once.
void TcpProxy::Impl::acceptAll() {
  for (;;) {
    Fd down(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!down) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN: all taken
    }
    setOption(down.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    auto connection = std::make_unique<Connection>();
    connection->down = std::move(down);
    connection->up = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!connection->up) continue;
    const int up = connection->up.get();
    setOption(up, SOL_SOCKET, SO_RCVBUF, kSocketBufferBytes);
    setOption(up, SOL_SOCKET, SO_SNDBUF, kSocketBufferBytes);
    setOption(up, IPPROTO_TCP, TCP_NODELAY, 1);
    if (::connect(up, reinterpret_cast<const sockaddr*>(&target_), sizeof target_) == 0) {
      connection->connecting = false;
    } else if (errno != EINPROGRESS) {
      continue;
    }
    connections_.push_back(std::move(connection));
  }
}

// One round of I/O on a connection, for the events poll() reported. Writes
// are tried whenever there is something to write: at worst they get EAGAIN.
void TcpProxy::Impl::serve(Connection& connection, short down_events, short up_events) {
  const int down = connection.down.get();
  const int up = connection.up.get();
  if (connection.connecting) {
    if ((up_events & kWritable) == 0) {
      // Still connecting: take what the client sends, up to a full buffer.
      if (connection.to_up.wantsInput() && (down_events & kReadable) != 0) {
        connection.to_up.fill(down);
      }
      return;
    }
    if (!connectSucceeded(up)) {
      connection.broken = true;  // refused: the client's side is closed too
      return;
    }
    connection.connecting = false;
    up_events = 0;
  }
  if (connection.to_up.wantsInput() && (down_events & kReadable) != 0) connection.to_up.fill(down);
  if (connection.to_down.wantsInput() && (up_events & kReadable) != 0) {
    connection.to_down.fill(up);
  }
  if (!connection.to_up.empty() && !connection.to_up.drain(up)) connection.broken = true;
  if (!connection.to_down.empty() && !connection.to_down.drain(down)) connection.broken = true;
}

TcpProxy::TcpProxy(int target_port, std::string target_host)
    : impl_(std::make_unique<Impl>(target_port, target_host)) {}

TcpProxy::~TcpProxy() = default;

int TcpProxy::port() const noexcept { return impl_->port(); }

void TcpProxy::pause() { impl_->apply(Impl::Command::kPause, "pause"); }

void TcpProxy::resume() { impl_->apply(Impl::Command::kResume, "resume"); }

void TcpProxy::cut() { impl_->apply(Impl::Command::kCut, "cut"); }

int TcpProxy::connections() const { return impl_->connections(); }

bool TcpProxy::waitForConnections(int count, std::chrono::milliseconds timeout) const {
  return impl_->waitForConnections(count, timeout);
}

}  // namespace warren::test
