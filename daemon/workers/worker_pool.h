// SPDX-License-Identifier: Apache-2.0
// A queue's handler run in worker processes (isolation: process, handler:
// exec): one worker per consumer, each answering one request at a time over
// its stdin and stdout (docs/exec-handlers.md). A worker that dies or breaks
// the protocol costs the request it held, answered handler_crashed; one that
// holds a request past its deadline is killed, the request answered
// deadline_exceeded. Either is started again on its next request, at once
// after a good reply, else after a backoff that doubles up to a bound.
//
// The pool never blocks a thread on a worker. handle() writes the request
// to an idle worker and defers the reply (Handler::pollFd); the thread
// holding the queue's connection polls the pool's epoll descriptor beside
// its socket and calls drive(), which reads the replies, completes them into
// the queue's DeferredInbox, kills workers at their deadlines and gives
// queued requests to workers as they come free. A reply so costs one
// wake-up of the worker and one of the connection's thread, shared by every
// reply that came meanwhile.
#pragma once

#include "handler.h"
#include "metrics_queue.h"
#include "worker_frame.h"
#include "worker_process.h"
#include "worker_stderr.h"

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
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
  // Starts every worker. Throws std::system_error when one cannot be
  // started (the program is missing or not executable). The process must
  // ignore SIGPIPE (warrend does): a worker that dies is written to.
  WorkerPool(WorkerPoolSettings settings, std::shared_ptr<spdlog::logger> logger,
             std::shared_ptr<QueueMetrics> metrics);
  // Closes the workers' stdin, gives them a moment to exit, kills the rest.
  // Requests still held are completed handler_crashed.
  ~WorkerPool() override;

  // With `reply.sink` (the engine): writes the request to an idle worker,
  // or queues it until one is free, and defers the reply; drive() completes
  // it. Without one: answers on this thread, driving the pool itself (one
  // such caller at a time; for tests).
  void handle(warren_request request, HandlerReply& reply) const noexcept override;
  int pollFd() const noexcept override { return events_.get(); }
  Clock::time_point wakeAt() const noexcept override;
  void drive() const noexcept override;

  // The pids of the running workers, for tests.
  std::vector<pid_t> pids() const;

 private:
  // The request a worker holds.
  struct Held {
    warren_reply* reply = nullptr;  // the deferred handle to complete
    std::uint64_t id = 0;
    std::string correlation_id;
    Clock::time_point deadline;
  };
  // A worker that exited, closed its stdout or broke the protocol while
  // holding a request: it is given until `until` to exit (so that its
  // stderr can say why), then its request is answered handler_crashed.
  struct Dying {
    std::string broke;  // how it broke the protocol; empty: it just ended
    const char* closed = "closed its stdout";
    Clock::time_point until;
  };
  struct Slot {
    std::size_t index = 0;
    std::unique_ptr<WorkerProcess> process;
    std::uint32_t generation = 0;  // of `process`, in its epoll events
    FrameReader reader;
    std::uint64_t next_id = 1;
    int failures_in_a_row = 0;
    bool started_before = false;
    Clock::time_point restart_at{};  // no process: when it may be started again
    bool initialised = true;         // init_bytes sent (or none to send)
    std::string out;                 // what is being written to its stdin
    std::size_t written = 0;
    bool watching_stdin = false;
    std::optional<Held> held;
    // It exited while holding a request: its stdout is read to the end,
    // until `exited_until` at most.
    bool exited = false;
    Clock::time_point exited_until;
    std::optional<Dying> dying;
    Slot(std::size_t slot_index, std::size_t max_reply_bytes)
        : index(slot_index), reader(max_reply_bytes) {}
  };
  // A request no worker was free for: a copy, until one is.
  struct Waiting {
    std::string body;
    std::string content_type;
    std::string correlation_id;
    std::vector<std::pair<std::string, std::string>> headers;
    std::int64_t deadline_ms = 0;
    std::uint8_t redelivered = 0;
    std::uint32_t delivery_count = 0;
    warren_reply* reply = nullptr;
    Clock::time_point deadline;
  };
  enum class Source : std::uint8_t { kStdout, kStdin, kExit };

  // All under mutex_.
  void submit(const warren_request& request, warren_reply* reply, Clock::time_point deadline) const;
  Slot* idleSlot(Clock::time_point now) const;
  bool ensureRunning(Slot& slot, warren_reply* reply) const;
  void send(Slot& slot, const warren_request& request, warren_reply* reply,
            Clock::time_point deadline) const;
  void flush(Slot& slot) const;
  void dispatchWaiting(Clock::time_point now) const;
  void processEvents() const;
  void onStdout(Slot& slot) const;
  void onReply(Slot& slot, WorkerFrame frame) const;
  void onExit(Slot& slot) const;
  void idleBroke(Slot& slot, std::string what) const;
  void beginDying(Slot& slot, std::string broke, const char* closed = "closed its stdout") const;
  void finishCrash(Slot& slot) const;
  void killAtDeadline(Slot& slot) const;
  void runTimers(Clock::time_point now) const;
  void start(Slot& slot) const;
  void watch(Slot& slot, Source source, int fd, std::uint32_t events) const;
  void unwatch(int fd) const noexcept;
  void failed(Slot& slot) const;
  void updateWakeAt() const;
  // Completes `reply` with an error, or with what was written into it.
  static void completeWith(warren_reply* reply, warren_error_code code, std::string message);
  static void complete(warren_reply* reply);

  const WorkerPoolSettings settings_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::shared_ptr<QueueMetrics> metrics_;
  WorkerStderr stderr_;
  OwnedFd events_;  // epoll: the workers' stdout, stdin (while writing) and exit

  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<Slot>> slots_;              // fixed after construction
  mutable std::deque<Waiting> waiting_;                           // under mutex_
  mutable Clock::time_point wake_at_ = Clock::time_point::max();  // under mutex_
  // One caller without a sink at a time drives the pool.
  mutable std::mutex sync_callers_;
};

}  // namespace warren
