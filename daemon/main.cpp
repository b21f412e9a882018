// SPDX-License-Identifier: Apache-2.0
// warrend: parse arguments, wait for signals, let the Supervisor do the rest.
//
// Signals are blocked in every thread and taken here with sigtimedwait(), so
// a reload or a stop runs on this thread, never in a signal handler. The
// same loop tells systemd how things are (sd_notify) and pings its watchdog
// while the consumers make progress.
//
// Exit codes (docs/operations.md): 0 clean stop, 1 runtime failure,
// 2 usage error, 70 an exit warrend did not ask for (EX_SOFTWARE: a plugin
// called exit()), 78 configuration error (EX_CONFIG).
#include "config.h"
#include "config_check.h"
#include "plugin_instance.h"
#include "plugin_worker.h"
#include "service_notifier.h"
#include "supervisor.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnexpected = 70;
constexpr int kExitConfig = 78;

// Set once main() returns its own status. The only process-wide flag of
// warrend: an atexit() handler takes no argument.
std::atomic<bool> exit_expected{false};

// Runs at any exit(): one main() did not ask for (a plugin's exit(0), say)
// would otherwise end a serving daemon with its status, 0 looking like a
// clean stop to systemd's Restart=on-failure.
void onExit() {
  if (exit_expected.load()) return;
  std::string line = "warrend: exit() was called ";
  if (const warren::PluginInstance* handler = warren::handlerRunningOnThisThread()) {
    line += "while the handler of queue '" + handler->queue() + "' (plugin '" +
            handler->library().name() + "') ran";
  } else {
    line += "by code other than warrend's (a plugin or library thread)";
  }
  line += "; warrend did not ask to stop: exiting with status " + std::to_string(kExitUnexpected) +
          " (EX_SOFTWARE) so that the service manager sees a failure\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  std::_Exit(kExitUnexpected);
}

// How often the loop looks at readiness and progress when nothing arrives.
constexpr std::chrono::milliseconds kTick{500};
// While stopping, the first look at the drain comes this soon after the stop,
// and each next one twice as late, up to kTick: an idle daemon exits within
// milliseconds, a long drain costs a handful of wake-ups.
constexpr std::chrono::milliseconds kFirstDrainTick{4};

struct Options {
  std::string config_path = "/etc/warren/warren.yaml";
  std::string plugin_dir;
  std::string log_level;
};

// stderr, as logging.format asks: text lines (journald stamps time and
// level itself; elsewhere print them), or the JSON lines that the
// Supervisor's loggers format (json_log_sink.h), written as they are.
std::shared_ptr<spdlog::sinks::sink> makeSink(const std::string& format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  if (format == "json") {
    sink->set_pattern("%v");
  } else {
    sink->set_pattern(std::getenv("JOURNAL_STREAM") != nullptr
                          ? "[%n] [%l] %v"
                          : "%Y-%m-%d %H:%M:%S.%e [%n] [%l] %v");
  }
  return sink;
}

// The file, with the command line's overrides applied. Throws ConfigError.
warren::Config loadConfig(const Options& options) {
  warren::Config config = warren::loadConfig(options.config_path);
  if (!options.plugin_dir.empty()) {
    config.plugin_dir = std::filesystem::absolute(options.plugin_dir);
    for (auto& queue : config.queues) {
      if (!queue.isExec()) queue.plugin_path = config.plugin_dir / (queue.handler + ".so");
    }
  }
  if (!options.log_level.empty()) config.logging.level = options.log_level;
  return config;
}

int checkOnly(const Options& options) {
  std::vector<std::string> errors;
  try {
    errors = warren::checkConfig(loadConfig(options));
  } catch (const warren::ConfigError& e) {
    errors = e.errors();  // every error of the file, not only the first
  }
  for (const std::string& error : errors) std::cerr << error << "\n";
  if (!errors.empty()) {
    std::cerr << options.config_path << ": " << errors.size() << " error(s)\n";
    return kExitConfig;
  }
  std::cout << options.config_path << ": configuration OK\n";
  return 0;
}

const char* signalName(int signal) {
  switch (signal) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    default:
      return "SIGTERM";
  }
}

