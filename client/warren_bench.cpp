// SPDX-License-Identifier: Apache-2.0
// warren-bench: measure calls per second, latency and client CPU of one
// warren::Client calling the sum queue with a fixed number of calls in flight.
//
//   warren-bench [--broker URL] [--queue sum] [--calls N | --duration SECONDS]
//                [--concurrency C] [--warmup N] [--reply-mode exclusive|direct]
//                [--timeout SECONDS] [--json]
//
// Each completion callback (on the client's I/O thread) checks the reply,
// records the latency and submits the next call; the main thread only waits.
// docs/client.md describes the options and the output.
#include <warren/client.hpp>

#include "broker_flags.h"

#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* kVersion = "warren-bench " WARREN_VERSION;  // from CMake

constexpr int kExitOk = 0;
constexpr int kExitFailures = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConnection = 4;

constexpr std::int64_t kOperandBound = 1'000'000'000'000;  // operands in [-1e12, 1e12]
constexpr double kMaxSeconds = 1e6;
constexpr auto kProgressAfter = std::chrono::seconds(3);
// How long past a call's timeout the bench waits for callbacks before it
// gives up on them (the library should never need it).
constexpr auto kStallGrace = std::chrono::seconds(5);

constexpr const char* kFooter =
    "Bodies are 'a,b' with pseudo-random operands in [-1e12, 1e12]; a reply that\n"
    "is not exactly the decimal sum counts as a wrong answer. Warm-up calls run\n"
    "first, at the same concurrency, and are not measured.\n"
    "\n"
    "Broker URL: --broker, else $WARREN_BROKER_URL, else\n"
    "amqp://guest:guest@localhost:5672/%2f.\n"
    "\n"
    "Exit codes:\n"
    "  0  the run completed without errors, timeouts or wrong answers\n"
    "  1  at least one error, timeout or wrong answer\n"
    "  2  usage error\n"
    "  4  cannot connect to the broker\n"
    "\n"
    "Documentation: warren-bench(1), warrend(8), and /usr/share/doc/warren/client.md.";

using Clock = std::chrono::steady_clock;

std::string checkSeconds(const std::string& value) {
  char* end = nullptr;
  const double seconds = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || *end != '\0' || !(seconds > 0) || seconds > kMaxSeconds) {
    return "expected a number of seconds greater than 0 (at most 1000000), got '" + value + "'";
  }
  return "";
}

std::chrono::microseconds toMicroseconds(double seconds) {
  return std::chrono::microseconds(std::max<long long>(1, std::llround(seconds * 1e6)));
}

double cpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::uint64_t xorshift64(std::uint64_t& state) noexcept {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

// One call in flight: its body, the answer it expects, when it was sent.
struct Slot {
  std::uint64_t random = 0;
  Clock::time_point sent;
  char body[48] = {};
  std::size_t body_size = 0;
  char expected[24] = {};
  std::size_t expected_size = 0;
};

struct Counts {
  std::uint64_t completed = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;  // remote errors, no route, connection failures
  std::uint64_t timeouts = 0;
  std::uint64_t wrong = 0;
  bool cannot_connect = false;
};

// One phase (warm-up or measured run) of calls driven by the callbacks.
class Driver {
 public:
  // Outlives the client it drives (the client's destructor may still run
  // callbacks), so the client is attached after both are built.
  Driver(std::string queue, std::size_t concurrency, std::chrono::milliseconds timeout)
      : queue_(std::move(queue)), slots_(concurrency) {
    options_.timeout = timeout;
    std::uint64_t seed = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    for (Slot& slot : slots_) {
      seed += 0x9e3779b97f4a7c15ULL;
      slot.random = seed | 1;
    }
  }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  void attach(warren::Client& client) { client_ = &client; }

  // Issues `calls` calls (or, with `until`, as many as fit before it) with
  // up to `concurrency` in flight; latencies go to `latencies` when given.
  // Returns once every call of the phase has completed.
  Counts run(std::uint64_t calls, std::optional<Clock::time_point> until,
             std::vector<std::uint32_t>* latencies, bool progress);

  // Stops issuing calls: callbacks still to come (the client's destructor
  // fails the calls in flight) are ignored.
  void abandon() { abandoned_.store(true); }

  const std::string& firstFailure() const { return first_failure_; }
  std::uint64_t completedSoFar() const { return completed_.load(std::memory_order_relaxed); }

 private:
  void submit(std::uint32_t index);
  void onOutcome(std::uint32_t index, warren::CallOutcome&& outcome);
  bool wantsMore(Clock::time_point now);
  void finishOne();

  warren::Client* client_ = nullptr;
  std::string queue_;
  warren::CallOptions options_;
  std::vector<Slot> slots_;

  // Set by run() before the first call, read by the callbacks.
  std::uint64_t target_ = 0;
  std::optional<Clock::time_point> until_;
  std::vector<std::uint32_t>* latencies_ = nullptr;

  std::atomic<std::uint64_t> issued_{0};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> abandoned_{false};
  // Written by the I/O thread only while the phase runs, read after it.
  Counts counts_;
  std::string first_failure_;

  std::mutex mutex_;
  std::condition_variable finished_;
  bool done_ = false;
};

bool Driver::wantsMore(Clock::time_point now) {
  if (stop_.load(std::memory_order_relaxed)) return false;
  if (until_) return now < *until_;
  return issued_.fetch_add(1, std::memory_order_relaxed) < target_;
}

void Driver::submit(std::uint32_t index) {
  Slot& slot = slots_[index];
  const auto operand = [&slot] {
    const std::uint64_t span = 2 * static_cast<std::uint64_t>(kOperandBound) + 1;
    return static_cast<std::int64_t>(xorshift64(slot.random) % span) - kOperandBound;
  };
  const std::int64_t a = operand();
  const std::int64_t b = operand();
  char* const begin = slot.body;
  char* const end = slot.body + sizeof slot.body;
  char* p = std::to_chars(begin, end, a).ptr;
  *p++ = ',';
  p = std::to_chars(p, end, b).ptr;
  slot.body_size = static_cast<std::size_t>(p - begin);
  slot.expected_size = static_cast<std::size_t>(
      std::to_chars(slot.expected, slot.expected + sizeof slot.expected, a + b).ptr -
      slot.expected);
  slot.sent = Clock::now();
  // Two words, trivially copyable: std::function stores it without allocating.
  client_->callAsync(
      queue_, std::string_view(slot.body, slot.body_size), options_,
      [this, index](warren::CallOutcome&& outcome) { onOutcome(index, std::move(outcome)); });
}

void Driver::onOutcome(std::uint32_t index, warren::CallOutcome&& outcome) {
  if (abandoned_.load()) return;
  const auto now = Clock::now();
  const Slot& slot = slots_[index];
  bool correct = false;
  switch (outcome.status) {
    case warren::CallStatus::kOk:
      if (std::string_view(outcome.reply.body) ==
          std::string_view(slot.expected, slot.expected_size)) {
        ++counts_.ok;
        correct = true;
      } else {
        ++counts_.wrong;
        if (first_failure_.empty()) {
          first_failure_ = "wrong answer to " + std::string(slot.body, slot.body_size) + ": '" +
                           outcome.reply.body + "'";
        }
      }
      break;
    case warren::CallStatus::kRemoteError:
      ++counts_.errors;
      break;
    case warren::CallStatus::kTimeout:
      ++counts_.timeouts;
      break;
    case warren::CallStatus::kNotConnected:
      // The client could not reconnect: no point in going on.
      counts_.cannot_connect = true;
      stop_.store(true);
      [[fallthrough]];
    case warren::CallStatus::kNoRoute:
    case warren::CallStatus::kConnectionLost:
    case warren::CallStatus::kRejected:
      ++counts_.errors;
      break;
  }
  if (!outcome.ok() && first_failure_.empty()) {
    first_failure_ = std::string(warren::callStatusName(outcome.status)) +
                     (outcome.error_code.empty() ? "" : " " + outcome.error_code) + ": " +
                     outcome.message;
  }
  // Latencies are those of correct answers: a failure's (an error reply, a
  // wrong answer) says nothing about how fast the queue serves.
  if (correct && latencies_ != nullptr) {
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - slot.sent);
    latencies_->push_back(
        static_cast<std::uint32_t>(std::clamp<std::int64_t>(micros.count(), 0, UINT32_MAX)));
  }
  completed_.fetch_add(1, std::memory_order_relaxed);
  if (wantsMore(now)) {
    submit(index);
  } else {
    finishOne();
  }
}

void Driver::finishOne() {
  if (in_flight_.fetch_sub(1) != 1) return;
  std::lock_guard lock(mutex_);
  done_ = true;
  finished_.notify_all();
}

