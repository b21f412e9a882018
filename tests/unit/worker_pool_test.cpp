// SPDX-License-Identifier: Apache-2.0
// The worker pool with real programs: the exec fixture
// (tests/fixtures/exec/misbehaving_handler.py) and sh. No broker.
#include "worker_pool.h"

#include "deferred_reply.h"
#include "process_census.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <vector>

namespace warren {
namespace {

using test::children;
using test::kMeasuresMemory;
using test::openFds;
using test::residentKiB;

using std::chrono::milliseconds;

// Keeps the log lines, so that a test can wait for one.
class CapturingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  bool waitFor(const std::string& text, std::chrono::seconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(lines_mutex_);
    return logged_.wait_for(lock, timeout, [&] {
      for (const std::string& line : lines_) {
        if (line.find(text) != std::string::npos) return true;
      }
      return false;
    });
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    {
      std::lock_guard lock(lines_mutex_);
      lines_.emplace_back(message.payload.data(), message.payload.size());
    }
    logged_.notify_all();
  }
  void flush_() override {}

 private:
  std::mutex lines_mutex_;
  std::condition_variable logged_;
  std::vector<std::string> lines_;
};

warren_str str(std::string_view text) { return {text.data(), text.size()}; }

std::int64_t nowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  // As warrend does: a request written to a worker that died is EPIPE.
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }

  std::unique_ptr<WorkerPool> makePool(std::vector<std::string> argv, int workers = 1,
                                       milliseconds backoff_max = milliseconds(0)) {
    WorkerPoolSettings settings;
    settings.queue = "q";
    settings.command.argv = std::move(argv);
    settings.command.working_directory = WARREN_EXEC_FIXTURE_DIR;
    settings.workers = workers;
    settings.max_reply_bytes = 1024;
    settings.restart_backoff_max = backoff_max;
    return std::make_unique<WorkerPool>(std::move(settings), logger_, metrics_);
  }
  std::unique_ptr<WorkerPool> fixturePool(int workers = 1) {
    return makePool({"python3", "misbehaving_handler.py"}, workers);
  }

  HandlerReply call(const WorkerPool& pool, std::string_view body,
                    milliseconds within = milliseconds(10000)) {
    warren_request request{};
    request.struct_size = sizeof(request);
    request.body = str(body);
    request.correlation_id = str("c-1");
    request.deadline_ms = nowMs() + within.count();
    HandlerReply reply;
    pool.handle(request, reply);
    return reply;
  }

  std::shared_ptr<CapturingSink> sink_ = std::make_shared<CapturingSink>();
  std::shared_ptr<spdlog::logger> logger_ = std::make_shared<spdlog::logger>("q", sink_);
  std::shared_ptr<MetricsFamilies> families_ = std::make_shared<MetricsFamilies>("test");
  std::shared_ptr<QueueMetrics> metrics_ = std::make_shared<QueueMetrics>(families_, "q", "exec");
};

TEST_F(WorkerPoolTest, AnswersThroughTheProgram) {
  const auto pool = fixturePool();
  const HandlerReply sum = call(*pool, "3,4");
  EXPECT_FALSE(sum.error);
  EXPECT_EQ(sum.body, "7");
  EXPECT_EQ(sum.content_type, "text/plain");
  const HandlerReply fields = call(*pool, "fields");
  EXPECT_NE(fields.body.find("id: 2\n"), std::string::npos) << fields.body;
  EXPECT_NE(fields.body.find("queue: q\n"), std::string::npos) << fields.body;
  EXPECT_NE(fields.body.find("correlation-id: c-1\n"), std::string::npos) << fields.body;
}

TEST_F(WorkerPoolTest, ErrorRepliesPassThroughAndAnUnknownCodeIsInternal) {
  const auto pool = fixturePool();
  const HandlerReply known = call(*pool, "error:out_of_range");
  ASSERT_TRUE(known.error);
  EXPECT_EQ(known.error->code, WARREN_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(known.error->message, "asked");
  const HandlerReply unknown = call(*pool, "error:teapot");
  ASSERT_TRUE(unknown.error);
  EXPECT_EQ(unknown.error->code, WARREN_ERROR_INTERNAL);
  EXPECT_EQ(metrics_->counts().worker_crashes, 0u);
}

TEST_F(WorkerPoolTest, EachWayOfBreakingCostsOneRequestAndTheWorkerIsStartedAgain) {
  const auto pool = fixturePool();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"segv", "killed by signal 11"},   {"exit:3", "exited with status 3"},
      {"close", "closed its stdout"},    {"garbage", "a malformed reply"},
      {"wrong-id", "a reply with id '"}, {"two", "more than one reply"},
  };
  for (const auto& [body, expected] : cases) {
    const HandlerReply broken = call(*pool, body);
    ASSERT_TRUE(broken.error) << body;
    EXPECT_EQ(broken.error->code, WARREN_ERROR_HANDLER_CRASHED) << body;
    EXPECT_NE(broken.error->message.find(expected), std::string::npos) << broken.error->message;
    const HandlerReply next = call(*pool, "1,2");
    EXPECT_FALSE(next.error) << body << ": " << (next.error ? next.error->message : "");
    EXPECT_EQ(next.body, "3") << body;
  }
  const QueueCounts counts = metrics_->counts();
  EXPECT_EQ(counts.worker_crashes, cases.size());
  EXPECT_EQ(counts.worker_restarts, cases.size());
  EXPECT_EQ(counts.worker_kills, 0u);
  EXPECT_TRUE(sink_->waitFor("answered handler_crashed"));
}