// Runs until SIGTERM or SIGINT, then until every queue has drained; reloads
// on SIGHUP. Never waits for a drain itself: queues retired by a reload or a
// stop are collected on each tick, so signals and the watchdog keep being
// answered however long a handler takes.
void serve(warren::Supervisor& supervisor, const Options& options, const sigset_t& signals) {
  const warren::ServiceNotifier notifier;
  const auto watchdog =
      std::chrono::duration_cast<std::chrono::milliseconds>(notifier.watchdogInterval());
  const auto tick = watchdog.count() > 0 ? std::min(kTick, watchdog / 4) : kTick;
  auto next_ping = std::chrono::steady_clock::now();
  bool ready = false;
  bool stopping = false;
  auto drain_tick = kFirstDrainTick;
  std::string status;

  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (stopping) {
      if (supervisor.drained()) return;
    } else {
      supervisor.reap();
      if (!ready && supervisor.readiness().ready) {
        ready = true;
        status = supervisor.status();
        notifier.ready(status);
        supervisor.logger().info("ready: {}", status);
      } else if (const std::string current = supervisor.status(); current != status) {
        status = current;
        notifier.status(status);
      }
    }
    // Only while every consumer comes round as it promised: a hung thread
    // stops the pings and systemd restarts warrend.
    if (watchdog.count() > 0 && now >= next_ping && supervisor.makingProgress()) {
      notifier.watchdog();
      next_ping = now + watchdog / 2;
    }

    auto wait_for = tick;
    if (stopping) {
      wait_for = std::min(drain_tick, tick);
      drain_tick = std::min(2 * drain_tick, tick);
    }
    timespec wait{0, static_cast<long>(std::chrono::nanoseconds(wait_for).count())};
    const int signal = sigtimedwait(&signals, nullptr, &wait);
    if (signal < 0) continue;  // EAGAIN: the tick; EINTR: look again
    if (stopping) {
      supervisor.logger().info("{}: already stopping, waiting for the queues to drain",
                               signalName(signal));
      continue;
    }
    if (signal == SIGHUP) {
      notifier.reloading("reloading " + options.config_path);
      try {
        supervisor.reload(loadConfig(options));
        supervisor.metrics().recordReload(true);
      } catch (const warren::ConfigError& e) {
        supervisor.metrics().recordReload(false);
        // One log line per error: the file's errors are many lines.
        for (const std::string& error : e.errors()) {
          supervisor.logger().error("reload rejected, the running configuration stays: {}", error);
        }
      } catch (const std::exception& e) {
        supervisor.metrics().recordReload(false);
        supervisor.logger().error("reload rejected, the running configuration stays: {}", e.what());
      }
      status = supervisor.status();
      // READY=1 ends the reload for systemd; before the first READY=1 it
      // would claim a readiness not reached yet.
      if (ready) {
        notifier.ready(status);
      } else {
        notifier.status(status);
      }
      continue;
    }
    supervisor.logger().info("{}: stopping", signalName(signal));
    notifier.stopping("draining");
    supervisor.requestStop();
    stopping = true;
  }
}

// The end of --help, and of warrend(8), which is made from --help.
constexpr const char* kHelpFooter = R"(Exit status:
  0   stopped by SIGTERM or SIGINT, or --check, --help or --version succeeded
  1   a runtime failure, logged; among them the metrics address cannot be
      listened on (the port is taken, or the address is not this machine's)
  2   a bad command line
  70  an exit() warrend did not ask for: a plugin or a library called it
      while serving (stderr names the queue and plugin), never a clean stop
  78  a configuration error: the file, a plugin, or a plugin's options

Signals:
  SIGTERM, SIGINT  stop gracefully: no new requests, the ones not started go
                   back to the broker, those in progress finish within
                   shutdown.drain_timeout, are answered and acked; exit 0
  SIGHUP           reload the configuration file; a file or plugin that
                   fails leaves the running configuration serving

Files:
  /etc/warren/warren.yaml   the configuration file, warren.yaml(5)
  /usr/lib/warren/plugins   the handler plugins (plugins.dir)

Documentation:
  warren.yaml(5), warren-call(1), warren-bench(1), and in
  /usr/share/doc/warren: operations.md (signals, reload, logs, systemd,
  faults), configuration.md, metrics.md, protocol.md, plugins.md,
  exec-handlers.md)";

int run(int argc, char** argv) {
  CLI::App app{"warrend: serves RPC requests from RabbitMQ queues with handler plugins", "warrend"};
  app.set_version_flag("--version", std::string("warrend ") + WARREN_VERSION);
  app.footer(kHelpFooter);
  Options options;
  bool check = false;
  std::string check_path;
  app.add_option("-c,--config", options.config_path, "The YAML configuration file")
      ->type_name("FILE")
      ->capture_default_str();
  app.add_option("--plugin-dir", options.plugin_dir,
                 "Load plugins from this folder instead of the file's plugins.dir")
      ->type_name("DIR");
  app.add_option("--log-level", options.log_level, "Log at this level, overriding logging.level")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_flag("--check", check,
               "Validate the --config file and load its plugins, print OK or every error, exit "
               "0 or 78");
  app.add_option("--check-config", check_path, "The same for FILE (instead of --check)")
      ->type_name("FILE");
  try {
    app.parse(argc, argv);
    if (check && !check_path.empty()) {
      throw CLI::ExcludesError("--check", "--check-config");
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (!check_path.empty()) {
    options.config_path = check_path;
    check = true;
  }
  if (check) return checkOnly(options);

  // Block the signals before any thread starts, so every thread inherits
  // the mask and only sigtimedwait() in serve() ever sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A plugin (or a library) writing to a closed socket or pipe gets EPIPE,
  // not a signal that would end every queue of the daemon.
  std::signal(SIGPIPE, SIG_IGN);

  try {
    warren::Config config = loadConfig(options);
    auto sink = makeSink(config.logging.format);
    warren::Supervisor supervisor(std::move(config), std::move(sink));
    // Registered once the logger and the other function-local statics
    // exist, so onExit() runs before their destructors (atexit order) and
    // while the consumer threads can still touch them.
    std::atexit(onExit);
    supervisor.start();
    serve(supervisor, options, signals);
    const bool clean = supervisor.wait();  // drained already: only collects the answer
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
    // The same list --check-config prints.
    for (const std::string& error : e.errors()) {
      std::cerr << "warrend: configuration error: " << error << "\n";
    }
    if (e.errors().size() > 1) {
      std::cerr << "warrend: " << options.config_path << ": " << e.errors().size() << " error(s)\n";
    }
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "warrend: " << e.what() << "\n";
    return kExitRuntime;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A worker of an `isolation: process` queue (started by warrend itself,
  // not a command line for people): no CLI, no daemon.
  if (argc >= 2 && std::string_view(argv[1]) == warren::kHandlerWorkerFlag) {
    return warren::runPluginWorker(std::vector<std::string>(argv + 2, argv + argc));
  }
  const int status = run(argc, argv);
  exit_expected.store(true);
  return status;
}
