#include "supervisor.h"

#include "broker_url.h"
#include "plugin_instance.h"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <utility>

namespace warren {
namespace {

std::vector<std::pair<std::string, std::string>> optionPairs(const QueueConfig& queue) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(queue.options.size());
  for (const QueueOption& option : queue.options) pairs.emplace_back(option.key, option.value);
  return pairs;
}

ConfigError optionError(const Config& config, const QueueConfig& queue,
                        const PluginOptionError& error) {
  SourceMark mark = queue.options_mark;
  std::string key = queue.path + ".options";
  for (const QueueOption& option : queue.options) {
    if (!error.key().empty() && option.key == error.key()) mark = option.mark;
  }
  if (!error.key().empty()) key += "." + error.key();
  return ConfigError(
      formatConfigError(config.file, mark, key,
                        "plugin '" + queue.handler + "' refused its options: " + error.what()));
}

}  // namespace

Supervisor::Supervisor(Config config, std::shared_ptr<spdlog::sinks::sink> sink)
    : config_(std::move(config)), sink_(std::move(sink)), logger_(makeLogger("warrend")) {
  BrokerSettings broker;
  try {
    broker.address = parseBrokerUrl(config_.broker.url);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(formatConfigError(config_.file, SourceMark{}, "broker.url", e.what()));
  }
  broker.connection.heartbeat = config_.broker.heartbeat;
  broker.connection.connect_timeout = config_.broker.connect_timeout;
  broker.reconnect = config_.broker.reconnect;

  logger_->info("warrend {} starting: config {}, broker {} (heartbeat {} ms), {} queue(s)",
                WARREN_VERSION, config_.file.string(), redactBrokerUrl(config_.broker.url),
                config_.broker.heartbeat.count(), config_.queues.size());

  std::map<std::filesystem::path, std::shared_ptr<const PluginLibrary>> libraries;
  for (const QueueConfig& queue : config_.queues) {
    auto& library = libraries[queue.plugin_path];
    if (!library) {
      try {
        library = PluginLibrary::load(queue.plugin_path);
      } catch (const PluginError& e) {
        throw ConfigError(
            formatConfigError(config_.file, queue.handler_mark, queue.path + ".handler", e.what()));
      }
    }
    auto logger = makeLogger(queue.name);
    std::shared_ptr<const PluginInstance> instance;
    try {
      instance =
          std::make_shared<const PluginInstance>(library, queue.name, optionPairs(queue), logger);
    } catch (const PluginOptionError& e) {
      throw optionError(config_, queue, e);
    }
    logger_->info("queue '{}': handler {} {} ({}), {} consumer(s), prefetch {}, max body {} bytes",
                  queue.name, library->name(), library->version(), library->path().string(),
                  queue.consumers, queue.prefetch, queue.max_body_bytes);
    broker.connection.connection_name = "warrend " + queue.name;
    queues_.push_back(std::make_unique<QueueService>(queue, broker, config_.shutdown.drain_timeout,
                                                     std::move(instance), std::move(logger)));
  }
}

Supervisor::~Supervisor() {
  requestStop();
  wait();
}

std::shared_ptr<spdlog::logger> Supervisor::makeLogger(const std::string& name) const {
  auto logger = std::make_shared<spdlog::logger>(name, sink_);
  logger->set_level(spdlog::level::from_str(config_.logging.level));
  logger->flush_on(spdlog::level::info);
  return logger;
}

void Supervisor::start() {
  for (auto& queue : queues_) queue->start();
}

void Supervisor::requestStop() noexcept {
  for (auto& queue : queues_) queue->requestStop();
}

bool Supervisor::wait() {
  bool clean = true;
  for (auto& queue : queues_) {
    queue->join();
    clean = clean && !queue->abandonedHandlers();
  }
  return clean;
}

QueueService& Supervisor::queue(const std::string& name) {
  for (auto& queue : queues_) {
    if (queue->config().name == name) return *queue;
  }
  throw std::out_of_range("no queue named '" + name + "'");
}

bool Supervisor::waitConsuming(std::chrono::steady_clock::time_point deadline) const {
  for (const auto& queue : queues_) {
    if (!queue->waitConsuming(deadline)) return false;
  }
  return true;
}

}  // namespace warren
