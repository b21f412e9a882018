// SPDX-License-Identifier: Apache-2.0
// warren-call: call a warren queue from the command line.
//
//   warren-call [--broker URL] [--timeout SECONDS] [--parallel N] [--stdin]
//               [--reply-mode exclusive|direct] QUEUE [BODY...]
//
// One call per BODY (or per non-empty line of standard input with --stdin),
// up to --parallel calls in flight; replies are printed in input order.
// docs/client.md describes the options and the exit codes.
#include <warren/client.hpp>

#include "broker_flags.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr const char* kVersion = "warren-call " WARREN_VERSION;  // from CMake

// Exit codes; when several kinds of failure occur, the highest wins.
constexpr int kExitOk = 0;
constexpr int kExitRemoteError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 3;
constexpr int kExitConnection = 4;
constexpr int kExitNoRoute = 5;
constexpr int kExitRejected = 6;

constexpr double kMaxTimeoutSeconds = 1e6;
constexpr int kMaxParallel = 10000;

constexpr const char* kFooter =
    "Each BODY is one call (with --stdin: each non-empty line of standard input,\n"
    "a trailing CR removed; with --body-file: the whole file). Replies go to\n"
    "stdout, one per line, in input order; failures go to stderr as\n"
    "'warren-call: BODY: STATUS: MESSAGE' (a file's body is named by the file).\n"
    "\n"
    "Broker URL: --broker, else $WARREN_BROKER_URL, else\n"
    "amqp://guest:guest@localhost:5672/%2f.\n"
    "\n"
    "Exit codes (when several occur, the highest wins):\n"
    "  0  every call succeeded\n"
    "  1  at least one error reply from the server\n"
    "  2  usage error\n"
    "  3  at least one call timed out\n"
    "  4  cannot connect to the broker, or the connection was lost\n"
    "  5  no such queue (the broker returned the request)\n"
    "  6  the broker refused the request (a full queue, or one without a majority)\n"
    "\n"
    "Documentation: warren-call(1), warrend(8), and /usr/share/doc/warren/client.md.";

// --timeout: a finite number of seconds, > 0 and at most kMaxTimeoutSeconds.
std::string checkTimeout(const std::string& value) {
  char* end = nullptr;
  const double seconds = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || *end != '\0' || !(seconds > 0) || seconds > kMaxTimeoutSeconds) {
    return "the timeout must be a number of seconds greater than 0 (at most 1000000), got '" +
           value + "'";
  }
  return "";
}

int exitCodeOf(warren::CallStatus status) {
  switch (status) {
    case warren::CallStatus::kOk:
      return kExitOk;
    case warren::CallStatus::kRemoteError:
      return kExitRemoteError;
    case warren::CallStatus::kTimeout:
      return kExitTimeout;
    case warren::CallStatus::kConnectionLost:
    case warren::CallStatus::kNotConnected:
      return kExitConnection;
    case warren::CallStatus::kNoRoute:
      return kExitNoRoute;
    case warren::CallStatus::kRejected:
      return kExitRejected;
  }
  return kExitConnection;
}

std::string describeStatus(const warren::CallOutcome& outcome) {
  switch (outcome.status) {
    case warren::CallStatus::kOk:
      return "ok";
    case warren::CallStatus::kRemoteError:
      return outcome.error_code.empty() ? "error reply" : "error reply " + outcome.error_code;
    case warren::CallStatus::kTimeout:
      return "timeout";
    case warren::CallStatus::kNoRoute:
      return "no such queue";
    case warren::CallStatus::kConnectionLost:
      return "connection lost";
    case warren::CallStatus::kNotConnected:
      return "not connected";
    case warren::CallStatus::kRejected:
      return "refused by the broker";
  }
  return std::string(warren::callStatusName(outcome.status));
}

// The outcomes of all calls, filled in by the client's I/O thread, read in
// input order by the main thread.
struct Results {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::optional<warren::CallOutcome>> outcomes;
  std::vector<std::chrono::steady_clock::time_point> completed_at;
  std::size_t in_flight = 0;

  void record(std::size_t index, warren::CallOutcome&& outcome) {
    const auto now = std::chrono::steady_clock::now();
    // Notified under the lock: once the main thread sees the last outcome it
    // may destroy this object, so nothing of it is touched after the unlock.
    std::lock_guard lock(mutex);
    if (outcomes[index]) return;
    outcomes[index] = std::move(outcome);
    completed_at[index] = now;
    --in_flight;
    changed.notify_one();
  }
};

