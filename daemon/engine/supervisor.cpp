// SPDX-License-Identifier: Apache-2.0
#include "supervisor.h"

#include "broker_url.h"
#include "config_check.h"
#include "plugin_instance.h"
#include "plugin_worker.h"
#include "worker_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <utility>

namespace warren {
namespace {

BrokerSettings brokerSettings(const Config& config) {
  BrokerSettings broker;
  broker.addresses = config.broker.addresses;  // validated by the loader
  broker.connection.tls = config.broker.tls;
  broker.connection.login = config.broker.login;
  broker.connection.heartbeat = config.broker.heartbeat;
  broker.connection.connect_timeout = config.broker.connect_timeout;
  broker.reconnect = config.broker.reconnect;
  return broker;
}

// Whether consumers connected with `a` would connect differently with `b`.
bool sameBroker(const BrokerConfig& a, const BrokerConfig& b) {
  // The addresses hold the credentials: a changed password file reconnects.
  return a.addresses == b.addresses && a.tls == b.tls && a.login == b.login &&
         a.heartbeat == b.heartbeat && a.connect_timeout == b.connect_timeout &&
         a.reconnect.initial_delay == b.reconnect.initial_delay &&
         a.reconnect.max_delay == b.reconnect.max_delay;
}

std::string redactedUrls(const BrokerConfig& broker) {
  std::string text;
  for (const std::string& url : broker.urls) {
    text += (text.empty() ? "" : ", ") + redactBrokerUrl(url);
  }
  return text;
}

// Where the first queue's connection opens: a different node for each
// warrend of a cluster's clients, whatever their configuration order.
std::size_t randomFirstAddress() { return std::random_device{}(); }

// "python3 sum_handler.py", for the log.
std::string joinArguments(const std::vector<std::string>& arguments) {
  std::string text;
  for (const std::string& argument : arguments) {
    if (!text.empty()) text += ' ';
    text += argument;
  }
  return text;
}

}  // namespace

Supervisor::Supervisor(Config config, std::shared_ptr<spdlog::sinks::sink> sink,
                       std::filesystem::path worker_program)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      log_format_(config_.logging.format),
      worker_program_(std::move(worker_program)),
      logger_(makeLogger("warrend", config_.logging.level)),
      metrics_(WARREN_VERSION),
      broker_(brokerSettings(config_)),
      next_first_address_(randomFirstAddress()) {
  logger_->info("warrend {} starting: config {}, broker {} (heartbeat {} ms), {} queue(s)",
                WARREN_VERSION, config_.file.string(), redactedUrls(config_.broker),
                config_.broker.heartbeat.count(), config_.queues.size());
  warnOfUnverifiedTls(config_.broker);
  for (const QueueConfig& queue : config_.queues) {
    queues_.push_back(build(config_, queue, broker_));
  }
  publishPluginInfo();
}

void Supervisor::publishPluginInfo() {
  for (const std::string& handler : plugin_info_handlers_) metrics_.removePluginInfo(handler);
  plugin_info_handlers_.clear();
  for (const ServedQueue& queue : queues_) {
    if (!queue.library) continue;  // handler: exec
    const PluginLibrary& library = *queue.library;
    metrics_.setPluginInfo(queue.config.handler, library.name(), library.version(),
                           library.descriptor().abi_major, library.descriptor().abi_minor);
    plugin_info_handlers_.push_back(queue.config.handler);
  }
}

Supervisor::~Supervisor() {
  requestStop();
  wait();
  // /ready reads the queues: no request may come in while they are destroyed.
  metrics_.stopServing();
}

std::shared_ptr<spdlog::logger> Supervisor::makeLogger(const std::string& name,
                                                       const std::string& level,
                                                       LogFields fields) const {
  auto logger = log_format_ == "json"
                    ? std::make_shared<spdlog::logger>(
                          name, std::make_shared<JsonLogSink>(sink_, std::move(fields)))
                    : std::make_shared<spdlog::logger>(name, sink_);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  return logger;
}

Supervisor::ServedQueue Supervisor::build(const Config& config, const QueueConfig& queue,
                                          const BrokerSettings& broker) {
  ServedQueue served;
  served.config = queue;
  served.logger = makeLogger(queue.name, config.logging.level,
                             {{"queue", queue.name}, {"plugin", queue.handler}});
  served.metrics = metrics_.addQueue(queue.name, queue.handler, queue.consumers);
  std::shared_ptr<const Handler> handler;
  if (queue.isExec()) {
    handler =
        startWorkers(config, queue, served,
                     WorkerCommand{{}, queue.command, queue.env, queue.working_directory}, "");
    logger_->info(
        "queue '{}': handler exec [{}] in {}, {} worker(s), prefetch {}, max body {} "
        "bytes",
        queue.name, joinArguments(queue.command), queue.working_directory.string(), queue.consumers,
        queue.prefetch, queue.max_body_bytes);
  } else {
    try {
      served.library = catalog_.load(queue.plugin_path);
    } catch (const PluginError& e) {
      throw ConfigError(pluginErrorMessage(config, queue, e));
    }
    std::shared_ptr<const PluginInstance> instance;
    try {
      // With isolation, created here only to check the options (as
      // --check-config does) and destroyed at once: the workers serve.
      instance = std::make_shared<const PluginInstance>(served.library, queue.name,
                                                        optionPairs(queue), served.logger);
    } catch (const PluginOptionError& e) {
      throw ConfigError(optionErrorMessage(config, queue, e));
    }
    if (queue.isolation == Isolation::kProcess) {
      instance.reset();
      std::vector<std::string> argv = {"warrend"};
      for (std::string& argument :
           pluginWorkerArguments(served.library->path().string(), queue.name)) {
        argv.push_back(std::move(argument));
      }
      handler = startWorkers(config, queue, served,
                             WorkerCommand{worker_program_, std::move(argv), {}, "/"},
                             pluginOptionsFrame(optionPairs(queue)));
    } else {
      handler = std::move(instance);
    }
    const PluginLibrary& library = *served.library;
    logger_->info(
        "queue '{}': handler {} {} ({}){}, {} consumer(s), prefetch {}, max body {} bytes",
        queue.name, library.name(), library.version(), library.path().string(),
        queue.isolation == Isolation::kProcess ? " in worker processes" : "", queue.consumers,
        queue.prefetch, queue.max_body_bytes);
  }
  BrokerSettings queue_broker = broker;
  queue_broker.connection.connection_name = "warrend " + queue.name;
  queue_broker.first_address = next_first_address_++;
  served.service =
      std::make_unique<QueueService>(queue, std::move(queue_broker), config.shutdown.drain_timeout,
                                     std::move(handler), served.logger, served.metrics);
  return served;
}

std::shared_ptr<const Handler> Supervisor::startWorkers(const Config& config,
                                                        const QueueConfig& queue,
                                                        const ServedQueue& served,
                                                        WorkerCommand command,
                                                        std::string init_bytes) {
  WorkerPoolSettings settings;
  settings.queue = queue.name;
  settings.command = std::move(command);
  settings.workers = queue.consumers;
  settings.max_reply_bytes = queue.max_reply_bytes;
  settings.restart_backoff_max = queue.worker_restart_backoff_max;
  settings.init_bytes = std::move(init_bytes);
  try {
    return std::make_shared<const WorkerPool>(std::move(settings), served.logger, served.metrics);
  } catch (const std::system_error& e) {
    throw ConfigError(formatConfigError(
        config.file, queue.handler_mark, queue.path + (queue.isExec() ? ".command" : ".handler"),
        std::string("cannot start the handler's workers: ") + e.what()));
  }
}

void Supervisor::warnOfUnverifiedTls(const BrokerConfig& broker) const {
  const bool tls = std::any_of(broker.addresses.begin(), broker.addresses.end(),
                               [](const BrokerAddress& address) { return address.tls; });
  if (tls && !broker.tls.verify) {
    logger_->warn(
        "broker.tls.verify is false: the broker's certificate is not checked, so anyone on the "
        "path can pose as the broker and read or change every request");
  }
}

void Supervisor::serveMetrics(const MetricsConfig& config) {
  if (!config.enabled) {
    metrics_.stopServing();
    return;
  }
  metrics_.serve(config.listen, [this] { return readiness(); });
  logger_->info("metrics on http://{}/metrics, readiness on /ready", config.listen.toString());
}

void Supervisor::start() {
  serveMetrics(config_.metrics);
  std::lock_guard lock(queues_mutex_);
  for (auto& queue : queues_) queue.service->start();
}

ReloadSummary Supervisor::reload(Config next) {
  logger_->info("reloading {}", next.file.string());
  // Build: everything that can fail happens before anything changes.
  const BrokerSettings broker = brokerSettings(next);
  const bool broker_changed = !sameBroker(config_.broker, next.broker);
  if (broker_changed) warnOfUnverifiedTls(next.broker);
  ReloadSummary summary;
  std::vector<ServedQueue> fresh;  // to start
  std::vector<std::string> kept;   // names of queues that stay as they are
  for (const QueueConfig& queue : next.queues) {
    const auto current = std::find_if(queues_.begin(), queues_.end(), [&](const ServedQueue& q) {
      return q.config.name == queue.name;
    });
    if (current != queues_.end() && !broker_changed && current->config == queue) {
      std::shared_ptr<const PluginLibrary> library;
      try {
        if (!queue.isExec()) library = catalog_.load(queue.plugin_path);
      } catch (const PluginError& e) {
        throw ConfigError(pluginErrorMessage(next, queue, e));
      }
      if (library == current->library) {
        kept.push_back(queue.name);
        continue;
      }
    }
    fresh.push_back(build(next, queue, broker));
    ++(current != queues_.end() ? summary.replaced : summary.added);
  }
  if (next.metrics.enabled != config_.metrics.enabled ||
      !(next.metrics.listen == config_.metrics.listen)) {
    serveMetrics(next.metrics);
  }

  // Start what is new while the running list is untouched: a start that
  // fails (threads) leaves everything serving as it was. `fresh` stops and
  // joins what it started when it goes out of scope with the exception.
  for (ServedQueue& queue : fresh) queue.service->start();

  // Apply: the new list, then retire what it replaces.
  std::size_t retired = 0;
  {
    std::lock_guard lock(queues_mutex_);
    std::vector<ServedQueue> serving;
    serving.reserve(kept.size() + fresh.size());
    retiring_.reserve(retiring_.size() + queues_.size());
    for (ServedQueue& queue : queues_) {
      const bool stays = std::find(kept.begin(), kept.end(), queue.config.name) != kept.end();
      if (stays) {
        serving.push_back(std::move(queue));
      } else {
        queue.service->requestStop();
        retiring_.push_back(std::move(queue));
        ++retired;
      }
    }
    for (ServedQueue& queue : fresh) serving.push_back(std::move(queue));
    queues_ = std::move(serving);
  }
  summary.unchanged = static_cast<int>(kept.size());
  summary.removed = static_cast<int>(retired) - summary.replaced;
  for (ServedQueue& queue : queues_) {
    queue.logger->set_level(spdlog::level::from_str(next.logging.level));
    queue.service->setDrainTimeout(next.shutdown.drain_timeout);
  }
  logger_->set_level(spdlog::level::from_str(next.logging.level));
  if (next.logging.format != log_format_) {
    logger_->warn("reload: logging.format is read at start: still {} (restart warrend for {})",
                  log_format_, next.logging.format);
  }
  broker_ = broker;
  config_ = std::move(next);
  publishPluginInfo();

  logger_->info("reloaded: {} added, {} removed, {} replaced, {} unchanged{}", summary.added,
                summary.removed, summary.replaced, summary.unchanged,
                retired > 0 ? "; the replaced and removed queues drain in the background" : "");
  return summary;
}

std::size_t Supervisor::reap() {
  // Joined without the lock (a join past the drain deadline closes
  // connections): /ready and the watchdog keep reading meanwhile. Only this
  // thread changes the lists, so the services stay where they are.
  std::vector<QueueService*> retiring;
  {
    std::lock_guard lock(queues_mutex_);
    for (const auto& queue : retiring_) retiring.push_back(queue.service.get());
  }
  std::vector<QueueService*> stopped;
  for (QueueService* service : retiring) {
    if (service->tryJoin()) stopped.push_back(service);
  }
  if (stopped.empty()) return retiring.size();
  std::vector<ServedQueue> gone;  // destroyed outside the lock
  std::lock_guard lock(queues_mutex_);
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    if (std::find(stopped.begin(), stopped.end(), it->service.get()) == stopped.end()) {
      ++it;
      continue;
    }
    if (it->service->abandonedHandlers()) ++abandoned_by_reloads_;
    logger_->info("queue '{}' ({} {}): retired", it->config.name,
                  it->library ? it->library->name() : it->config.handler,
                  it->library ? it->library->version() : "");
    gone.push_back(std::move(*it));
    it = retiring_.erase(it);
  }
  return retiring_.size();
}

