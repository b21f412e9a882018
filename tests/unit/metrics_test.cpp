// SPDX-License-Identifier: Apache-2.0
// Tests of the metrics module (daemon/metrics*.cpp): a real HTTP server on a
// loopback port, scraped over a socket; the text exposition is parsed, never
// grepped.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "metrics.h"
#include "metrics_http_server.h"

namespace warren {
namespace {

using Labels = std::map<std::string, std::string>;

const ListenAddress kAnyLoopbackPort{"127.0.0.1", 0};
constexpr int kHttpDeadlineMs = 10000;

// ---------------------------------------------------------------------------
// A minimal HTTP/1.0 client.

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Connects to 127.0.0.1:port; -1 with errno set when refused.
int connectLoopback(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

HttpResponse parseResponse(const std::string& raw) {
  HttpResponse response;
  const std::size_t end_of_head = raw.find("\r\n\r\n");
  if (end_of_head == std::string::npos) throw std::runtime_error("no end of headers: " + raw);
  const std::string head = raw.substr(0, end_of_head);
  response.body = raw.substr(end_of_head + 4);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (!status_line.starts_with("HTTP/1.")) throw std::runtime_error("bad status: " + status_line);
  response.status = std::stoi(status_line.substr(9, 3));
  while (line_end != std::string::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line = head.substr(start, line_end - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::size_t value_start = line.find_first_not_of(' ', colon + 1);
    response.headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
  }
  return response;
}

HttpResponse request(std::uint16_t port, const std::string& method, const std::string& path) {
  const Fd fd(connectLoopback(port));
  if (fd.get() < 0) throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  const std::string text = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (send(fd.get(), text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error(std::string("send: ") + std::strerror(errno));
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kHttpDeadlineMs);
  std::string raw;
  std::array<char, 8192> buffer{};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd readable{fd.get(), POLLIN, 0};
    if (left.count() <= 0 || poll(&readable, 1, static_cast<int>(left.count())) != 1) {
      throw std::runtime_error("no complete answer within the deadline; got: " + raw);
    }
    const ssize_t size = recv(fd.get(), buffer.data(), buffer.size(), 0);
    if (size < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
    if (size == 0) break;  // HTTP/1.0: the server closes after the answer
    raw.append(buffer.data(), static_cast<std::size_t>(size));
  }
  return parseResponse(raw);
}

HttpResponse get(std::uint16_t port, const std::string& path) { return request(port, "GET", path); }

// ---------------------------------------------------------------------------
// A parser of the Prometheus text exposition format (0.0.4).

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family name -> counter, gauge, histogram...

  // The value of the one sample with exactly these labels; nullopt if absent.
  std::optional<double> value(const std::string& name, const Labels& labels = {}) const {
    std::optional<double> found;
    for (const Sample& sample : samples) {
      if (sample.name != name || sample.labels != labels) continue;
      if (found) throw std::runtime_error("duplicate series " + name);
      found = sample.value;
    }
    return found;
  }

  // Samples of `name` whose labels include `subset`.
  std::vector<Sample> matching(const std::string& name, const Labels& subset = {}) const {
    std::vector<Sample> result;
    for (const Sample& sample : samples) {
      if (sample.name != name) continue;
      bool all = true;
      for (const auto& [key, value] : subset) {
        const auto label = sample.labels.find(key);
        all = all && label != sample.labels.end() && label->second == value;
      }
      if (all) result.push_back(sample);
    }
    return result;
  }
};

Labels parseLabels(const std::string& line, std::size_t& pos) {
  Labels labels;
  ++pos;  // '{'
  while (pos < line.size() && line[pos] != '}') {
    const std::size_t equals = line.find('=', pos);
    if (equals == std::string::npos || line.at(equals + 1) != '"') {
      throw std::runtime_error("bad label in: " + line);
    }
    const std::string key = line.substr(pos, equals - pos);
    std::string value;
    pos = equals + 2;
    while (line.at(pos) != '"') {
      if (line[pos] == '\\') {
        const char escaped = line.at(++pos);
        value += escaped == 'n' ? '\n' : escaped;
      } else {
        value += line[pos];
      }
      ++pos;
    }
    ++pos;  // closing quote
    if (line.at(pos) == ',') ++pos;
    if (!labels.emplace(key, value).second) throw std::runtime_error("repeated label: " + line);
  }
  ++pos;  // '}'
  return labels;
}

Exposition parseExposition(const std::string& text) {
  Exposition exposition;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (line.starts_with("# TYPE ")) {
      const std::size_t space = line.find(' ', 7);
      exposition.types[line.substr(7, space - 7)] = line.substr(space + 1);
      continue;
    }
    if (line.starts_with("#")) continue;
    Sample sample;
    std::size_t pos = line.find_first_of("{ ");
    if (pos == std::string::npos) throw std::runtime_error("bad sample: " + line);
    sample.name = line.substr(0, pos);
    if (line[pos] == '{') sample.labels = parseLabels(line, pos);
    if (line.at(pos) != ' ') throw std::runtime_error("no value in: " + line);
    const std::string value = line.substr(pos + 1, line.find(' ', pos + 1) - pos - 1);
    char* value_end = nullptr;
    sample.value = std::strtod(value.c_str(), &value_end);
    if (value.empty() || *value_end != '\0') throw std::runtime_error("bad value in: " + line);
    exposition.samples.push_back(std::move(sample));
  }
  return exposition;
}

Exposition scrape(std::uint16_t port) {
  const HttpResponse response = get(port, "/metrics");
  if (response.status != 200) {
    throw std::runtime_error("GET /metrics: " + std::to_string(response.status));
  }
  return parseExposition(response.body);
}

// The series of the brief's families, for assertions.
const std::vector<std::string> kOutcomeNames = {
    "ok",          "invalid_argument", "out_of_range",      "too_large",
    "internal",    "unavailable",      "deadline_exceeded", "handler_crashed",
    "no_reply_to", "requeued",         "reply_refused",     "lost"};
const std::vector<std::string> kBucketBounds = {
    "1e-06", "2.5e-06", "5e-06", "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005",
    "0.001", "0.0025",  "0.005", "0.01",  "0.025",   "0.05",  "0.1",    "0.25",    "0.5",
    "1",     "2.5",     "5",     "10",    "30",      "60",    "+Inf"};

Labels sumLabels() { return {{"queue", "sum"}, {"handler", "sum"}}; }
Labels with(Labels labels, const std::string& key, const std::string& value) {
  labels[key] = value;
  return labels;
}

// A Metrics serving on a free loopback port.
class MetricsTest : public testing::Test {
 protected:
  void SetUp() override {
    metrics_.serve(kAnyLoopbackPort);
    port_ = metrics_.port();
    ASSERT_NE(port_, 0);
  }

  Exposition scrapeNow() const { return scrape(port_); }

  Metrics metrics_{"1.2.3"};
  std::uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------
// Families and series.

TEST_F(MetricsTest, EverySeriesExistsAtZeroOnceTheQueueIsAdded) {
  const auto sum = metrics_.addQueue("sum", "sum", 5);
  const Exposition scraped = scrapeNow();
  const Labels labels = sumLabels();
  const Labels queue = {{"queue", "sum"}};

  EXPECT_EQ(scraped.value("warren_requests_received_total", labels), 0);
  for (const std::string& outcome : kOutcomeNames) {
    EXPECT_EQ(scraped.value("warren_requests_finished_total", with(labels, "outcome", outcome)), 0)
        << outcome;
  }
  EXPECT_EQ(scraped.matching("warren_requests_finished_total").size(), kOutcomeNames.size());
  EXPECT_EQ(scraped.value("warren_requests_in_progress", labels), 0);
  EXPECT_EQ(scraped.value("warren_requests_redelivered_total", labels), 0);
  EXPECT_EQ(scraped.value("warren_reply_publish_failures_total", labels), 0);
  EXPECT_EQ(scraped.value("warren_replies_returned_total", labels), 0);
  EXPECT_EQ(scraped.value("warren_replies_nacked_total", labels), 0);
  EXPECT_EQ(scraped.value("warren_deadline_exceeded_total", with(labels, "stage", "queued")), 0);
  EXPECT_EQ(scraped.value("warren_deadline_exceeded_total", with(labels, "stage", "handling")), 0);
  EXPECT_EQ(scraped.matching("warren_deadline_exceeded_total").size(), 2u);
  for (const std::string event : {"crash", "kill", "restart"}) {
    EXPECT_EQ(scraped.value("warren_worker_events_total", with(labels, "event", event)), 0)
        << event;
  }
  EXPECT_EQ(scraped.matching("warren_worker_events_total").size(), 3u);
  for (const std::string& le : kBucketBounds) {
    EXPECT_EQ(scraped.value("warren_handler_duration_seconds_bucket", with(labels, "le", le)), 0)
        << le;
  }
  EXPECT_EQ(scraped.matching("warren_handler_duration_seconds_bucket").size(),
            kBucketBounds.size());
  EXPECT_EQ(scraped.value("warren_handler_duration_seconds_count", labels), 0);
  EXPECT_EQ(scraped.value("warren_handler_duration_seconds_sum", labels), 0);
  EXPECT_EQ(scraped.value("warren_consumers_connected", queue), 0);
  EXPECT_EQ(scraped.value("warren_consumers_configured", queue), 5);
  EXPECT_EQ(scraped.value("warren_broker_connection_attempts_total", queue), 0);
  EXPECT_EQ(scraped.value("warren_broker_connection_failures_total", queue), 0);
  EXPECT_EQ(scraped.value("warren_consumer_sessions_lost_total", queue), 0);
  EXPECT_EQ(scraped.value("warren_broker_blocked_total", queue), 0);

  EXPECT_EQ(scraped.value("warren_config_reloads_total", {{"result", "success"}}), 0);
  EXPECT_EQ(scraped.value("warren_config_reloads_total", {{"result", "failure"}}), 0);
  EXPECT_EQ(scraped.value("warren_config_last_reload_successful"), 1);
  EXPECT_GT(scraped.value("warren_config_last_reload_success_timestamp_seconds").value_or(0), 0);
  EXPECT_EQ(scraped.value("warren_build_info", {{"version", "1.2.3"}}), 1);
  EXPECT_TRUE(scraped.matching("warren_plugin_info").empty());
}

TEST_F(MetricsTest, FamiliesFollowPrometheusNaming) {
  const auto sum = metrics_.addQueue("sum", "sum", 1);
  metrics_.setPluginInfo("sum", "sum", "1.0.0", 1, 0);
  const Exposition scraped = scrapeNow();
  const std::map<std::string, std::string> expected = {
      {"warren_requests_received_total", "counter"},
      {"warren_requests_finished_total", "counter"},
      {"warren_handler_duration_seconds", "histogram"},
      {"warren_requests_in_progress", "gauge"},
      {"warren_requests_redelivered_total", "counter"},
      {"warren_reply_publish_failures_total", "counter"},
      {"warren_replies_returned_total", "counter"},
      {"warren_replies_nacked_total", "counter"},
      {"warren_deadline_exceeded_total", "counter"},
      {"warren_worker_events_total", "counter"},
      {"warren_handlers_held", "gauge"},
      {"warren_deferred_in_flight", "gauge"},
      {"warren_deferred_completions_dropped_total", "counter"},
      {"warren_consumers_connected", "gauge"},
      {"warren_consumers_configured", "gauge"},
      {"warren_broker_connection_attempts_total", "counter"},
      {"warren_broker_connection_failures_total", "counter"},
      {"warren_consumer_sessions_lost_total", "counter"},
      {"warren_broker_blocked_total", "counter"},
      {"warren_config_reloads_total", "counter"},
      {"warren_config_last_reload_success_timestamp_seconds", "gauge"},
      {"warren_config_last_reload_successful", "gauge"},
      {"warren_plugin_info", "gauge"},
      {"warren_build_info", "gauge"},
      {"warren_ready", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_start_time_seconds", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
  };
  EXPECT_EQ(scraped.types, expected);
  for (const Sample& sample : scraped.samples) {
    EXPECT_TRUE(sample.name.starts_with("warren_") || sample.name.starts_with("process_"))
        << sample.name;
    for (const auto& [label, value] : sample.labels) {
      EXPECT_TRUE(label == "queue" || label == "handler" || label == "outcome" ||
                  label == "result" || label == "le" || label == "version" || label == "plugin" ||
                  label == "abi" || label == "stage" || label == "event" || label == "reason")
          << sample.name << " has label " << label;
    }
  }
}

TEST_F(MetricsTest, SeriesMoveWithTheCalls) {
  const auto sum = metrics_.addQueue("sum", "sum", 5);
  for (int i = 0; i < 4; ++i) sum->received();
  sum->redelivered();
  sum->inProgressAdd(+1);
  sum->inProgressAdd(+1);
  sum->inProgressAdd(-1);
  sum->finished(Outcome::kOk);
  sum->finished(Outcome::kOk);
  sum->finished(outcomeOf(WARREN_ERROR_OUT_OF_RANGE));
  sum->observeHandler(std::chrono::microseconds(200));   // le 0.00025 and up
  sum->observeHandler(std::chrono::milliseconds(1500));  // le 2.5 and up
  sum->replyPublishFailed();
  sum->replyReturned();
  sum->replyReturned();
  sum->consumerConnected();
  sum->consumerConnected();
  sum->consumerConnected();
  sum->consumerDisconnected();
  sum->setConsumersConfigured(7);
  sum->connectionAttempt();
  sum->connectionAttempt();
  sum->connectionFailure();
  sum->sessionLost();
  sum->brokerBlocked();
  sum->brokerBlocked();
  sum->brokerBlocked();
  metrics_.recordReload(false);

  Exposition scraped = scrapeNow();
  const Labels labels = sumLabels();
  const Labels queue = {{"queue", "sum"}};
  EXPECT_EQ(scraped.value("warren_requests_received_total", labels), 4);
  EXPECT_EQ(scraped.value("warren_requests_redelivered_total", labels), 1);
  EXPECT_EQ(scraped.value("warren_requests_in_progress", labels), 1);
  EXPECT_EQ(scraped.value("warren_requests_finished_total", with(labels, "outcome", "ok")), 2);
  EXPECT_EQ(
      scraped.value("warren_requests_finished_total", with(labels, "outcome", "out_of_range")), 1);
  EXPECT_EQ(scraped.value("warren_requests_finished_total", with(labels, "outcome", "internal")),
            0);
  const auto bucket = [&](const std::string& le) {
    return scraped.value("warren_handler_duration_seconds_bucket", with(labels, "le", le));
  };
  EXPECT_EQ(bucket("0.0001"), 0);
  EXPECT_EQ(bucket("0.00025"), 1);
  EXPECT_EQ(bucket("1"), 1);
  EXPECT_EQ(bucket("2.5"), 2);
  EXPECT_EQ(bucket("+Inf"), 2);
  EXPECT_EQ(scraped.value("warren_handler_duration_seconds_count", labels), 2);
  EXPECT_NEAR(scraped.value("warren_handler_duration_seconds_sum", labels).value_or(0), 1.5002,
              1e-9);
  EXPECT_EQ(scraped.value("warren_reply_publish_failures_total", labels), 1);
  EXPECT_EQ(scraped.value("warren_replies_returned_total", labels), 2);
  EXPECT_EQ(scraped.value("warren_consumers_connected", queue), 2);
  EXPECT_EQ(scraped.value("warren_consumers_configured", queue), 7);
  EXPECT_EQ(scraped.value("warren_broker_connection_attempts_total", queue), 2);
  EXPECT_EQ(scraped.value("warren_broker_connection_failures_total", queue), 1);
  EXPECT_EQ(scraped.value("warren_consumer_sessions_lost_total", queue), 1);
  EXPECT_EQ(scraped.value("warren_broker_blocked_total", queue), 3);
  EXPECT_EQ(scraped.value("warren_config_reloads_total", {{"result", "failure"}}), 1);
  EXPECT_EQ(scraped.value("warren_config_reloads_total", {{"result", "success"}}), 0);
  EXPECT_EQ(scraped.value("warren_config_last_reload_successful"), 0);

  metrics_.recordReload(true);
  scraped = scrapeNow();
  EXPECT_EQ(scraped.value("warren_config_reloads_total", {{"result", "success"}}), 1);
  EXPECT_EQ(scraped.value("warren_config_last_reload_successful"), 1);
}

// counts() is how in-process callers read what /metrics shows: one counting
// path, not a second set of counters beside the series.
TEST_F(MetricsTest, CountsReadTheSameSeriesTheScrapeShows) {
  const auto sum = metrics_.addQueue("sum", "sum", 5);
  for (int i = 0; i < 9; ++i) sum->received();
  sum->finished(Outcome::kOk);
  sum->finished(Outcome::kOk);
  sum->finished(outcomeOf(WARREN_ERROR_OUT_OF_RANGE));
  sum->finished(outcomeOf(WARREN_ERROR_INVALID_ARGUMENT));
  sum->finished(Outcome::kTooLarge);
  sum->finished(Outcome::kNoReplyTo);
  sum->finished(Outcome::kRequeued);
  sum->finished(Outcome::kReplyRefused);
  sum->finished(Outcome::kLost);
  sum->observeHandler(std::chrono::microseconds(3));
  sum->observeHandler(std::chrono::microseconds(4));
  sum->replyReturned();
  sum->replyNacked();
  sum->replyNacked();
  sum->replyNacked();
  sum->replyPublishFailed();
  sum->replyPublishFailed();
  sum->sessionLost();
  sum->brokerBlocked();

  const QueueCounts counts = sum->counts();
  EXPECT_EQ(counts.received, 9u);
  EXPECT_EQ(counts.handled, 2u);
  EXPECT_EQ(counts.replied, 2u);
  EXPECT_EQ(counts.replied_error, 3u) << "out_of_range, invalid_argument and too_large";
  EXPECT_EQ(counts.too_large, 1u);
  EXPECT_EQ(counts.missing_reply_to, 1u);
  EXPECT_EQ(counts.requeued, 1u);
  EXPECT_EQ(counts.reply_refused, 1u);
  EXPECT_EQ(counts.lost, 1u);
  EXPECT_EQ(counts.returned, 1u);
  EXPECT_EQ(counts.nacked, 3u);
  EXPECT_EQ(counts.reply_failures, 2u);
  EXPECT_EQ(counts.sessions_lost, 1u);
  EXPECT_EQ(counts.blocked, 1u);

  const Exposition scraped = scrapeNow();
  const Labels labels = sumLabels();
  EXPECT_EQ(scraped.value("warren_requests_received_total", labels),
            static_cast<double>(counts.received));
  EXPECT_EQ(scraped.value("warren_handler_duration_seconds_count", labels),
            static_cast<double>(counts.handled));
  EXPECT_EQ(scraped.value("warren_requests_finished_total", with(labels, "outcome", "lost")),
            static_cast<double>(counts.lost));
}

// A scrape is the registry's exposition, then warren_ready and the
// process_* families, which are read at scrape time.
TEST_F(MetricsTest, ScrapeIsTheExpositionThenReadinessAndProcess) {
  const auto sum = metrics_.addQueue("sum", "sum", 5);
  sum->received();
  const std::string body = get(port_, "/metrics").body;
  const std::string exposition = metrics_.exposition();
  EXPECT_EQ(body.substr(0, exposition.size()), exposition);
  EXPECT_EQ(body.substr(exposition.size()).rfind("# HELP warren_ready ", 0), 0u)
      << body.substr(exposition.size());
  EXPECT_NE(body.find("\n# TYPE process_cpu_seconds_total counter\n", exposition.size()),
            std::string::npos);
}

TEST_F(MetricsTest, PluginInfoIsReplacedAndRemoved) {
  metrics_.setPluginInfo("sum", "sum", "1.0.0", 1, 0);
  metrics_.setPluginInfo("echo", "echo", "0.3.0", 1, 0);
  Exposition scraped = scrapeNow();
  EXPECT_EQ(
      scraped.value("warren_plugin_info",
                    {{"handler", "sum"}, {"plugin", "sum"}, {"version", "1.0.0"}, {"abi", "1.0"}}),
      1);
  EXPECT_EQ(scraped.matching("warren_plugin_info").size(), 2U);

  metrics_.setPluginInfo("sum", "sum", "1.1.0", 1, 1);  // a rebuilt plugin
  scraped = scrapeNow();
  ASSERT_EQ(scraped.matching("warren_plugin_info", {{"handler", "sum"}}).size(), 1U);
  EXPECT_EQ(
      scraped.value("warren_plugin_info",
                    {{"handler", "sum"}, {"plugin", "sum"}, {"version", "1.1.0"}, {"abi", "1.1"}}),
      1);

  metrics_.removePluginInfo("sum");
  metrics_.removePluginInfo("never-set");
  scraped = scrapeNow();
  EXPECT_TRUE(scraped.matching("warren_plugin_info", {{"handler", "sum"}}).empty());
  EXPECT_EQ(scraped.matching("warren_plugin_info").size(), 1U);
}

// ---------------------------------------------------------------------------
// Series lifetime: they go with the last handle, never under a live one.

TEST_F(MetricsTest, DroppingTheLastHandleRemovesTheQueueSeries) {
  auto sum = metrics_.addQueue("sum", "sum", 5);
  const auto echo = metrics_.addQueue("echo", "echo", 1);
  sum->received();
  sum.reset();

  const Exposition scraped = scrapeNow();
  for (const Sample& sample : scraped.samples) {
    const auto queue = sample.labels.find("queue");
    EXPECT_TRUE(queue == sample.labels.end() || queue->second != "sum") << sample.name;
  }
  EXPECT_EQ(
      scraped.value("warren_requests_received_total", {{"queue", "echo"}, {"handler", "echo"}}), 0);
  EXPECT_EQ(scraped.value("warren_consumers_configured", {{"queue", "echo"}}), 1);
}

TEST_F(MetricsTest, HandlesOfOneQueueShareItsSeries) {
  auto draining = metrics_.addQueue("sum", "sum", 5);
  draining->received();
  // A reload keeps the queue: the new service adds it again before the old one drains.
  const auto serving = metrics_.addQueue("sum", "sum", 3);
  serving->received();
  draining->finished(Outcome::kRequeued);
  draining.reset();

  const Exposition scraped = scrapeNow();
  EXPECT_EQ(scraped.value("warren_requests_received_total", sumLabels()), 2);
  EXPECT_EQ(
      scraped.value("warren_requests_finished_total", with(sumLabels(), "outcome", "requeued")), 1);
  EXPECT_EQ(scraped.value("warren_consumers_configured", {{"queue", "sum"}}), 3);
}

TEST_F(MetricsTest, AQueueChangingHandlerKeepsItsQueueSeries) {
  auto old_handler = metrics_.addQueue("sum", "sum", 5);
  old_handler->connectionAttempt();
  const auto new_handler = metrics_.addQueue("sum", "sum2", 5);
  old_handler.reset();

  const Exposition scraped = scrapeNow();
  EXPECT_EQ(scraped.value("warren_broker_connection_attempts_total", {{"queue", "sum"}}), 1);
  EXPECT_FALSE(scraped.value("warren_requests_received_total", sumLabels()));
  EXPECT_EQ(
      scraped.value("warren_requests_received_total", {{"queue", "sum"}, {"handler", "sum2"}}), 0);
}

TEST_F(MetricsTest, AQueueAddedAgainStartsAtZero) {
  auto sum = metrics_.addQueue("sum", "sum", 5);
  sum->received();
  sum.reset();
  sum = metrics_.addQueue("sum", "sum", 5);
  EXPECT_EQ(scrapeNow().value("warren_requests_received_total", sumLabels()), 0);
}

TEST_F(MetricsTest, HandlesOutliveMetrics) {
  std::shared_ptr<QueueMetrics> sum;
  {
    Metrics short_lived("0");
    sum = short_lived.addQueue("sum", "sum", 1);
  }
  sum->received();  // the families stay with the handle
  sum.reset();
}

// Consumer threads update while the supervisor adds and drops handles of the
// same and other queues, and /metrics is scraped: nothing is lost or torn.
TEST_F(MetricsTest, ConcurrentUpdatesAndRegistrations) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 20000;
  const auto kept = metrics_.addQueue("sum", "sum", kThreads);
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop.load()) {
      const auto same = metrics_.addQueue("sum", "sum", kThreads);
      const auto other = metrics_.addQueue("other", "sum", 1);
      same->received();
      other->received();
    }
  });
  std::vector<std::thread> consumers;
  for (int t = 0; t < kThreads; ++t) {
    consumers.emplace_back([&] {
      kept->consumerConnected();
      for (int i = 0; i < kIncrements; ++i) {
        kept->inProgressAdd(+1);
        kept->observeHandler(std::chrono::microseconds(i % 100));
        kept->inProgressAdd(-1);
        kept->finished(Outcome::kOk);
      }
    });
  }
  for (int i = 0; i < 3; ++i) EXPECT_NO_THROW(scrapeNow());
  for (std::thread& consumer : consumers) consumer.join();
  stop.store(true);
  churn.join();