Counts Driver::run(std::uint64_t calls, std::optional<Clock::time_point> until,
                   std::vector<std::uint32_t>* latencies, bool progress) {
  target_ = calls;
  until_ = until;
  latencies_ = latencies;
  issued_.store(0);
  completed_.store(0);
  stop_.store(false);
  counts_ = Counts{};
  first_failure_.clear();
  done_ = false;

  const auto start = Clock::now();
  std::size_t first = 0;
  while (first < slots_.size() && wantsMore(start)) ++first;
  if (first == 0) return counts_;
  in_flight_.store(first);
  for (std::size_t i = 0; i < first; ++i) submit(static_cast<std::uint32_t>(i));

  // Wait for the end, printing progress once a second when asked to.
  const auto stall_limit = *options_.timeout + kStallGrace;
  std::uint64_t last_completed = 0;
  auto last_change = Clock::now();
  auto last_tick = last_change;
  bool printed = false;
  std::unique_lock lock(mutex_);
  while (!done_) {
    finished_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; });
    if (done_) break;
    const auto now = Clock::now();
    const std::uint64_t completed = completed_.load(std::memory_order_relaxed);
    if (progress && (until_ || now - start >= kProgressAfter)) {
      const double rate = static_cast<double>(completed - last_completed) /
                          std::chrono::duration<double>(now - last_tick).count();
      std::fprintf(stderr, "\r%12llu calls  %10.0f calls/s ",
                   static_cast<unsigned long long>(completed), rate);
      std::fflush(stderr);
      printed = true;
    }
    if (completed != last_completed) last_change = now;
    last_completed = completed;
    last_tick = now;
    if (now - last_change > stall_limit) {
      // Calls whose callbacks never came: count them and stop waiting.
      lock.unlock();
      stop_.store(true);
      abandon();
      counts_.errors += in_flight_.load();
      if (first_failure_.empty()) first_failure_ = "callbacks never ran for calls in flight";
      lock.lock();
      break;
    }
  }
  if (printed) {
    std::fprintf(stderr, "\r%40s\r", "");
    std::fflush(stderr);
  }
  counts_.completed = completed_.load();
  return counts_;
}

