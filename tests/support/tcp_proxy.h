// SPDX-License-Identifier: Apache-2.0
// A loopback TCP proxy that a test puts between a client (warrend, the
// client library) and a real server (RabbitMQ) to play a peer that gets
// stuck or vanishes: pause() stops all forwarding, so the kernel buffers
// fill and the peers' sends block as they would against a peer that stops
// reading; cut() drops every connection while new ones are still accepted.
//
// One I/O thread forwards both directions of every connection with poll().
// pause(), resume() and cut() return once that thread has applied them.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace warren::test {

class TcpProxy {
 public:
  // Listens on 127.0.0.1 on a free port; each accepted connection gets its
  // own connection to target_host:target_port (an IPv4 address). Throws
  // std::runtime_error, with the errno text, when it cannot listen.
  explicit TcpProxy(int target_port, std::string target_host = "127.0.0.1");
  // Closes every connection and the listening socket.
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const noexcept;

  // No more reading or writing on any connection, existing or accepted from
  // now on, in either direction, until resume(). Bytes already read stay
  // buffered in the proxy.
  void pause();
  // Forwarding continues where it stopped: nothing lost or reordered.
  void resume();
  // Resets (SO_LINGER 0) every current connection, both sides; the proxy
  // keeps listening. A pause stays in force.
  void cut();

  // Proxied connections open right now: accepted, and not yet closed.
  int connections() const;
  // Waits until connections() == count; false on timeout.
  bool waitForConnections(int count, std::chrono::milliseconds timeout) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace warren::test