  const Exposition scraped = scrapeNow();
  EXPECT_EQ(scraped.value("warren_requests_finished_total", with(sumLabels(), "outcome", "ok")),
            kThreads * kIncrements);
  EXPECT_EQ(scraped.value("warren_handler_duration_seconds_count", sumLabels()),
            kThreads * kIncrements);
  EXPECT_EQ(scraped.value("warren_requests_in_progress", sumLabels()), 0);
  EXPECT_EQ(scraped.value("warren_consumers_connected", {{"queue", "sum"}}), kThreads);
  EXPECT_FALSE(scraped.value("warren_consumers_connected", {{"queue", "other"}}));
}

// ---------------------------------------------------------------------------
// /ready.

TEST(ReadinessEndpointTest, AnswersWhatTheCheckSays) {
  std::mutex mutex;
  Readiness state{false, "queue 'sum': 3/5 consumers connected"};
  Metrics metrics("0");
  metrics.serve(kAnyLoopbackPort, [&] {
    const std::lock_guard lock(mutex);
    return state;
  });

  HttpResponse response = get(metrics.port(), "/ready");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "not ready: queue 'sum': 3/5 consumers connected\n");
  EXPECT_EQ(response.headers.at("content-type"), "text/plain; charset=utf-8");

  {
    const std::lock_guard lock(mutex);
    state = {true, ""};
  }
  response = get(metrics.port(), "/ready");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ready\n");
  EXPECT_EQ(response.headers.at("content-length"), "6");
  EXPECT_EQ(response.headers.at("cache-control"), "no-store");
}