// Handed to the library with each call: reports the outcome, and if the
// library ever destroys the callback without running it, reports that as a
// lost call instead of waiting forever.
class Completion {
 public:
  Completion(Results& results, std::size_t index) : results_(results), index_(index) {}
  ~Completion() {
    if (!done_) {
      warren::CallOutcome lost;
      lost.status = warren::CallStatus::kConnectionLost;
      lost.message = "the client dropped the call without an answer";
      results_.record(index_, std::move(lost));
    }
  }
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;

  void operator()(warren::CallOutcome&& outcome) {
    done_ = true;
    results_.record(index_, std::move(outcome));
  }

 private:
  Results& results_;
  std::size_t index_;
  bool done_ = false;
};

// Reads one body per line; empty lines are skipped.
std::vector<std::string> readBodies(std::istream& in) {
  std::vector<std::string> bodies;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) bodies.push_back(std::move(line));
  }
  return bodies;
}

// --verbose: what came back with a call, on stderr before its result.
void describeReply(const std::string& label, const warren::CallOutcome& outcome,
                   std::chrono::microseconds elapsed) {
  const bool replied = outcome.ok() || outcome.status == warren::CallStatus::kRemoteError;
  std::fprintf(stderr, "warren-call: %s: %s after %.3f ms\n", label.c_str(),
               replied ? "reply" : describeStatus(outcome).c_str(),
               static_cast<double>(elapsed.count()) / 1000.0);
  if (!replied) return;
  const warren::Reply& reply = outcome.reply;
  std::fprintf(stderr, "warren-call: %s:   content_type: %s\n", label.c_str(),
               reply.content_type.empty() ? "(none)" : reply.content_type.c_str());
  for (const auto& [key, value] : reply.headers) {
    std::fprintf(stderr, "warren-call: %s:   header %s: %s\n", label.c_str(), key.c_str(),
                 value.c_str());
  }
  std::fprintf(stderr, "warren-call: %s:   body: %zu byte(s)\n", label.c_str(), reply.body.size());
}

// --body-file: the whole file (or standard input for "-"), as one body;
// nullopt after saying why it cannot be read.
std::optional<std::string> readWholeFile(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) {
      std::fprintf(stderr, "warren-call: --body-file %s: cannot open: %s\n", path.c_str(),
                   std::strerror(errno));
      return std::nullopt;
    }
    in = &file;
  }
  std::string body((std::istreambuf_iterator<char>(*in)), std::istreambuf_iterator<char>());
  if (in->bad()) {
    std::fprintf(stderr, "warren-call: --body-file %s: cannot read\n", path.c_str());
    return std::nullopt;
  }
  return body;
}

// Prints one finished call; returns its exit code.
int report(const std::string& label, const warren::CallOutcome& outcome) {
  if (outcome.ok()) {
    std::fwrite(outcome.reply.body.data(), 1, outcome.reply.body.size(), stdout);
    std::fputc('\n', stdout);
    return kExitOk;
  }
  std::fflush(stdout);  // keep stdout and stderr in input order on a terminal
  // The library's messages may repeat the status ("connection lost: ..."): say it once.
  const std::string status = describeStatus(outcome);
  std::string_view message = outcome.message;
  if (message.starts_with(status + ": ")) message.remove_prefix(status.size() + 2);
  std::fprintf(stderr, "warren-call: %s: %s: %.*s\n", label.c_str(), status.c_str(),
               static_cast<int>(message.size()), message.data());
  return exitCodeOf(outcome.status);
}

