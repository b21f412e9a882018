// warrend: parse arguments, wait for signals, let the Supervisor do the rest.
//
// Exit codes (docs/operations.md): 0 clean stop, 1 runtime failure,
// 2 usage error, 78 configuration error (EX_CONFIG).
#include "config.h"
#include "supervisor.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 78;

std::shared_ptr<spdlog::sinks::sink> makeSink() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  // journald stamps time and level itself; elsewhere print them.
  sink->set_pattern(std::getenv("JOURNAL_STREAM") != nullptr ? "[%n] [%l] %v"
                                                             : "%Y-%m-%d %H:%M:%S.%e [%n] [%l] %v");
  return sink;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"warrend: serves RPC requests from RabbitMQ queues with handler plugins"};
  app.set_version_flag("--version", std::string("warrend ") + WARREN_VERSION);
  std::string config_path = "/etc/warren/warren.yaml";
  std::string plugin_dir;
  bool check_only = false;
  app.add_option("-c,--config", config_path, "YAML configuration file")->capture_default_str();
  app.add_option("--plugin-dir", plugin_dir,
                 "Load plugins from this folder instead of the file's plugins.dir");
  app.add_flag("--check", check_only, "Validate the configuration and plugins, then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only sigwait() below ever sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    warren::Config config = warren::loadConfig(config_path);
    if (!plugin_dir.empty()) {
      config.plugin_dir = std::filesystem::absolute(plugin_dir);
      for (auto& queue : config.queues) {
        queue.plugin_path = config.plugin_dir / (queue.handler + ".so");
      }
    }
    warren::Supervisor supervisor(std::move(config), makeSink());
    if (check_only) {
      std::cout << "configuration OK\n";
      return 0;
    }
    supervisor.start();
    for (;;) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) continue;
      if (signal == SIGHUP) {
        supervisor.logger().warn(
            "SIGHUP: configuration reload is not available in this version; restart warrend "
            "to apply a new configuration");
        continue;
      }
      supervisor.logger().info("{}: stopping", signal == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    supervisor.requestStop();
    const bool clean = supervisor.wait();
    supervisor.logger().info(clean ? "stopped cleanly"
                                   : "stopped; unfinished requests were left to the broker");
    spdlog::shutdown();
    if (!clean) {
      // Handlers that overran the drain timeout still run plugin code on
      // detached threads: leave without running destructors under them.
      std::cout.flush();
      std::_Exit(0);
    }
    return 0;
  } catch (const warren::ConfigError& e) {
    std::cerr << "warrend: configuration error: " << e.what() << "\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "warrend: " << e.what() << "\n";
    return kExitRuntime;
  }
}