TEST_F(WorkerPoolTest, AWorkerPastTheDeadlineIsKilledAndAnsweredDeadlineExceeded) {
  const auto pool = fixturePool();
  const pid_t hung = std::stoi(call(*pool, "pid").body);
  const HandlerReply late = call(*pool, "hang", milliseconds(300));
  ASSERT_TRUE(late.error);
  EXPECT_EQ(late.error->code, WARREN_ERROR_DEADLINE_EXCEEDED);
  EXPECT_EQ(kill(hung, 0), -1);  // killed and reaped
  EXPECT_EQ(errno, ESRCH);
  EXPECT_EQ(call(*pool, "1,2").body, "3");
  EXPECT_EQ(metrics_->counts().worker_kills, 1u);
  EXPECT_EQ(metrics_->counts().worker_crashes, 0u);
}

// Waits until `pid` has exited (a pidfd: an event, not a timer). The pool
// may have seen it exit and reaped it already: then it is gone.
void awaitExit(pid_t pid) {
  const int exited = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (exited < 0 && errno == ESRCH) return;
  ASSERT_GE(exited, 0);
  pollfd gone{exited, POLLIN, 0};
  ASSERT_EQ(poll(&gone, 1, 10000), 1);
  close(exited);
}

TEST_F(WorkerPoolTest, AReplyFollowedByAnExitIsNoCrash) {
  const auto pool = fixturePool();
  const pid_t first = std::stoi(call(*pool, "pid").body);
  EXPECT_EQ(call(*pool, "reply-exit").body, "bye");
  awaitExit(first);  // as it would between two requests far apart
  const pid_t second = std::stoi(call(*pool, "pid").body);
  EXPECT_NE(first, second);
  EXPECT_EQ(metrics_->counts().worker_crashes, 0u);
  EXPECT_EQ(metrics_->counts().worker_restarts, 1u);
}

TEST_F(WorkerPoolTest, ADeathBetweenRequestsIsACrashThatCostsNoRequest) {
  const auto pool = fixturePool();
  const pid_t first = std::stoi(call(*pool, "pid").body);
  EXPECT_EQ(call(*pool, "reply-segv").body, "bye");
  awaitExit(first);
  EXPECT_EQ(call(*pool, "2,2").body, "4");  // served by the worker started again
  EXPECT_EQ(metrics_->counts().worker_crashes, 1u);
  EXPECT_EQ(metrics_->counts().worker_restarts, 1u);
  EXPECT_TRUE(sink_->waitFor("was killed by signal 11 (Segmentation fault) between requests"));
}

TEST_F(WorkerPoolTest, StderrLinesGoToTheLog) {
  const auto pool = fixturePool();
  EXPECT_EQ(call(*pool, "stderr:hello from the program").body, "logged");
  EXPECT_TRUE(sink_->waitFor("worker: hello from the program"));
}

TEST_F(WorkerPoolTest, OneProcessPerWorkerEachInItsOwnGroup) {
  const auto pool = fixturePool(3);
  const std::vector<pid_t> pids = pool->pids();
  ASSERT_EQ(pids.size(), 3u);
  EXPECT_EQ(std::set<pid_t>(pids.begin(), pids.end()).size(), 3u);
  for (const pid_t pid : pids) EXPECT_EQ(getpgid(pid), pid);
}

TEST_F(WorkerPoolTest, DestroyingThePoolEndsAndReapsItsWorkers) {
  auto pool = fixturePool(2);
  const std::vector<pid_t> pids = pool->pids();
  pool.reset();
  for (const pid_t pid : pids) {
    EXPECT_EQ(kill(pid, 0), -1) << pid;
    EXPECT_EQ(errno, ESRCH);
  }
  EXPECT_EQ(children().all, 0);
}

TEST_F(WorkerPoolTest, AProgramThatCannotBeStartedIsRefusedAtOnce) {
  EXPECT_THROW(makePool({"/nonexistent/handler"}), std::system_error);
  EXPECT_THROW(makePool({"no-such-program-in-path-anywhere"}), std::system_error);
  EXPECT_THROW(makePool({"misbehaving_handler.py.missing"}), std::system_error);
}