// Makes the calls; labels[i] names bodies[i] in what is printed about it.
int runCalls(warren::Client& client, const std::string& queue,
             const std::vector<std::string>& bodies, const std::vector<std::string>& labels,
             std::chrono::milliseconds timeout, std::size_t parallel, bool verbose) {
  Results results;
  results.outcomes.resize(bodies.size());
  results.completed_at.resize(bodies.size());
  // When each call was made (--verbose).
  std::vector<std::chrono::steady_clock::time_point> sent(bodies.size());
  warren::CallOptions options;
  options.timeout = timeout;

  int exit_code = kExitOk;
  std::size_t next_submit = 0;
  std::size_t next_print = 0;
  while (next_print < bodies.size()) {
    // Fill the window; the library is called without our lock held.
    for (;;) {
      {
        std::lock_guard lock(results.mutex);
        if (next_submit == bodies.size() || results.in_flight >= parallel) break;
        ++results.in_flight;
      }
      const std::size_t index = next_submit++;
      sent[index] = std::chrono::steady_clock::now();
      auto completion = std::make_shared<Completion>(results, index);
      client.callAsync(queue, bodies[index], options, [completion](warren::CallOutcome&& outcome) {
        (*completion)(std::move(outcome));
      });
    }
    // Print what is finished, in input order.
    std::unique_lock lock(results.mutex);
    results.changed.wait(lock, [&] {
      return results.outcomes[next_print].has_value() ||
             (next_submit < bodies.size() && results.in_flight < parallel);
    });
    while (next_print < bodies.size() && results.outcomes[next_print]) {
      const warren::CallOutcome outcome = std::move(*results.outcomes[next_print]);
      const auto completed = results.completed_at[next_print];
      lock.unlock();
      if (verbose) {
        std::fflush(stdout);
        describeReply(
            labels[next_print], outcome,
            std::chrono::duration_cast<std::chrono::microseconds>(completed - sent[next_print]));
      }
      exit_code = std::max(exit_code, report(labels[next_print], outcome));
      ++next_print;
      lock.lock();
    }
    lock.unlock();
    std::fflush(stdout);
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Call a warren queue over RabbitMQ: one call per BODY, replies on stdout.",
               "warren-call"};
  app.set_version_flag("--version", kVersion);
  app.footer(kFooter);

  warren::BrokerFlags broker;
  double timeout_seconds = 30;
  int parallel = 1;
  bool from_stdin = false;
  std::string reply_mode = "exclusive";
  std::string queue;
  std::vector<std::string> bodies;

  warren::addBrokerFlags(app, broker);
  app.add_option("--timeout", timeout_seconds, "Timeout of each call, in seconds (> 0)")
      ->check(CLI::Validator(checkTimeout, "SECONDS > 0"))
      ->capture_default_str();
  app.add_option("--parallel", parallel, "Calls in flight at once")
      ->check(CLI::Range(1, kMaxParallel))
      ->capture_default_str();
  auto* stdin_flag = app.add_flag("--stdin", from_stdin,
                                  "Read the bodies from standard input, one per line "
                                  "(empty lines are skipped)");
  std::vector<std::string> body_files;
  auto* body_file_option =
      app.add_option("--body-file", body_files,
                     "Make one call whose body is the whole of FILE, bytes as they are (newlines "
                     "included; - is standard input); may be given several times")
          ->type_name("FILE");
  bool verbose = false;
  app.add_flag("--verbose", verbose,
               "Also print, on stderr before each result, how long the call took and the "
               "reply's content type, headers and size");
  app.add_option("--reply-mode", reply_mode,
                 "exclusive: one reply queue per client; direct: RabbitMQ direct reply-to")
      ->check(CLI::IsMember({"exclusive", "direct"}))
      ->capture_default_str();
  app.add_option("QUEUE", queue, "Queue to call, e.g. sum")->required();
  auto* body_option = app.add_option("BODY", bodies, "Request body, one call each, e.g. 3,4");
  stdin_flag->excludes(body_option);
  body_file_option->excludes(body_option);
  body_file_option->excludes(stdin_flag);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  if (from_stdin) bodies = readBodies(std::cin);
  // A body is named by itself in messages, one from a file by the file.
  std::vector<std::string> labels = bodies;
  for (const std::string& path : body_files) {
    std::optional<std::string> body = readWholeFile(path);
    if (!body) return kExitUsage;
    bodies.push_back(std::move(*body));
    labels.push_back(path == "-" ? "(standard input)" : path);
  }
  if (bodies.empty()) {
    std::fprintf(stderr,
                 "warren-call: no body given: pass BODY arguments, --stdin or --body-file%s\n",
                 from_stdin ? " with at least one non-empty line" : "");
    std::fprintf(stderr, "Run with --help for more information.\n");
    return kExitUsage;
  }

  const auto timeout = std::chrono::milliseconds(
      std::max<long long>(1, std::llround(std::ceil(timeout_seconds * 1000))));

  warren::ClientOptions options;
  warren::applyBrokerFlags(broker, options);
  options.reply_mode = reply_mode == "direct" ? warren::ReplyMode::kDirectReplyTo
                                              : warren::ReplyMode::kExclusiveQueue;
  options.default_timeout = timeout;

  try {
    warren::Client client(options);
    return runCalls(client, queue, bodies, labels, timeout, static_cast<std::size_t>(parallel),
                    verbose);
  } catch (const warren::CallError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "warren-call: cannot connect to the broker: %s\n", e.what());
    return kExitConnection;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "warren-call: bad broker settings: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "warren-call: %s\n", e.what());
    return kExitConnection;
  }
}
