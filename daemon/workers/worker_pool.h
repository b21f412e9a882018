// A queue's handler run in worker processes (isolation: process, handler:
// exec): one worker per consumer, each answering one request at a time over
// its stdin and stdout (docs/exec-handlers.md). A worker that dies or breaks
// the protocol costs the request it held, answered handler_crashed; one that
// holds a request past its deadline is killed, the request answered
// deadline_exceeded. Either is started again on its next request, at once
// after a good reply, else after a backoff that doubles up to a bound.
#pragma once

#include "handler.h"
#include "metrics_queue.h"
#include "worker_frame.h"
#include "worker_process.h"
#include "worker_stderr.h"

#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace warren {

struct WorkerPoolSettings {
  std::string queue;
  WorkerCommand command;  // WARREN_QUEUE and WARREN_PROTOCOL are added
  int workers = 1;
  std::size_t max_reply_bytes = 16 * 1024 * 1024;
  std::chrono::milliseconds restart_backoff_max{1000};
  // Written to each worker before its first request (the plugin worker's
  // options, workerOptionsFrame()); empty for a program.
  std::string init_bytes;
};

// How long a worker that failed `failures_in_a_row` times (at least 1)
// waits before it is started again: none after one failure, then 10 ms,
// 20 ms, 40 ms, ... up to `max`.
std::chrono::milliseconds restartBackoff(int failures_in_a_row, std::chrono::milliseconds max);

class WorkerPool final : public Handler {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts every worker. Throws std::system_error when one cannot be
  // started (the program is missing or not executable). The process must
  // ignore SIGPIPE (warrend does): a worker that dies is written to.
  WorkerPool(WorkerPoolSettings settings, std::shared_ptr<spdlog::logger> logger,
             std::shared_ptr<QueueMetrics> metrics);
  // Closes the workers' stdin, gives them a moment to exit, kills the rest.
  ~WorkerPool() override;

  void handle(warren_request request, HandlerReply& reply) const noexcept override;

  // The pids of the running workers, for tests.
  std::vector<pid_t> pids() const;

 private:
  struct Slot {
    std::unique_ptr<WorkerProcess> process;
    FrameReader reader;
    std::uint64_t next_id = 1;
    int failures_in_a_row = 0;
    bool started_before = false;
    Clock::time_point restart_at{};
    bool initialised = true;  // init_bytes sent (or none to send)
    std::string out;          // the request frame being written
    std::string in;           // what is read from its stdout
    explicit Slot(std::size_t max_reply_bytes) : reader(max_reply_bytes) {}
  };
  class Checkout;

  Slot* checkout(Clock::time_point deadline) const;
  void giveBack(Slot* slot) const noexcept;
  void start(Slot& slot) const;
  // Before a request: a worker that exited after its last reply is
  // dropped (started again); one that wrote unasked or closed its stdout
  // is killed, as a crash.
  void checkIdle(Slot& slot) const;
  void failed(Slot& slot) const;
  void exchange(Slot& slot, const warren_request& request, Clock::time_point deadline,
                HandlerReply& reply) const;
  // `broke`: how it broke the protocol ("wrote a malformed reply: ..."),
  // empty when it just ended, or closed the stream `closed` names.
  void crashed(Slot& slot, const warren_request& request, const std::string& broke,
               HandlerReply& reply, const char* closed = "closed its stdout") const;
  void killAtDeadline(Slot& slot, const warren_request& request, HandlerReply& reply) const;

  const WorkerPoolSettings settings_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::shared_ptr<QueueMetrics> metrics_;
  WorkerStderr stderr_;

  mutable std::mutex mutex_;
  mutable std::condition_variable returned_;
  mutable std::vector<std::unique_ptr<Slot>> slots_;  // fixed after construction
  mutable std::vector<Slot*> free_;                   // under mutex_
};

}  // namespace warren