// The same answer as a series, for alerts: warren_ready 1 or 0, and 0 when
// the check fails.
TEST(ReadinessEndpointTest, WarrenReadyIsTheAnswerOfTheCheck) {
  std::atomic<int> state{0};  // 0 not ready, 1 ready, 2 throws
  Metrics metrics("0");
  metrics.serve(kAnyLoopbackPort, [&]() -> Readiness {
    if (state.load() == 2) throw std::runtime_error("boom");
    return {state.load() == 1, state.load() == 1 ? "" : "queue 'sum': 0/1 consumers connected"};
  });
  EXPECT_EQ(scrape(metrics.port()).value("warren_ready"), 0);
  state = 1;
  EXPECT_EQ(scrape(metrics.port()).value("warren_ready"), 1);
  state = 2;
  EXPECT_EQ(scrape(metrics.port()).value("warren_ready"), 0);
}

// process_* as official clients export them, read from this very process.
TEST(ProcessMetricsTest, DescribeThisProcess) {
  Metrics metrics("0");
  metrics.serve(kAnyLoopbackPort);
  const Exposition scraped = scrape(metrics.port());
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double started = scraped.value("process_start_time_seconds").value_or(0);
  EXPECT_LE(started, now + 1);
  EXPECT_GT(started, now - 3600) << "this test started over an hour ago?";
  EXPECT_GT(scraped.value("process_resident_memory_bytes").value_or(0), 1 << 20);
  EXPECT_GE(scraped.value("process_virtual_memory_bytes").value_or(0),
            scraped.value("process_resident_memory_bytes").value_or(0));
  EXPECT_GE(scraped.value("process_cpu_seconds_total").value_or(-1), 0);
  // Three descriptors at least (stdin, stdout, stderr) and the server's
  // socket; 16 more show. (Not exactly 16: the HTTP server may still hold
  // the previous scrape's socket, or not, when the next one is counted.)
  const double open = scraped.value("process_open_fds").value_or(0);
  EXPECT_GE(open, 4);
  EXPECT_LE(open, scraped.value("process_max_fds").value_or(0));
  std::vector<int> extra;
  for (int i = 0; i < 16; ++i) extra.push_back(::dup(0));
  const double more = scrape(metrics.port()).value("process_open_fds").value_or(0);
  EXPECT_GE(more, open + 16 - 2);
  EXPECT_LE(more, open + 16 + 2);
  for (const int fd : extra) ::close(fd);
}