void Supervisor::requestStop() noexcept {
  std::lock_guard lock(queues_mutex_);
  for (auto& queue : queues_) queue.service->requestStop();
}

std::vector<QueueService*> Supervisor::services() const {
  std::lock_guard lock(queues_mutex_);
  std::vector<QueueService*> services;
  for (const auto& queue : queues_) services.push_back(queue.service.get());
  for (const auto& queue : retiring_) services.push_back(queue.service.get());
  return services;
}

bool Supervisor::drained() {
  bool all = reap() == 0;
  std::vector<QueueService*> serving;
  {
    std::lock_guard lock(queues_mutex_);
    for (const auto& queue : queues_) serving.push_back(queue.service.get());
  }
  for (QueueService* service : serving) all = service->tryJoin() && all;
  return all;
}

bool Supervisor::wait() {
  // Joined without the lock: /ready keeps answering (503) while queues drain.
  // The lists themselves only change on the caller's thread.
  bool clean = true;
  for (QueueService* service : services()) {
    service->join();
    clean = clean && !service->abandonedHandlers();
  }
  std::lock_guard lock(queues_mutex_);
  return clean && abandoned_by_reloads_ == 0;
}

Readiness Supervisor::readiness() const {
  std::lock_guard lock(queues_mutex_);
  Readiness readiness{true, ""};
  const auto notReady = [&](const std::string& why) {
    readiness.ready = false;
    if (!readiness.detail.empty()) readiness.detail += "; ";
    readiness.detail += why;
  };
  for (const auto& queue : queues_) {
    const int consuming = queue.service->consumersConsuming();
    if (consuming != queue.config.consumers) {
      notReady("queue '" + queue.config.name + "': " + std::to_string(consuming) + "/" +
               std::to_string(queue.config.consumers) + " consumers connected");
    } else if (queue.service->consumersHeld() >= queue.config.consumers) {
      // Connected, but serving nothing: every consumer waits on a handler.
      notReady("queue '" + queue.config.name + "': all " + std::to_string(queue.config.consumers) +
               " consumers held by handlers running past handler_timeout (" +
               std::to_string(queue.config.handler_timeout.count()) + " ms)");
    }
  }
  return readiness;
}

bool Supervisor::makingProgress() const {
  std::lock_guard lock(queues_mutex_);
  const auto moving = [](const ServedQueue& q) { return q.service->stalledConsumers() == 0; };
  return std::all_of(queues_.begin(), queues_.end(), moving) &&
         std::all_of(retiring_.begin(), retiring_.end(), moving);
}

std::string Supervisor::status() const {
  std::lock_guard lock(queues_mutex_);
  int consuming = 0;
  int configured = 0;
  for (const auto& queue : queues_) {
    consuming += queue.service->consumersConsuming();
    configured += queue.config.consumers;
  }
  return std::to_string(queues_.size()) + " queue(s), " + std::to_string(consuming) + "/" +
         std::to_string(configured) + " consumers consuming";
}

QueueService& Supervisor::queue(const std::string& name) {
  std::lock_guard lock(queues_mutex_);
  for (auto& queue : queues_) {
    if (queue.config.name == name) return *queue.service;
  }
  throw std::out_of_range("no queue named '" + name + "'");
}

bool Supervisor::waitConsuming(std::chrono::steady_clock::time_point deadline) const {
  for (QueueService* service : services()) {
    if (!service->waitConsuming(deadline)) return false;
  }
  return true;
}

}  // namespace warren
