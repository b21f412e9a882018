// SPDX-License-Identifier: Apache-2.0
#include "metrics_families.h"

#include <cmath>
#include <stdexcept>

namespace warren {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;
using prometheus::Registry;

// 1 µs (a trivial handler such as sum takes about that) to 60 s (beyond any
// sane RPC deadline), 1-2.5-5 per decade.
const Histogram::BucketBoundaries kHandlerBuckets = {
    1e-6,  2.5e-6, 5e-6,  10e-6,  25e-6,  50e-6,  100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
    10e-3, 25e-3,  50e-3, 100e-3, 250e-3, 500e-3, 1,      2.5,    5,      10,   30,     60};

Family<Counter>& counter(Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

Family<Gauge>& gauge(Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

Labels queueLabels(const std::string& queue) { return {{"queue", queue}}; }

Labels handlerLabels(const std::string& queue, const std::string& handler) {
  return {{"queue", queue}, {"handler", handler}};
}

}  // namespace

MetricsFamilies::MetricsFamilies(const std::string& version)
    : registry_(std::make_shared<Registry>()),
      received_(counter(*registry_, "warren_requests_received_total",
                        "Requests delivered to warrend, redeliveries included.")),
      finished_(counter(*registry_, "warren_requests_finished_total",
                        "Requests done with, by outcome: ok, an error code, no_reply_to (acked "
                        "without a reply), requeued (handed back to the broker unhandled) or "
                        "reply_refused (no reply can reach reply_to) or lost (not acked: the "
                        "connection failed first; the broker redelivers it).")),
      handler_duration_(prometheus::BuildHistogram()
                            .Name("warren_handler_duration_seconds")
                            .Help("Time spent in the handler plugin per request.")
                            .Register(*registry_)),
      in_progress_(gauge(*registry_, "warren_requests_in_progress",
                         "Requests received and not yet finished.")),
      redelivered_(counter(*registry_, "warren_requests_redelivered_total",
                           "Requests the broker marked as redelivered (a previous delivery was "
                           "not acked).")),
      reply_publish_failures_(counter(*registry_, "warren_reply_publish_failures_total",
                                      "Replies that could not be published (the connection or "
                                      "channel failed); the request is redelivered.")),
      replies_returned_(counter(*registry_, "warren_replies_returned_total",
                                "Replies the broker could not route to their reply_to queue "
                                "(basic.return): the caller had gone.")),
      replies_nacked_(counter(*registry_, "warren_replies_nacked_total",
                              "Replies to persistent requests the broker refused to take "
                              "(basic.nack, e.g. the reply queue is full and rejects "
                              "publishes): the request is acked or dead-lettered without one.")),
      deadline_exceeded_(counter(*registry_, "warren_deadline_exceeded_total",
                                 "Requests answered deadline_exceeded, by stage: queued (the "
                                 "deadline had passed when the request arrived: the handler was "
                                 "not run) or handling (the handler returned after it: its "
                                 "reply was replaced).")),
      worker_events_(counter(*registry_, "warren_worker_events_total",
                             "Handler worker processes (isolation: process, handler: exec), by "
                             "event: crash (it died or broke the worker protocol; while holding "
                             "a request, that request is answered handler_crashed), kill (killed "
                             "at a request's deadline: answered deadline_exceeded) or restart "
                             "(started again after any of those or after it exited).")),
      handlers_held_(gauge(*registry_, "warren_handlers_held",
                           "Handlers in warrend's process that have run longer than their "
                           "queue's handler_timeout and not returned: each holds a consumer.")),
      deferred_in_flight_(gauge(*registry_, "warren_deferred_in_flight",
                                "Requests whose plugin deferred its reply (plugin ABI 1.1) and "
                                "has not completed it yet.")),
      deferred_dropped_(counter(*registry_, "warren_deferred_completions_dropped_total",
                                "Deferred replies completed after warrend had answered their "
                                "request without them, by reason: deadline (answered "
                                "deadline_exceeded) or connection_lost (the broker redelivers "
                                "the request).")),
      consumers_connected_(gauge(*registry_, "warren_consumers_connected",
                                 "Consumers of the queue currently subscribed on the broker.")),
      consumers_configured_(gauge(*registry_, "warren_consumers_configured",
                                  "Consumers the configuration asks for on the queue.")),
      connection_attempts_(counter(*registry_, "warren_broker_connection_attempts_total",
                                   "Attempts to open a broker connection for the queue.")),
      connection_failures_(counter(*registry_, "warren_broker_connection_failures_total",
                                   "Broker connections of the queue that failed to open or were "
                                   "lost.")),
      sessions_lost_(counter(*registry_, "warren_consumer_sessions_lost_total",
                             "Consuming sessions of the queue that ended without warrend asking "
                             "(connection, channel or consumer lost: broker restart, queue "
                             "deleted); each is followed by a reconnect.")),
      broker_blocked_(counter(*registry_, "warren_broker_blocked_total",
                              "connection.blocked notifications on the queue's consumer "
                              "connections: the broker stopped taking publishes (a resource "
                              "alarm), so replies wait.")),
      reloads_(counter(*registry_, "warren_config_reloads_total",
                       "Configuration reloads, by result: success or failure.")),
      last_reload_success_(gauge(*registry_, "warren_config_last_reload_success_timestamp_seconds",
                                 "Unix time of the last successful configuration load (start-up "
                                 "or reload).")),
      last_reload_successful_(gauge(*registry_, "warren_config_last_reload_successful",
                                    "1 if the last reload succeeded (or none was tried), 0 if it "
                                    "failed and an older configuration is serving.")),
      plugin_info_(gauge(*registry_, "warren_plugin_info",
                         "Handler plugins loaded, with their name, version and ABI; always 1.")),
      build_info_(gauge(*registry_, "warren_build_info", "warrend's version; always 1.")),
      reloads_succeeded_(reloads_.Add({{"result", "success"}})),
      reloads_failed_(reloads_.Add({{"result", "failure"}})),
      last_reload_success_time_(last_reload_success_.Add({})),
      last_reload_ok_(last_reload_successful_.Add({})) {
  build_info_.Add({{"version", version}}).Set(1);
  last_reload_success_time_.SetToCurrentTime();
  last_reload_ok_.Set(1);
}

QueueSeries MetricsFamilies::acquire(const std::string& queue, const std::string& handler) {
  const std::lock_guard lock(mutex_);
  const QueueEntry& queue_entry = acquireQueue(queue);
  HandlerEntry& entry = handlers_[{queue, handler}];
  if (entry.users++ == 0) {
    const Labels labels = handlerLabels(queue, handler);
    QueueSeries& series = entry.series;
    series.received = &received_.Add(labels);
    for (const Outcome outcome : kAllOutcomes) {
      Labels with_outcome = labels;
      with_outcome.emplace("outcome", outcomeName(outcome));
      series.finished[outcomeIndex(outcome)] = &finished_.Add(with_outcome);
    }
    series.handler_duration = &handler_duration_.Add(labels, kHandlerBuckets);
    series.in_progress = &in_progress_.Add(labels);
    series.redelivered = &redelivered_.Add(labels);
    series.reply_publish_failures = &reply_publish_failures_.Add(labels);
    series.replies_returned = &replies_returned_.Add(labels);
    series.replies_nacked = &replies_nacked_.Add(labels);
    Labels queued = labels;
    queued.emplace("stage", "queued");
    series.deadline_exceeded_queued = &deadline_exceeded_.Add(queued);
    Labels handling = labels;
    handling.emplace("stage", "handling");
    series.deadline_exceeded_handling = &deadline_exceeded_.Add(handling);
    const auto event = [&](const char* name) {
      Labels with_event = labels;
      with_event.emplace("event", name);
      return &worker_events_.Add(with_event);
    };
    series.worker_restarts = event("restart");
    series.worker_crashes = event("crash");
    series.worker_kills = event("kill");
    series.handlers_held = &handlers_held_.Add(labels);
    series.deferred_in_flight = &deferred_in_flight_.Add(labels);
    const auto dropped = [&](const char* reason) {
      Labels with_reason = labels;
      with_reason.emplace("reason", reason);
      return &deferred_dropped_.Add(with_reason);
    };
    series.deferred_dropped_late = dropped("deadline");
    series.deferred_dropped_lost = dropped("connection_lost");
  }
  QueueSeries series = entry.series;
  series.consumers_connected = queue_entry.consumers_connected;
  series.consumers_configured = queue_entry.consumers_configured;
  series.connection_attempts = queue_entry.connection_attempts;
  series.connection_failures = queue_entry.connection_failures;
  series.sessions_lost = queue_entry.sessions_lost;
  series.broker_blocked = queue_entry.broker_blocked;
  return series;
}

void MetricsFamilies::release(const std::string& queue, const std::string& handler) {
  const std::lock_guard lock(mutex_);
  const auto found = handlers_.find({queue, handler});
  if (found == handlers_.end()) {
    throw std::logic_error("MetricsFamilies::release: queue '" + queue + "' handler '" + handler +
                           "' was not acquired");
  }
  if (--found->second.users == 0) {
    removeHandlerSeries(found->second.series);
    handlers_.erase(found);
  }
  releaseQueue(queue);
}

MetricsFamilies::QueueEntry& MetricsFamilies::acquireQueue(const std::string& queue) {
  QueueEntry& entry = queues_[queue];
  if (entry.users++ == 0) {
    const Labels labels = queueLabels(queue);
    entry.consumers_connected = &consumers_connected_.Add(labels);
    entry.consumers_configured = &consumers_configured_.Add(labels);
    entry.connection_attempts = &connection_attempts_.Add(labels);
    entry.connection_failures = &connection_failures_.Add(labels);
    entry.sessions_lost = &sessions_lost_.Add(labels);
    entry.broker_blocked = &broker_blocked_.Add(labels);
  }
  return entry;
}

void MetricsFamilies::releaseQueue(const std::string& queue) {
  const auto found = queues_.find(queue);
  if (found == queues_.end() || --found->second.users > 0) return;
  const QueueEntry& entry = found->second;
  consumers_connected_.Remove(entry.consumers_connected);
  consumers_configured_.Remove(entry.consumers_configured);
  connection_attempts_.Remove(entry.connection_attempts);
  connection_failures_.Remove(entry.connection_failures);
  sessions_lost_.Remove(entry.sessions_lost);
  broker_blocked_.Remove(entry.broker_blocked);
  queues_.erase(found);
}

void MetricsFamilies::removeHandlerSeries(const QueueSeries& series) {
  received_.Remove(series.received);
  for (Counter* finished : series.finished) finished_.Remove(finished);
  handler_duration_.Remove(series.handler_duration);
  in_progress_.Remove(series.in_progress);
  redelivered_.Remove(series.redelivered);
  reply_publish_failures_.Remove(series.reply_publish_failures);
  replies_returned_.Remove(series.replies_returned);
  replies_nacked_.Remove(series.replies_nacked);
  deadline_exceeded_.Remove(series.deadline_exceeded_queued);
  deadline_exceeded_.Remove(series.deadline_exceeded_handling);
  worker_events_.Remove(series.worker_restarts);
  worker_events_.Remove(series.worker_crashes);
  worker_events_.Remove(series.worker_kills);
  handlers_held_.Remove(series.handlers_held);
  deferred_in_flight_.Remove(series.deferred_in_flight);
  deferred_dropped_.Remove(series.deferred_dropped_late);
  deferred_dropped_.Remove(series.deferred_dropped_lost);
}

void MetricsFamilies::setPluginInfo(const std::string& handler, const std::string& plugin,
                                    const std::string& version, const std::string& abi) {
  const std::lock_guard lock(mutex_);
  Gauge*& info = plugin_infos_[handler];
  if (info != nullptr) plugin_info_.Remove(info);
  info = &plugin_info_.Add(
      {{"handler", handler}, {"plugin", plugin}, {"version", version}, {"abi", abi}});
  info->Set(1);
}

void MetricsFamilies::removePluginInfo(const std::string& handler) {
  const std::lock_guard lock(mutex_);
  const auto found = plugin_infos_.find(handler);
  if (found == plugin_infos_.end()) return;
  plugin_info_.Remove(found->second);
  plugin_infos_.erase(found);
}

void MetricsFamilies::recordReload(bool ok) {
  if (ok) {
    reloads_succeeded_.Increment();
    last_reload_success_time_.SetToCurrentTime();
  } else {
    reloads_failed_.Increment();
  }
  last_reload_ok_.Set(ok ? 1 : 0);
}

Readiness MetricsFamilies::consumersReadiness() const {
  const std::lock_guard lock(mutex_);
  if (queues_.empty()) return {false, "no queue is registered yet"};
  std::string detail;
  for (const auto& [queue, entry] : queues_) {
    const double connected = entry.consumers_connected->Value();
    const double configured = entry.consumers_configured->Value();
    if (connected >= configured) continue;
    if (!detail.empty()) detail += "; ";
    detail += "queue '" + queue + "': " + std::to_string(std::llround(connected)) + "/" +
              std::to_string(std::llround(configured)) + " consumers connected";
  }
  return {detail.empty(), detail};
}

}  // namespace warren
