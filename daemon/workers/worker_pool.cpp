#include "worker_pool.h"

#include "log_escape.h"
#include "worker_protocol.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

namespace warren {
namespace {

// How long a worker that broke the protocol or closed its stdout may take
// to exit on its own (and say why on stderr) before it is killed.
constexpr std::chrono::milliseconds kDyingGrace{200};
// At shutdown, how long the workers may take to exit after their stdin closed.
constexpr std::chrono::milliseconds kFinishGrace{2000};
// The most read from a worker's stdout at once.
constexpr std::size_t kReadBytes = 64 * 1024;
// The first wait of a worker that keeps failing.
constexpr std::chrono::milliseconds kFirstBackoff{10};

std::string_view viewOf(warren_str text) noexcept {
  return text.data != nullptr ? std::string_view(text.data, text.size) : std::string_view();
}

// The steady-clock moment of a deadline in ms since the epoch.
WorkerPool::Clock::time_point steadyDeadline(std::int64_t deadline_ms) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return WorkerPool::Clock::now() + std::chrono::milliseconds(deadline_ms - now_ms);
}

// Milliseconds until `deadline` rounded up (0 once it passed), for poll().
int pollTimeout(WorkerPool::Clock::time_point deadline) {
  const auto left = deadline - WorkerPool::Clock::now();
  if (left <= WorkerPool::Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 1 << 30));
}

void setError(HandlerReply& reply, warren_error_code code, std::string message) {
  reply.body.clear();
  reply.content_type.clear();
  reply.error = HandlerError{code, std::move(message)};
}

}  // namespace

// A slot taken for one request, given back when it goes.
class WorkerPool::Checkout {
 public:
  Checkout(const WorkerPool& pool, Slot* slot) : pool_(pool), slot_(slot) {}
  ~Checkout() {
    if (slot_ != nullptr) pool_.giveBack(slot_);
  }
  Checkout(const Checkout&) = delete;
  Checkout& operator=(const Checkout&) = delete;

 private:
  const WorkerPool& pool_;
  Slot* slot_;
};

WorkerPool::WorkerPool(WorkerPoolSettings settings, std::shared_ptr<spdlog::logger> logger,
                       std::shared_ptr<QueueMetrics> metrics)
    : settings_([&] {
        settings.command.env.emplace_back("WARREN_QUEUE", settings.queue);
        settings.command.env.emplace_back("WARREN_PROTOCOL",
                                          std::to_string(kWorkerProtocolVersion));
        return std::move(settings);
      }()),
      logger_(std::move(logger)),
      metrics_(std::move(metrics)),
      stderr_(logger_) {
  for (int i = 0; i < settings_.workers; ++i) {
    slots_.push_back(std::make_unique<Slot>(settings_.max_reply_bytes));
    start(*slots_.back());
    free_.push_back(slots_.back().get());
  }
}

WorkerPool::~WorkerPool() {
  // All at once: the grace is shared, not one per worker.
  for (const auto& slot : slots_) {
    if (slot->process) slot->process->closeInput();
  }
  const auto until = Clock::now() + kFinishGrace;
  for (const auto& slot : slots_) {
    if (!slot->process) continue;
    const auto left =
        std::max(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()),
                 std::chrono::milliseconds(0));
    const std::string how = slot->process->reap(left);
    logger_->debug("worker {} {}", slot->process->pid(), how);
  }
}

std::vector<pid_t> WorkerPool::pids() const {
  std::lock_guard lock(mutex_);
  std::vector<pid_t> pids;
  for (const Slot* slot : free_) {
    if (slot->process) pids.push_back(slot->process->pid());
  }
  return pids;
}

WorkerPool::Slot* WorkerPool::checkout(Clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  if (!returned_.wait_until(lock, deadline, [&] { return !free_.empty(); })) return nullptr;
  // A running worker first; else the one whose restart comes soonest, so
  // that a worker waiting out its backoff is not handed a request while
  // others could answer it.
  const auto best = std::min_element(free_.begin(), free_.end(), [](const Slot* a, const Slot* b) {
    if (static_cast<bool>(a->process) != static_cast<bool>(b->process)) {
      return static_cast<bool>(a->process);
    }
    return a->restart_at < b->restart_at;
  });
  Slot* slot = *best;
  free_.erase(best);
  return slot;
}

void WorkerPool::giveBack(Slot* slot) const noexcept {
  {
    std::lock_guard lock(mutex_);
    free_.push_back(slot);
  }
  returned_.notify_one();
}

void WorkerPool::start(Slot& slot) const {
  slot.process = std::make_unique<WorkerProcess>(settings_.command, stderr_.writeFd());
  slot.reader = FrameReader(settings_.max_reply_bytes);
  slot.initialised = settings_.init_bytes.empty();
  if (slot.started_before) {
    metrics_->workerRestarted();
    logger_->info("worker started again (pid {})", slot.process->pid());
  } else {
    logger_->debug("worker started (pid {})", slot.process->pid());
  }
  slot.started_before = true;
}

