// SPDX-License-Identifier: Apache-2.0
// The HTTP endpoint of warrend's metrics port: GET /metrics (Prometheus text
// exposition) and GET /ready (200 "ready" or 503 "not ready: why").
//
// Built on civetweb directly rather than prometheus::Exposer: the Exposer
// (prometheus-cpp 1.0.1) owns its civetweb server privately and passes it no
// user context, so a second path with its own status codes could only be
// added through a process-wide callback. civetweb's request handlers carry a
// per-handler pointer, which keeps each server's state its own.
#pragma once

#include <prometheus/collectable.h>

#include <cstdint>
#include <memory>

#include "config.h"
#include "readiness.h"

struct mg_connection;
struct mg_context;

namespace warren {

class MetricsHttpServer {
 public:
  // Listens on `listen` (port 0: any free port, see port()) with two worker
  // threads. Throws std::runtime_error "metrics.listen HOST:PORT: cannot
  // listen: REASON" (e.g. "Address already in use").
  MetricsHttpServer(const ListenAddress& listen,
                    std::shared_ptr<prometheus::Collectable> collectable, ReadinessCheck ready);
  // Stops listening and waits for the requests being answered.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Whether IPv6 addresses can be served: Debian 12's civetweb is built
  // without IPv6, so there the answer is no.
  static bool supportsIpv6() noexcept;

  const ListenAddress& listen() const noexcept { return listen_; }
  // The port bound: listen().port, or the one chosen for port 0.
  std::uint16_t port() const noexcept { return port_; }

 private:
  static int serveMetrics(mg_connection* connection, void* self) noexcept;
  static int serveReady(mg_connection* connection, void* self) noexcept;

  ListenAddress listen_;
  std::shared_ptr<prometheus::Collectable> collectable_;
  ReadinessCheck ready_;
  mg_context* context_ = nullptr;
  std::uint16_t port_ = 0;
};

}  // namespace warren