TEST(ReadinessEndpointTest, ACheckThatThrowsIsNotReady) {
  Metrics metrics("0");
  metrics.serve(kAnyLoopbackPort, []() -> Readiness { throw std::runtime_error("boom"); });
  const HttpResponse response = get(metrics.port(), "/ready");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "not ready: the readiness check failed: boom\n");
}

// Without a check of its own, /ready compares connected and configured consumers.
TEST(ReadinessEndpointTest, DefaultCheckCountsConsumers) {
  Metrics metrics("0");
  metrics.serve(kAnyLoopbackPort);
  HttpResponse response = get(metrics.port(), "/ready");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "not ready: no queue is registered yet\n");

  const auto sum = metrics.addQueue("sum", "sum", 2);
  const auto echo = metrics.addQueue("echo", "echo", 1);
  response = get(metrics.port(), "/ready");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body,
            "not ready: queue 'echo': 0/1 consumers connected; queue 'sum': 0/2 consumers "
            "connected\n");

  sum->consumerConnected();
  sum->consumerConnected();
  echo->consumerConnected();
  response = get(metrics.port(), "/ready");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ready\n");

  sum->consumerDisconnected();  // the broker went away
  response = get(metrics.port(), "/ready");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "not ready: queue 'sum': 1/2 consumers connected\n");
  EXPECT_FALSE(metrics.consumersReadiness().ready);

  sum->setConsumersConfigured(1);  // a reload shrank the queue
  EXPECT_EQ(get(metrics.port(), "/ready").status, 200);
}