std::chrono::milliseconds restartBackoff(int failures_in_a_row, std::chrono::milliseconds max) {
  if (failures_in_a_row <= 1) return std::chrono::milliseconds(0);
  // The shift is capped long before it overflows: 10 ms << 20 is 2.9 hours.
  const int doublings = std::min(failures_in_a_row - 2, 20);
  return std::min<std::chrono::milliseconds>(kFirstBackoff * (1 << doublings), max);
}

void WorkerPool::failed(Slot& slot) const {
  slot.process.reset();
  ++slot.failures_in_a_row;
  slot.restart_at =
      Clock::now() + restartBackoff(slot.failures_in_a_row, settings_.restart_backoff_max);
}

void WorkerPool::handle(warren_request request, HandlerReply& reply) const noexcept {
  try {
    reply.body.clear();
    reply.content_type.clear();
    reply.error.reset();
    const Clock::time_point deadline = steadyDeadline(request.deadline_ms);
    Slot* slot = checkout(deadline);
    if (slot == nullptr) {
      setError(reply, WARREN_ERROR_DEADLINE_EXCEEDED, "no worker was free before the deadline");
      return;
    }
    const Checkout taken(*this, slot);
    if (slot->process) checkIdle(*slot);
    if (!slot->process) {
      if (slot->restart_at >= deadline) {
        std::this_thread::sleep_until(deadline);
        setError(reply, WARREN_ERROR_DEADLINE_EXCEEDED,
                 "the worker was waiting to be started again (it failed " +
                     std::to_string(slot->failures_in_a_row) + " times in a row)");
        return;
      }
      std::this_thread::sleep_until(slot->restart_at);
      try {
        start(*slot);
      } catch (const std::system_error& e) {
        failed(*slot);
        metrics_->workerCrashed();
        logger_->error("cannot start the worker: {}", e.what());
        setError(reply, WARREN_ERROR_HANDLER_CRASHED,
                 std::string("the handler's worker cannot be started: ") + e.what());
        return;
      }
    }
    exchange(*slot, request, deadline, reply);
  } catch (const std::exception& e) {
    reply.body.clear();
    reply.error = HandlerError{WARREN_ERROR_INTERNAL, e.what()};
  } catch (...) {
    reply.body.clear();
    reply.error = HandlerError{WARREN_ERROR_INTERNAL, "unknown error in the worker pool"};
  }
}

void WorkerPool::checkIdle(Slot& slot) const {
  WorkerProcess& process = *slot.process;
  std::array<pollfd, 2> fds{{{process.stdoutFd(), POLLIN, 0}, {process.pidFd(), POLLIN, 0}}};
  if (poll(fds.data(), fds.size(), 0) <= 0) return;  // the usual case: waiting for a request
  const pid_t pid = process.pid();
  std::array<char, 256> sample;  // NOLINT: filled by read()
  const ssize_t got =
      fds[0].revents != 0 ? read(process.stdoutFd(), sample.data(), sample.size()) : 0;
  // Its stdout closes a moment before it is seen to exit: give it that moment.
  const bool exited = fds[1].revents != 0 || (got == 0 && process.waitExited(kDyingGrace));
  std::string what;
  if (got > 0) {
    what = "wrote output between requests: '" +
           escapeForLog(std::string_view(sample.data(), static_cast<std::size_t>(got)), 64) + "'";
  } else if (!exited) {
    what = "closed its stdout between requests";
  }
  const std::string how = process.reap(std::chrono::milliseconds(0));
  if (what.empty() && process.exitedCleanly()) {
    // It ended after its last reply: no request lost, so no crash; it is
    // started again for this one.
    logger_->info("worker {} {} between requests", pid, how);
    slot.process.reset();
    return;
  }
  // The protocol broke, or it died, before this request reached it: not
  // the one lost, but a failure all the same (counted, backed off).
  logger_->error("worker {} {} between requests{}", pid, what.empty() ? how : what,
                 what.empty() ? "" : "; killed");
  failed(slot);
  metrics_->workerCrashed();
}

