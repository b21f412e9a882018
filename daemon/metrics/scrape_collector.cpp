// SPDX-License-Identifier: Apache-2.0
#include "scrape_collector.h"

#include <exception>
#include <utility>

#include "process_metrics.h"

namespace warren {

ScrapeCollector::ScrapeCollector(std::shared_ptr<prometheus::Registry> registry,
                                 ReadinessCheck ready)
    : registry_(std::move(registry)), ready_(std::move(ready)) {}

std::vector<prometheus::MetricFamily> ScrapeCollector::Collect() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  prometheus::MetricFamily ready{
      "warren_ready",
      "1 when GET /ready answers 200: every configured queue has all its consumers connected and "
      "not all of them held by handlers past handler_timeout; else 0 (GET /ready says why).",
      prometheus::MetricType::Gauge,
      {prometheus::ClientMetric{}}};
  try {
    ready.metric.front().gauge.value = ready_ && ready_().ready ? 1 : 0;
  } catch (const std::exception&) {
    ready.metric.front().gauge.value = 0;  // as GET /ready: a check that fails is not ready
  }
  families.push_back(std::move(ready));
  for (auto& family : collectProcessMetrics()) families.push_back(std::move(family));
  return families;
}

}  // namespace warren