// ---------------------------------------------------------------------------
// HTTP details.

TEST_F(MetricsTest, MetricsHasTheExpositionContentType) {
  const HttpResponse response = get(port_, "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.headers.at("content-length"), std::to_string(response.body.size()));
}

TEST_F(MetricsTest, HeadHasNoBody) {
  HttpResponse response = request(port_, "HEAD", "/ready");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "");
  response = request(port_, "HEAD", "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "");
}

TEST_F(MetricsTest, OtherMethodsAndPathsAreRefused) {
  const HttpResponse post = request(port_, "POST", "/metrics");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers.at("allow"), "GET, HEAD");
  EXPECT_EQ(get(port_, "/").status, 404);
  EXPECT_EQ(get(port_, "/metrics/extra").status, 404);
  EXPECT_EQ(get(port_, "/readyz").status, 404);
}

// ---------------------------------------------------------------------------
// Listening.

TEST_F(MetricsTest, ASecondServerOnTheSamePortFailsClearly) {
  Metrics second("0");
  const ListenAddress taken{"127.0.0.1", port_};
  try {
    second.serve(taken);
    FAIL() << "serving on a port in use succeeded";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()), "metrics.listen 127.0.0.1:" + std::to_string(port_) +
                                             ": cannot listen: Address already in use");
  }
  EXPECT_EQ(second.port(), 0);
  EXPECT_EQ(get(port_, "/metrics").status, 200);  // the first one is untouched
}