void WorkerPool::exchange(Slot& slot, const warren_request& request, Clock::time_point deadline,
                          HandlerReply& reply) const {
  WorkerProcess& process = *slot.process;
  const std::uint64_t id = slot.next_id;
  slot.out.clear();
  if (!slot.initialised) {
    slot.out = settings_.init_bytes;
    slot.initialised = true;
  }
  const std::size_t request_start = slot.out.size();
  encodeRequestFrame(id, settings_.queue, request, slot.out);
  if (frameHeaderBytes(slot.out, request_start) > kMaxFrameHeaderBytes) {
    slot.out.resize(request_start);  // the init bytes, if any, go with the next request
    slot.initialised = request_start == 0;
    setError(reply, WARREN_ERROR_TOO_LARGE,
             "the request's headers take more than " + std::to_string(kMaxFrameHeaderBytes) +
                 " bytes, the most a worker frame carries");
    return;
  }
  ++slot.next_id;
  std::size_t written = 0;
  std::string& buffer = slot.in;
  buffer.resize(kReadBytes);
  bool exited = false;
  for (;;) {
    const bool writing = written < slot.out.size();
    std::array<pollfd, 3> fds{{{process.stdoutFd(), POLLIN, 0},
                               {writing ? process.stdinFd() : -1, POLLOUT, 0},
                               {exited ? -1 : process.pidFd(), POLLIN, 0}}};
    const int timeout = exited
                            ? std::min(pollTimeout(deadline), static_cast<int>(kDyingGrace.count()))
                            : pollTimeout(deadline);
    const int ready = poll(fds.data(), fds.size(), timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (ready == 0) {
      if (exited) return crashed(slot, request, "", reply);
      return killAtDeadline(slot, request, reply);
    }
    if (fds[1].revents != 0) {
      const ssize_t put =
          write(process.stdinFd(), slot.out.data() + written, slot.out.size() - written);
      if (put > 0) {
        written += static_cast<std::size_t>(put);
      } else if (put < 0 && errno == EPIPE) {
        return crashed(slot, request, "", reply, "closed its stdin");  // or it is gone
      } else if (put < 0 && errno != EAGAIN && errno != EINTR) {
        return crashed(slot, request, std::string("cannot be written to (") + strerror(errno) + ")",
                       reply);
      }
    }
    if (fds[0].revents != 0) {
      const ssize_t got = read(process.stdoutFd(), buffer.data(), buffer.size());
      if (got == 0) return crashed(slot, request, "", reply);
      if (got < 0 && errno != EAGAIN && errno != EINTR) {
        return crashed(slot, request, std::string("cannot be read (") + strerror(errno) + ")",
                       reply);
      }
      if (got > 0) {
        slot.reader.feed(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
        std::optional<WorkerFrame> frame;
        try {
          frame = slot.reader.next();
        } catch (const std::runtime_error& e) {
          return crashed(slot, request, std::string("wrote a malformed reply: ") + e.what(), reply);
        }
        if (frame) {
          if (auto wrong = decodeReplyFrame(*frame, id, reply)) {
            return crashed(slot, request, "sent " + *wrong, reply);
          }
          if (written < slot.out.size()) {
            return crashed(slot, request, "replied before it read the whole request", reply);
          }
          if (slot.reader.buffered() > 0) {
            return crashed(slot, request, "wrote more than one reply", reply);
          }
          slot.failures_in_a_row = 0;
          if (exited) {
            // It answered, then exited: not a crash; started on next use.
            logger_->info("worker {} {} after its reply", process.pid(),
                          process.reap(std::chrono::milliseconds(0)));
            slot.process.reset();
          }
          return;
        }
      }
    }
    // Exited: whatever it wrote before is still read, for a short while.
    if (fds[2].revents != 0) exited = true;
  }
}

void WorkerPool::crashed(Slot& slot, const warren_request& request, const std::string& broke,
                         HandlerReply& reply, const char* closed) const {
  WorkerProcess& process = *slot.process;
  const pid_t pid = process.pid();
  // A moment to exit on its own, so that its stderr can say why.
  const bool ended = process.waitExited(kDyingGrace);
  const std::string how = process.reap(std::chrono::milliseconds(0));
  std::string what;
  if (broke.empty()) {
    what = ended ? how : std::string(closed) + " and was killed";
  } else {
    what = broke + (ended ? ", then " + how : " and was killed");
  }
  failed(slot);
  metrics_->workerCrashed();
  logger_->error("worker {} {} holding a request (correlation_id '{}'): answered handler_crashed",
                 pid, what, escapeForLog(viewOf(request.correlation_id)));
  setError(reply, WARREN_ERROR_HANDLER_CRASHED, "the handler's worker " + what);
}

void WorkerPool::killAtDeadline(Slot& slot, const warren_request& request,
                                HandlerReply& reply) const {
  const pid_t pid = slot.process->pid();
  slot.process->reap(std::chrono::milliseconds(0));
  failed(slot);
  metrics_->workerKilled();
  logger_->warn(
      "worker {} held a request (correlation_id '{}') past its deadline: killed; "
      "answered deadline_exceeded",
      pid, escapeForLog(viewOf(request.correlation_id)));
  setError(reply, WARREN_ERROR_DEADLINE_EXCEEDED,
           "the handler held the request past its deadline: its worker was killed");
}

}  // namespace warren
