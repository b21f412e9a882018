// SPDX-License-Identifier: Apache-2.0
// warrend's Prometheus metrics: the registry of warren_ families, the
// per-queue handles the engine updates, and the HTTP endpoint serving
// /metrics and /ready. docs/metrics.md lists every family.
//
// No global state: the engine owns one Metrics and hands each queue service
// the QueueMetrics returned by addQueue().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "metrics_families.h"
#include "metrics_outcome.h"
#include "metrics_queue.h"
#include "readiness.h"

namespace warren {

class MetricsHttpServer;

class Metrics {
 public:
  // Creates every family, warren_build_info{version} = 1, and stamps the
  // configuration load time (the start-up load counts as a successful one).
  explicit Metrics(const std::string& version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Registers `queue` served by `handler`: its series exist at zero from now
  // on (every outcome included) and warren_consumers_configured{queue} is set.
  // The series go away with the last handle of that (queue, handler): keep
  // the handle while any consumer thread may still use it (a draining queue
  // included). Adding the same pair again while a handle lives shares its
  // series, so a queue kept across a reload keeps its counts.
  std::shared_ptr<QueueMetrics> addQueue(const std::string& queue, const std::string& handler,
                                         int consumers_configured);

  // warren_plugin_info{handler,plugin,version,abi} = 1; setting it again for
  // the same handler (a rebuilt plugin) replaces the previous series.
  void setPluginInfo(const std::string& handler, const std::string& plugin,
                     const std::string& version, int abi_major, int abi_minor);
  void removePluginInfo(const std::string& handler);

  // After a reload (SIGHUP) was applied (ok) or rejected.
  void recordReload(bool ok);

  // Ready when each registered queue has as many consumers connected as
  // configured (from warren_consumers_connected/_configured); not ready
  // before any queue is registered. Thread-safe.
  Readiness consumersReadiness() const;

  // Serves GET /metrics and GET /ready on `listen`. `ready` is called for each
  // /ready request on a server thread; empty means consumersReadiness().
  // Serving again replaces the previous server: the new one is started
  // first, so a failure leaves the old one serving, except on the port already
  // bound, which is freed first. Throws
  // std::runtime_error "metrics.listen HOST:PORT: cannot listen: REASON".
  void serve(const ListenAddress& listen, ReadinessCheck ready = {});
  void stopServing();
  // The port being served (the chosen one when listen.port was 0); 0 when not serving.
  std::uint16_t port() const noexcept;

  // The text exposition /metrics would answer now.
  std::string exposition() const;

 private:
  std::shared_ptr<MetricsFamilies> families_;
  std::unique_ptr<MetricsHttpServer> server_;  // last: stopped before the rest goes
};

}  // namespace warren