TEST(MetricsServeTest, AnAddressOfAnotherHostFailsClearly) {
  std::ifstream nonlocal_bind("/proc/sys/net/ipv4/ip_nonlocal_bind");
  int allowed = 0;
  if (nonlocal_bind >> allowed && allowed != 0) GTEST_SKIP() << "this host binds any address";
  Metrics metrics("0");
  try {
    metrics.serve({"192.0.2.1", 9464});  // TEST-NET-1: never an address of this machine
    FAIL() << "serving on another host's address succeeded";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "metrics.listen 192.0.2.1:9464: cannot listen: Cannot assign requested address");
  }
}

TEST(MetricsServeTest, Ipv6NeedsACivetwebWithIpv6) {
  if (MetricsHttpServer::supportsIpv6()) GTEST_SKIP() << "this civetweb serves IPv6";
  Metrics metrics("0");
  try {
    metrics.serve({"::1", 9464});
    FAIL() << "IPv6 served without IPv6 support";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "metrics.listen [::1]:9464: cannot listen: the HTTP server library (civetweb) was "
              "built without IPv6; listen on an IPv4 address such as 127.0.0.1:9464");
  }
}

TEST_F(MetricsTest, ServingAgainMovesTheServer) {
  const std::uint16_t first = port_;
  metrics_.serve(kAnyLoopbackPort);  // another address: started before the old one stops
  const std::uint16_t second = metrics_.port();
  EXPECT_NE(second, first);
  EXPECT_EQ(get(second, "/metrics").status, 200);
  EXPECT_LT(connectLoopback(first), 0);

  metrics_.serve({"127.0.0.1", second});  // the same address: rebound
  EXPECT_EQ(metrics_.port(), second);
  EXPECT_EQ(get(second, "/metrics").status, 200);

  metrics_.stopServing();
  EXPECT_EQ(metrics_.port(), 0);
  EXPECT_LT(connectLoopback(second), 0);
}

