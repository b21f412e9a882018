// SPDX-License-Identifier: Apache-2.0
// The process_* families every official Prometheus client exports, read
// from /proc/self at each scrape: CPU time, resident and virtual memory,
// open and maximum file descriptors, start time. Dashboards and alerts
// written for any exporter work on warrend unchanged.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace warren {

// The families; a value that cannot be read (no /proc) is left out, not
// reported as 0.
std::vector<prometheus::MetricFamily> collectProcessMetrics();

}  // namespace warren
