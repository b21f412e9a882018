// SPDX-License-Identifier: Apache-2.0
#include "metrics.h"

#include <prometheus/text_serializer.h>

#include <utility>

#include "metrics_http_server.h"
#include "scrape_collector.h"

namespace warren {

Metrics::Metrics(const std::string& version)
    : families_(std::make_shared<MetricsFamilies>(version)) {}

Metrics::~Metrics() = default;

std::shared_ptr<QueueMetrics> Metrics::addQueue(const std::string& queue,
                                                const std::string& handler,
                                                int consumers_configured) {
  auto metrics = std::make_shared<QueueMetrics>(families_, queue, handler);
  metrics->setConsumersConfigured(consumers_configured);
  return metrics;
}

void Metrics::setPluginInfo(const std::string& handler, const std::string& plugin,
                            const std::string& version, int abi_major, int abi_minor) {
  families_->setPluginInfo(handler, plugin, version,
                           std::to_string(abi_major) + "." + std::to_string(abi_minor));
}

void Metrics::removePluginInfo(const std::string& handler) { families_->removePluginInfo(handler); }

void Metrics::recordReload(bool ok) { families_->recordReload(ok); }

Readiness Metrics::consumersReadiness() const { return families_->consumersReadiness(); }

void Metrics::serve(const ListenAddress& listen, ReadinessCheck ready) {
  if (!ready) {
    ready = [families = families_] { return families->consumersReadiness(); };
  }
  // A port can be bound once (0.0.0.0 and 127.0.0.1 included): free it first.
  if (server_ && listen.port != 0 && server_->port() == listen.port) server_.reset();
  auto collector = std::make_shared<ScrapeCollector>(families_->registry(), ready);
  server_ = std::make_unique<MetricsHttpServer>(listen, std::move(collector), std::move(ready));
}

void Metrics::stopServing() { server_.reset(); }

std::uint16_t Metrics::port() const noexcept { return server_ ? server_->port() : 0; }

std::string Metrics::exposition() const {
  return prometheus::TextSerializer().Serialize(families_->registry()->Collect());
}

}  // namespace warren