TEST_F(WorkerPoolTest, AThousandCrashesInARowLeakNoDescriptorsOrProcesses) {
  const auto pool = makePool({"sh", "-c", "exit 3"});
  // Measured between two crashes, as after the last one: no worker running.
  ASSERT_TRUE(call(*pool, "1,2").error);
  // The worker started with the pool may have died before that request
  // came (a crash between requests) or with it: counted from here.
  const std::uint64_t crashes_before = metrics_->counts().worker_crashes;
  const int fds_before = openFds();
  long rss_after_100 = 0;
  for (int i = 1; i < 1000; ++i) {
    const HandlerReply reply = call(*pool, "1,2");
    ASSERT_TRUE(reply.error) << i;
    ASSERT_EQ(reply.error->code, WARREN_ERROR_HANDLER_CRASHED) << i;
    if (i == 100) rss_after_100 = residentKiB();
  }
  EXPECT_EQ(openFds(), fds_before);
  if (kMeasuresMemory) {
    // 900 crashes more: a leak of even 1 KiB each would show.
    EXPECT_LT(residentKiB() - rss_after_100, 512);
  }
  const auto [all, zombies] = children();
  EXPECT_EQ(zombies, 0);
  EXPECT_EQ(all, 0);  // the next worker starts with the next request
  EXPECT_EQ(metrics_->counts().worker_crashes - crashes_before, 999u);
}

// Where a driven pool's replies go, as the engine's DeferredInbox.
class CollectingSink final : public DeferredSink {
 public:
  void post(std::shared_ptr<DeferredReply> completed) noexcept override {
    posted_.push_back(std::move(completed));
  }
  std::vector<std::shared_ptr<DeferredReply>> posted_;
};

// As the thread holding a queue's connection: polls the pool's descriptor
// until `count` replies were posted to `sink`.
void driveUntil(const WorkerPool& pool, const CollectingSink& sink, std::size_t count) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (sink.posted_.size() < count) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << sink.posted_.size() << " posted";
    const auto wake = pool.wakeAt();
    int timeout = 1000;
    if (wake != std::chrono::steady_clock::time_point::max()) {
      const auto left = std::chrono::ceil<milliseconds>(wake - std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::clamp<long>(left.count(), 0, 1000));
    }
    pollfd ready{pool.pollFd(), POLLIN, 0};
    poll(&ready, 1, timeout);
    pool.drive();
  }
}

TEST_F(WorkerPoolTest, WithASinkHandleReturnsAtOnceAndDriveCompletesTheReplies) {
  const auto pool = fixturePool(2);
  const auto sink = std::make_shared<CollectingSink>();
  // A hung request, two good ones: the second good one waits for a free
  // worker, which the first good one's reply makes.
  const std::vector<std::pair<std::string, milliseconds>> calls = {
      {"hang", milliseconds(4000)}, {"1,2", milliseconds(20000)}, {"3,4", milliseconds(20000)}};
  std::vector<HandlerReply> replies(calls.size());
  const auto before = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    warren_request request{};
    request.struct_size = sizeof(request);
    request.body = str(calls[i].first);
    request.deadline_ms = nowMs() + calls[i].second.count();
    replies[i].sink = sink;
    pool->handle(request, replies[i]);
    ASSERT_TRUE(replies[i].deferred) << calls[i].first;
  }
  // Nothing waited on a worker: the hung one is still held.
  EXPECT_LT(std::chrono::steady_clock::now() - before, milliseconds(1000));
  driveUntil(*pool, *sink, 2);
  EXPECT_EQ(replies[1].deferred->reply().body, "3");
  EXPECT_EQ(replies[2].deferred->reply().body, "7");
  EXPECT_TRUE(replies[1].deferred->completedInTime());
  EXPECT_TRUE(replies[2].deferred->completedInTime());
  EXPECT_FALSE(replies[0].deferred->completedInTime());
  EXPECT_NE(pool->wakeAt(),
            std::chrono::steady_clock::time_point::max());  // the hung one's deadline
  driveUntil(*pool, *sink, 3);
  const HandlerReply& late = replies[0].deferred->reply();
  ASSERT_TRUE(late.error);
  EXPECT_EQ(late.error->code, WARREN_ERROR_DEADLINE_EXCEEDED);
  EXPECT_EQ(metrics_->counts().worker_kills, 1u);
  EXPECT_EQ(pool->wakeAt(), std::chrono::steady_clock::time_point::max());  // nothing held
  // Each reply holds its sink, which holds the reply: taken, as the engine's
  // inbox does, so that neither outlives the test (LeakSanitizer).
  sink->posted_.clear();
}

TEST(RestartBackoff, NoneAfterOneFailureThenDoublingUpToTheBound) {
  const milliseconds max(1000);
  EXPECT_EQ(restartBackoff(1, max), milliseconds(0));
  EXPECT_EQ(restartBackoff(2, max), milliseconds(10));
  EXPECT_EQ(restartBackoff(3, max), milliseconds(20));
  EXPECT_EQ(restartBackoff(8, max), milliseconds(640));
  EXPECT_EQ(restartBackoff(9, max), max);
  EXPECT_EQ(restartBackoff(1000000, max), max);
  EXPECT_EQ(restartBackoff(5, milliseconds(0)), milliseconds(0));
}

}  // namespace
}  // namespace warren
