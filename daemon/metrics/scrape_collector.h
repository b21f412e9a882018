// SPDX-License-Identifier: Apache-2.0
// What one GET /metrics collects: the warren_ families of the registry,
// `warren_ready` (what GET /ready would answer, as 1 or 0, so that an alert
// can see it), and the process_* families (process_metrics.h).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <memory>
#include <vector>

#include "readiness.h"

namespace warren {

class ScrapeCollector : public prometheus::Collectable {
 public:
  ScrapeCollector(std::shared_ptr<prometheus::Registry> registry, ReadinessCheck ready);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  ReadinessCheck ready_;
};

}  // namespace warren
