#include "metrics_queue.h"

#include <utility>

namespace warren {

QueueMetrics::QueueMetrics(std::shared_ptr<MetricsFamilies> families, std::string queue,
                           std::string handler)
    : families_(std::move(families)),
      queue_(std::move(queue)),
      handler_(std::move(handler)),
      series_(families_->acquire(queue_, handler_)) {}

QueueMetrics::~QueueMetrics() { families_->release(queue_, handler_); }

}  // namespace warren
