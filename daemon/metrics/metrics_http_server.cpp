// SPDX-License-Identifier: Apache-2.0
#include "metrics_http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace warren {
namespace {

constexpr const char* kExpositionType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr unsigned kCivetwebIpv6Feature = 8;  // mg_check_feature(): "IPv6 support"
constexpr std::chrono::milliseconds kKnockInterval{5};

std::string errnoText(int error) { return std::generic_category().message(error); }

// civetweb reports every bind failure as "Failed to setup server ports". On
// failure only, bind the address once more ourselves to learn the errno (the
// same SO_REUSEADDR as civetweb, so a TIME_WAIT socket is not "in use").
// Empty when this bind works (the address was freed in between).
std::string bindError(const ListenAddress& listen) {
  const bool ipv6 = listen.isIpv6();
  const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errnoText(errno);
  int error = 0;
  const int on = 1;
  static_cast<void>(::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  if (ipv6) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_port = htons(listen.port);
    static_cast<void>(::inet_pton(AF_INET6, listen.host.c_str(), &address.sin6_addr));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) error = errno;
  } else {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(listen.port);
    static_cast<void>(::inet_pton(AF_INET, listen.host.c_str(), &address.sin_addr));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) error = errno;
  }
  ::close(fd);
  return error == 0 ? std::string() : errnoText(error);
}

// Opens and closes one connection to the server, to wake its listener.
void knock(const ListenAddress& listen, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (listen.host == "0.0.0.0" ||
      ::inet_pton(AF_INET, listen.host.c_str(), &address.sin_addr) != 1) {
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  static_cast<void>(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address));
  ::close(fd);
}

[[noreturn]] void failListen(const ListenAddress& listen, const std::string& reason) {
  throw std::runtime_error("metrics.listen " + listen.toString() + ": cannot listen: " + reason);
}

bool isHead(mg_connection* connection) {
  return std::string_view(mg_get_request_info(connection)->request_method) == "HEAD";
}

// Answers GET and HEAD; any other method gets 405. Returns the status sent,
// which tells civetweb the request was handled.
int respond(mg_connection* connection, int status, const char* content_type,
            const std::string& body) {
  const std::string length = std::to_string(body.size());
  mg_response_header_start(connection, status);
  mg_response_header_add(connection, "Content-Type", content_type, -1);
  mg_response_header_add(connection, "Content-Length", length.c_str(), -1);
  mg_response_header_add(connection, "Cache-Control", "no-store", -1);
  if (status == 405) mg_response_header_add(connection, "Allow", "GET, HEAD", -1);
  mg_response_header_send(connection);
  if (!isHead(connection)) mg_write(connection, body.data(), body.size());
  return status;
}

bool isGetOrHead(mg_connection* connection) {
  const std::string_view method = mg_get_request_info(connection)->request_method;
  return method == "GET" || method == "HEAD";
}

int methodNotAllowed(mg_connection* connection) {
  return respond(connection, 405, kTextType, "only GET and HEAD are served here\n");
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(const ListenAddress& listen,
                                     std::shared_ptr<prometheus::Collectable> collectable,
                                     ReadinessCheck ready)
    : listen_(listen), collectable_(std::move(collectable)), ready_(std::move(ready)) {
  if (listen_.isIpv6() && !supportsIpv6()) {
    failListen(listen_,
               "the HTTP server library (civetweb) was built without IPv6; listen on an IPv4 "
               "address such as 127.0.0.1:" +
                   std::to_string(listen_.port));
  }
  const std::string ports = listen_.toString();
  std::array<const char*, 9> options = {"listening_ports",
                                        ports.c_str(),
                                        "num_threads",
                                        "2",  // a scraper and a load balancer at once
                                        "request_timeout_ms",
                                        "10000",
                                        "enable_keep_alive",
                                        "no",
                                        nullptr};
  mg_callbacks callbacks{};
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.configuration_options = options.data();
  std::array<char, 256> error_text{};
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text.data();
  error.text_buffer_size = error_text.size();

  mg_init_library(0);
  context_ = mg_start2(&init, &error);
  if (context_ == nullptr) {
    mg_exit_library();
    std::string reason = bindError(listen_);
    if (reason.empty()) reason = "civetweb: " + std::string(error_text.data());
    failListen(listen_, reason);
  }
  std::array<mg_server_port, 4> bound{};
  if (mg_get_server_ports(context_, static_cast<int>(bound.size()), bound.data()) > 0) {
    port_ = static_cast<std::uint16_t>(bound[0].port);
  }
  // "$": exactly this path, not /metrics/anything.
  mg_set_request_handler(context_, "/metrics$", &MetricsHttpServer::serveMetrics, this);
  mg_set_request_handler(context_, "/ready$", &MetricsHttpServer::serveReady, this);
}

bool MetricsHttpServer::supportsIpv6() noexcept {
  return mg_check_feature(kCivetwebIpv6Feature) != 0;
}

MetricsHttpServer::~MetricsHttpServer() {
  // civetweb's listener thread polls in rounds of 2 s and sees mg_stop()'s
  // flag only between rounds; a connection ends the round. Knock until
  // mg_stop() returns, so that stopping takes milliseconds rather than up to
  // 2 s (at every shutdown and every test).
  std::atomic<bool> stopped{false};
  std::thread knocker;
  try {
    knocker = std::thread([this, &stopped] {
      while (!stopped.load()) {
        knock(listen_, port_);
        std::this_thread::sleep_for(kKnockInterval);
      }
    });
  } catch (const std::system_error&) {
    // No thread to spare: stopping just takes its 2 s.
  }
  mg_stop(context_);
  stopped.store(true);
  if (knocker.joinable()) knocker.join();
  mg_exit_library();
}

int MetricsHttpServer::serveMetrics(mg_connection* connection, void* self) noexcept {
  const auto& server = *static_cast<const MetricsHttpServer*>(self);
  if (!isGetOrHead(connection)) return methodNotAllowed(connection);
  try {
    const std::string body = prometheus::TextSerializer().Serialize(server.collectable_->Collect());
    return respond(connection, 200, kExpositionType, body);
  } catch (const std::exception& error) {
    return respond(connection, 500, kTextType,
                   std::string("cannot collect the metrics: ") + error.what() + "\n");
  }
}

int MetricsHttpServer::serveReady(mg_connection* connection, void* self) noexcept {
  const auto& server = *static_cast<const MetricsHttpServer*>(self);
  if (!isGetOrHead(connection)) return methodNotAllowed(connection);
  try {
    const Readiness readiness = server.ready_();
    if (readiness.ready) return respond(connection, 200, kTextType, "ready\n");
    return respond(connection, 503, kTextType, "not ready: " + readiness.detail + "\n");
  } catch (const std::exception& error) {
    return respond(connection, 503, kTextType,
                   std::string("not ready: the readiness check failed: ") + error.what() + "\n");
  }
}

}  // namespace warren