std::uint32_t nearestRank(const std::vector<std::uint32_t>& sorted, double percent) {
  if (sorted.empty()) return 0;
  const auto rank =
      static_cast<std::size_t>(std::ceil(percent / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Benchmark a warren sum queue with one warren::Client.", "warren-bench"};
  app.set_version_flag("--version", kVersion);
  app.footer(kFooter);

  warren::BrokerFlags broker;
  std::string queue = "sum";
  std::uint64_t calls = 20000;
  double duration_seconds = 0;
  std::size_t concurrency = 64;
  std::uint64_t warmup = 1000;
  std::string reply_mode = "exclusive";
  double timeout_seconds = 10;
  bool json = false;

  warren::addBrokerFlags(app, broker);
  app.add_option("--queue", queue, "Queue to call; it must answer 'a,b' with the sum")
      ->capture_default_str();
  auto* calls_option = app.add_option("--calls", calls, "Measured calls")
                           ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}))
                           ->capture_default_str();
  auto* duration_option =
      app.add_option("--duration", duration_seconds, "Measure for this many seconds instead")
          ->check(CLI::Validator(checkSeconds, "SECONDS > 0"));
  calls_option->excludes(duration_option);
  app.add_option("--concurrency", concurrency, "Calls in flight at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Calls before the measured run, not measured")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1'000'000'000}))
      ->capture_default_str();
  app.add_option("--reply-mode", reply_mode,
                 "exclusive: one reply queue per client; direct: RabbitMQ direct reply-to")
      ->check(CLI::IsMember({"exclusive", "direct"}))
      ->capture_default_str();
  app.add_option("--timeout", timeout_seconds, "Timeout of each call, in seconds")
      ->check(CLI::Validator(checkSeconds, "SECONDS > 0"))
      ->capture_default_str();
  app.add_flag("--json", json, "Print one line of JSON instead of the table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  const bool by_duration = duration_option->count() > 0;
  const auto timeout =
      std::chrono::ceil<std::chrono::milliseconds>(toMicroseconds(timeout_seconds));

  warren::ClientOptions options;
  warren::applyBrokerFlags(broker, options);
  options.reply_mode = reply_mode == "direct" ? warren::ReplyMode::kDirectReplyTo
                                              : warren::ReplyMode::kExclusiveQueue;
  options.default_timeout = timeout;

  std::vector<std::uint32_t> latencies;
  Counts counts;
  double seconds = 0;
  double cpu_seconds = 0;
  std::string first_failure;
  try {
    Driver driver(queue, concurrency, timeout);
    warren::Client client(options);
    driver.attach(client);

    double warmup_rate = 0;
    if (warmup > 0) {
      const auto start = Clock::now();
      const Counts warm = driver.run(warmup, std::nullopt, nullptr, false);
      warmup_rate = static_cast<double>(warm.completed) /
                    std::chrono::duration<double>(Clock::now() - start).count();
      if (warm.cannot_connect) {
        std::fprintf(stderr, "warren-bench: warm-up: %s\n", driver.firstFailure().c_str());
        driver.abandon();
        return kExitConnection;
      }
      if (warm.ok != warm.completed) {
        std::fprintf(stderr, "warren-bench: warm-up: %llu of %llu calls failed, first: %s\n",
                     static_cast<unsigned long long>(warm.completed - warm.ok),
                     static_cast<unsigned long long>(warm.completed),
                     driver.firstFailure().c_str());
      }
    }

    // Room for every latency, so that the run itself never reallocates
    // (with --duration: twice what the warm-up rate predicts).
    if (by_duration) {
      const double rate = warmup_rate > 0 ? warmup_rate : 50000;
      latencies.reserve(
          static_cast<std::size_t>(std::min(2 * rate * duration_seconds + 1024, 1e9)));
    } else {
      latencies.reserve(calls);
    }

    const bool progress = ::isatty(STDERR_FILENO) == 1 && (!by_duration || duration_seconds > 3);
    const double cpu_start = cpuSeconds();
    const auto start = Clock::now();
    const std::optional<Clock::time_point> until =
        by_duration ? std::optional(start + toMicroseconds(duration_seconds)) : std::nullopt;
    counts = driver.run(by_duration ? 0 : calls, until, &latencies, progress);
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    cpu_seconds = cpuSeconds() - cpu_start;
    first_failure = driver.firstFailure();
    driver.abandon();  // the client's destructor may still fail calls
  } catch (const warren::CallError& e) {
    std::fprintf(stderr, "warren-bench: cannot connect to the broker: %s\n", e.what());
    return kExitConnection;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "warren-bench: bad broker settings: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warren-bench: %s\n", e.what());
    return kExitConnection;
  }

  std::sort(latencies.begin(), latencies.end());
  const std::uint32_t p50 = nearestRank(latencies, 50);
  const std::uint32_t p90 = nearestRank(latencies, 90);
  const std::uint32_t p99 = nearestRank(latencies, 99);
  const std::uint32_t p999 = nearestRank(latencies, 99.9);
  const std::uint32_t max = latencies.empty() ? 0 : latencies.back();
  // The rate is that of correct answers: failed calls (a missing queue
  // fails fast) are no throughput, and without a single correct answer
  // there is no rate and no latency to report.
  const bool measured = counts.ok > 0;
  const double rate = measured && seconds > 0 ? static_cast<double>(counts.ok) / seconds : 0;
  const double cpu_per_call =
      counts.completed > 0 ? cpu_seconds * 1e6 / static_cast<double>(counts.completed) : 0;
  const char* mode = reply_mode == "direct" ? "direct" : "exclusive";
  const auto ull = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  const std::uint64_t failed = counts.errors + counts.timeouts + counts.wrong;

  if (json) {
    char rate_text[32] = "null";
    if (measured) std::snprintf(rate_text, sizeof rate_text, "%.1f", rate);
    std::printf(
        "{\"tool\":\"warren-bench\",\"reply_mode\":\"%s\",\"concurrency\":%zu,\"calls\":%llu,"
        "\"ok\":%llu,\"seconds\":%.3f,\"calls_per_second\":%s,\"p50_us\":%u,\"p90_us\":%u,"
        "\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,\"errors\":%llu,\"timeouts\":%llu,"
        "\"wrong\":%llu,\"cpu_us_per_call\":%.2f}\n",
        mode, concurrency, ull(counts.completed), ull(counts.ok), seconds, rate_text, p50, p90, p99,
        p999, max, ull(counts.errors), ull(counts.timeouts), ull(counts.wrong), cpu_per_call);
  } else {
    std::printf("warren-bench: queue %s, reply mode %s, concurrency %zu\n", queue.c_str(), mode,
                concurrency);
    std::printf("  calls            %llu in %.3f s: %llu answered correctly, %llu failed\n",
                ull(counts.completed), seconds, ull(counts.ok), ull(failed));
    if (measured) {
      std::printf("  calls/s          %.1f (correct answers)\n", rate);
      std::printf("  latency (us)     p50 %u  p90 %u  p99 %u  p99.9 %u  max %u\n", p50, p90, p99,
                  p999, max);
    } else {
      std::printf("  calls/s          none: no call was answered correctly\n");
    }
    std::printf("  errors           %llu  timeouts %llu  wrong %llu\n", ull(counts.errors),
                ull(counts.timeouts), ull(counts.wrong));
    std::printf("  cpu per call     %.2f us (this process, user + sys)\n", cpu_per_call);
  }
  std::fflush(stdout);
  if (!first_failure.empty())
    std::fprintf(stderr, "warren-bench: first failure: %s\n", first_failure.c_str());
  if (counts.cannot_connect) return kExitConnection;
  return counts.errors + counts.timeouts + counts.wrong == 0 ? kExitOk : kExitFailures;
}