// ---------------------------------------------------------------------------
// Outcomes.

TEST(OutcomeTest, NamesAreTheWireNamesOfTheErrorCodes) {
  std::vector<std::string> names;
  for (const Outcome outcome : kAllOutcomes) names.emplace_back(outcomeName(outcome));
  EXPECT_EQ(names, kOutcomeNames);
  EXPECT_EQ(outcomeOf(WARREN_ERROR_INVALID_ARGUMENT), Outcome::kInvalidArgument);
  EXPECT_EQ(outcomeOf(WARREN_ERROR_OUT_OF_RANGE), Outcome::kOutOfRange);
  EXPECT_EQ(outcomeOf(WARREN_ERROR_TOO_LARGE), Outcome::kTooLarge);
  EXPECT_EQ(outcomeOf(WARREN_ERROR_INTERNAL), Outcome::kInternal);
  EXPECT_EQ(outcomeOf(WARREN_ERROR_UNAVAILABLE), Outcome::kUnavailable);
  EXPECT_EQ(outcomeOf(WARREN_ERROR_DEADLINE_EXCEEDED), Outcome::kDeadlineExceeded);
  EXPECT_EQ(outcomeOf(static_cast<warren_error_code>(99)), Outcome::kInternal);
}

}  // namespace
}  // namespace warren
