// SPDX-License-Identifier: Apache-2.0
#include "worker_pool.h"

#include "deferred_reply.h"
#include "log_escape.h"
#include "worker_protocol.h"

#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace warren {
namespace {

// How long a worker that broke the protocol or closed its stdout may take
// to exit on its own (and say why on stderr) before it is killed; and how
// long what a worker wrote before it exited is still read.
constexpr std::chrono::milliseconds kDyingGrace{200};
// At shutdown, how long the workers may take to exit after their stdin closed.
constexpr std::chrono::milliseconds kFinishGrace{2000};
// The most read from a worker's stdout at once.
constexpr std::size_t kReadBytes = 64 * 1024;
// The first wait of a worker that keeps failing.
constexpr std::chrono::milliseconds kFirstBackoff{10};
// Events taken from the epoll descriptor at once.
constexpr int kEventBatch = 64;

std::string_view viewOf(warren_str text) noexcept {
  return text.data != nullptr ? std::string_view(text.data, text.size) : std::string_view();
}

warren_str strOf(const std::string& text) noexcept { return {text.data(), text.size()}; }

// The steady-clock moment of a deadline in ms since the epoch.
WorkerPool::Clock::time_point steadyDeadline(std::int64_t deadline_ms) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return WorkerPool::Clock::now() + std::chrono::milliseconds(deadline_ms - now_ms);
}

// Milliseconds until `when` rounded up (0 once it passed), for poll().
int pollTimeout(WorkerPool::Clock::time_point when) {
  if (when == WorkerPool::Clock::time_point::max()) return -1;
  const auto left = when - WorkerPool::Clock::now();
  if (left <= WorkerPool::Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 1 << 30));
}

// An epoll event's tag: which worker (by slot and start), which stream.
std::uint64_t eventTag(std::size_t slot, std::uint32_t generation, std::uint8_t source) {
  return (std::uint64_t{generation} << 32) | (std::uint64_t{source} << 24) |
         static_cast<std::uint64_t>(slot);
}

// The sink of a caller without one: handle() waits for its own reply while
// driving the pool on its thread, so post() comes on that thread.
class SyncCompletion final : public DeferredSink {
 public:
  void post(std::shared_ptr<DeferredReply> /*completed*/) noexcept override {
    posted_.store(true, std::memory_order_release);
  }
  bool posted() const noexcept { return posted_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> posted_{false};
};

}  // namespace

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
      stderr_(logger_),
      events_(epoll_create1(EPOLL_CLOEXEC)) {
  if (!events_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  std::lock_guard lock(mutex_);
  for (int i = 0; i < settings_.workers; ++i) {
    slots_.push_back(std::make_unique<Slot>(slots_.size(), settings_.max_reply_bytes));
    start(*slots_.back());
  }
}

WorkerPool::~WorkerPool() {
  std::lock_guard lock(mutex_);
  // Whoever waits for these no longer does (the queue stopped): they are
  // completed only to be freed.
  for (Waiting& waiting : waiting_) {
    completeWith(waiting.reply, WARREN_ERROR_HANDLER_CRASHED, "the queue stopped");
  }
  waiting_.clear();
  for (const auto& slot : slots_) {
    if (slot->held) {
      completeWith(slot->held->reply, WARREN_ERROR_HANDLER_CRASHED, "the queue stopped");
      slot->held.reset();
    }
  }
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
  for (const auto& slot : slots_) {
    if (slot->process) pids.push_back(slot->process->pid());
  }
  return pids;
}

std::chrono::milliseconds restartBackoff(int failures_in_a_row, std::chrono::milliseconds max) {
  if (failures_in_a_row <= 1) return std::chrono::milliseconds(0);
  // The shift is capped long before it overflows: 10 ms << 20 is 2.9 hours.
  const int doublings = std::min(failures_in_a_row - 2, 20);
  return std::min<std::chrono::milliseconds>(kFirstBackoff * (1 << doublings), max);
}

// ---------------------------------------------------------------- requests in

void WorkerPool::handle(warren_request request, HandlerReply& reply) const noexcept {
  reply.body.clear();
  reply.content_type.clear();
  reply.error.reset();
  const bool sync = reply.sink == nullptr;
  std::shared_ptr<SyncCompletion> completion;
  std::unique_lock<std::mutex> sync_caller;
  try {
    if (sync) {
      sync_caller = std::unique_lock(sync_callers_);
      completion = std::make_shared<SyncCompletion>();
    }
    warren_reply* handle =
        DeferredReply::begin(reply, sync ? std::shared_ptr<DeferredSink>(completion) : reply.sink,
                             DeferredReply::Timing::kByHandler);
    if (handle == nullptr) {
      reply.error = HandlerError{WARREN_ERROR_INTERNAL, "out of memory"};
      return;
    }
    if (sync) drive();  // what happened since the last call, as the engine's turn would
    {
      std::lock_guard lock(mutex_);
      try {
        submit(request, handle, steadyDeadline(request.deadline_ms));
      } catch (const std::exception& e) {
        // Out of memory before a worker held it: answered here, once.
        completeWith(handle, WARREN_ERROR_INTERNAL, e.what());
      }
      updateWakeAt();
    }
    if (!sync) return;
    while (!completion->posted()) {
      pollfd ready{events_.get(), POLLIN, 0};
      if (poll(&ready, 1, pollTimeout(wakeAt())) < 0 && errno != EINTR) {
        throw std::system_error(errno, std::generic_category(), "poll");
      }
      drive();
    }
    HandlerReply done = std::move(reply.deferred->reply());
    reply.deferred.reset();
    reply.body = std::move(done.body);
    reply.content_type = std::move(done.content_type);
    reply.error = std::move(done.error);
  } catch (const std::exception& e) {
    // Before the request was submitted, or a sync caller's poll() failed.
    reply.deferred.reset();
    reply.body.clear();
    reply.error = HandlerError{WARREN_ERROR_INTERNAL, e.what()};
  }
}

void WorkerPool::submit(const warren_request& request, warren_reply* reply,
                        Clock::time_point deadline) const {
  const Clock::time_point now = Clock::now();
  if (waiting_.empty()) {
    if (Slot* slot = idleSlot(now)) {
      if (ensureRunning(*slot, reply)) send(*slot, request, reply, deadline);
      return;
    }
  }
  try {
    Waiting waiting;
    waiting.body = viewOf(request.body);
    waiting.content_type = viewOf(request.content_type);
    waiting.correlation_id = viewOf(request.correlation_id);
    waiting.headers.reserve(request.header_count);
    for (std::size_t i = 0; i < request.header_count; ++i) {
      waiting.headers.emplace_back(viewOf(request.headers[i].key),
                                   viewOf(request.headers[i].value));
    }
    waiting.deadline_ms = request.deadline_ms;
    waiting.redelivered = request.redelivered;
    waiting.delivery_count = request.delivery_count;
    waiting.reply = reply;
    waiting.deadline = deadline;
    waiting_.push_back(std::move(waiting));
  } catch (const std::bad_alloc&) {
    completeWith(reply, WARREN_ERROR_INTERNAL, "out of memory");
  }
}

WorkerPool::Slot* WorkerPool::idleSlot(Clock::time_point now) const {
  // A running worker first; else one that may be started again now.
  Slot* startable = nullptr;
  for (const auto& owned : slots_) {
    Slot& slot = *owned;
    if (slot.held) continue;
    if (slot.process) return &slot;
    if (startable == nullptr && slot.restart_at <= now) startable = &slot;
  }
  return startable;
}

bool WorkerPool::ensureRunning(Slot& slot, warren_reply* reply) const {
  if (slot.process) return true;
  try {
    start(slot);
    return true;
  } catch (const std::system_error& e) {
    failed(slot);
    metrics_->workerCrashed();
    logger_->error("cannot start the worker: {}", e.what());
    completeWith(reply, WARREN_ERROR_HANDLER_CRASHED,
                 std::string("the handler's worker cannot be started: ") + e.what());
    return false;
  }
}

void WorkerPool::send(Slot& slot, const warren_request& request, warren_reply* reply,
                      Clock::time_point deadline) const {
  slot.out.clear();
  slot.written = 0;
  const bool init = !slot.initialised;
  if (init) slot.out = settings_.init_bytes;
  const std::size_t request_start = slot.out.size();
  encodeRequestFrame(slot.next_id, settings_.queue, request, slot.out);
  if (frameHeaderBytes(slot.out, request_start) > kMaxFrameHeaderBytes) {
    slot.out.clear();  // the init bytes, if any, go with the next request
    completeWith(reply, WARREN_ERROR_TOO_LARGE,
                 "the request's headers take more than " + std::to_string(kMaxFrameHeaderBytes) +
                     " bytes, the most a worker frame carries");
    return;
  }
  slot.initialised = true;
  slot.held = Held{reply, slot.next_id, std::string(viewOf(request.correlation_id)), deadline};
  ++slot.next_id;
  flush(slot);
}

void WorkerPool::flush(Slot& slot) const {
  WorkerProcess& process = *slot.process;
  while (slot.written < slot.out.size()) {
    const ssize_t put =
        write(process.stdinFd(), slot.out.data() + slot.written, slot.out.size() - slot.written);
    if (put > 0) {
      slot.written += static_cast<std::size_t>(put);
      continue;
    }
    if (put < 0 && errno == EINTR) continue;
    if (put < 0 && errno == EAGAIN) {
      // The pipe is full: the rest once it can take more.
      if (!slot.watching_stdin) {
        try {
          watch(slot, Source::kStdin, process.stdinFd(), EPOLLOUT);
        } catch (const std::system_error& e) {
          return beginDying(slot, std::string("cannot be watched (") + e.what() + ")");
        }
        slot.watching_stdin = true;
      }
      return;
    }
    if (put < 0 && errno == EPIPE)
      return beginDying(slot, "", "closed its stdin");  // or it is gone
    return beginDying(slot, std::string("cannot be written to (") + strerror(errno) + ")");
  }
  if (slot.watching_stdin) {
    unwatch(process.stdinFd());
    slot.watching_stdin = false;
  }
}

void WorkerPool::dispatchWaiting(Clock::time_point now) const {
  // Those past their deadline first: no worker was free in time.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->deadline > now) {
      ++it;
      continue;
    }
    int failures = 0;
    for (const auto& slot : slots_) {
      if (!slot->process && !slot->held) failures = std::max(failures, slot->failures_in_a_row);
    }
    completeWith(it->reply, WARREN_ERROR_DEADLINE_EXCEEDED,
                 failures > 1 ? "the worker was waiting to be started again (it failed " +
                                    std::to_string(failures) + " times in a row)"
                              : std::string("no worker was free before the deadline"));
    it = waiting_.erase(it);
  }
  while (!waiting_.empty()) {
    Slot* slot = idleSlot(now);
    if (slot == nullptr) return;
    Waiting next = std::move(waiting_.front());
    waiting_.pop_front();
    if (!ensureRunning(*slot, next.reply)) continue;
    try {
      std::vector<warren_header> headers;
      headers.reserve(next.headers.size());
      for (const auto& [key, value] : next.headers) headers.push_back({strOf(key), strOf(value)});
      warren_request request{};
      request.struct_size = sizeof(request);
      request.body = strOf(next.body);
      request.content_type = strOf(next.content_type);
      request.headers = headers.empty() ? nullptr : headers.data();
      request.header_count = headers.size();
      request.redelivered = next.redelivered;
      request.correlation_id = strOf(next.correlation_id);
      request.deadline_ms = next.deadline_ms;
      request.delivery_count = next.delivery_count;
      send(*slot, request, next.reply, next.deadline);
    } catch (const std::exception& e) {
      // Out of memory before the worker held it (send() sets `held` last
      // but for the write): answered here, once.
      if (!slot->held || slot->held->reply != next.reply) {
        completeWith(next.reply, WARREN_ERROR_INTERNAL, e.what());
      }
    }
  }
}

// ---------------------------------------------------------------- driving

WorkerPool::Clock::time_point WorkerPool::wakeAt() const noexcept {
  std::lock_guard lock(mutex_);
  return wake_at_;
}

void WorkerPool::drive() const noexcept {
  std::lock_guard lock(mutex_);
  try {
    processEvents();
    const Clock::time_point now = Clock::now();
    runTimers(now);
    dispatchWaiting(now);
  } catch (const std::exception& e) {
    // Out of memory at worst; the deadlines still end what is held.
    logger_->error("worker pool: {}", e.what());
  }
  updateWakeAt();
}

void WorkerPool::processEvents() const {
  std::array<epoll_event, kEventBatch> events{};
  const int ready = epoll_wait(events_.get(), events.data(), kEventBatch, 0);
  if (ready < 0 && errno != EINTR) {
    throw std::system_error(errno, std::generic_category(), "epoll_wait");
  }
  for (int i = 0; i < ready; ++i) {
    const std::uint64_t tag = events[static_cast<std::size_t>(i)].data.u64;
    const std::size_t index = tag & 0xffffffU;
    const auto source = static_cast<Source>((tag >> 24) & 0xffU);
    const auto generation = static_cast<std::uint32_t>(tag >> 32);
    if (index >= slots_.size()) continue;
    Slot& slot = *slots_[index];
    // Ended meanwhile (a worker started since has another generation).
    if (!slot.process || slot.generation != generation) continue;
    if (slot.dying) {
      // Only its exit is watched still: what it was given the grace for.
      if (source == Source::kExit) finishCrash(slot);
      continue;
    }
    switch (source) {
      case Source::kStdout:
        onStdout(slot);
        break;
      case Source::kStdin:
        if (slot.watching_stdin) flush(slot);
        break;
      case Source::kExit:
        onExit(slot);
        break;
    }
  }
}

void WorkerPool::onStdout(Slot& slot) const {
  WorkerProcess& process = *slot.process;
  std::array<char, kReadBytes> buffer;  // NOLINT: filled by read()
  const ssize_t got = read(process.stdoutFd(), buffer.data(), buffer.size());
  if (got < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    const std::string why = std::string("cannot be read (") + strerror(errno) + ")";
    if (!slot.held) return idleBroke(slot, why);
    return beginDying(slot, why);
  }
  if (got == 0) {
    if (!slot.held) return idleBroke(slot, "");
    // Exited: nothing more comes, and it has ended already.
    if (slot.exited) {
      slot.dying = Dying{"", "closed its stdout", Clock::now()};
      return finishCrash(slot);
    }
    return beginDying(slot, "");
  }
  const std::string_view bytes(buffer.data(), static_cast<std::size_t>(got));
  if (!slot.held) {
    return idleBroke(slot, "wrote output between requests: '" + escapeForLog(bytes, 64) + "'");
  }
  slot.reader.feed(bytes);
  std::optional<WorkerFrame> frame;
  try {
    frame = slot.reader.next();
  } catch (const std::runtime_error& e) {
    return beginDying(slot, std::string("wrote a malformed reply: ") + e.what());
  }
  if (frame) onReply(slot, std::move(*frame));
}

void WorkerPool::onReply(Slot& slot, WorkerFrame frame) const {
  Held& held = *slot.held;
  if (auto wrong = decodeReplyFrame(frame, held.id, *held.reply->out)) {
    return beginDying(slot, "sent " + *wrong);
  }
  if (slot.written < slot.out.size()) {
    return beginDying(slot, "replied before it read the whole request");
  }
  if (slot.reader.buffered() > 0) return beginDying(slot, "wrote more than one reply");
  slot.failures_in_a_row = 0;
  complete(held.reply);
  slot.held.reset();
  // It answered, then exited: no request lost; a crash only if it did not
  // exit cleanly.
  if (slot.exited) idleBroke(slot, "");
}

void WorkerPool::onExit(Slot& slot) const {
  WorkerProcess& process = *slot.process;
  unwatch(process.pidFd());  // it stays readable
  if (slot.held) {
    // What it wrote before is still read, for a short while.
    slot.exited = true;
    slot.exited_until = Clock::now() + kDyingGrace;
    return;
  }
  // Between requests: what it wrote last says whether it broke the protocol.
  std::array<char, 256> sample;  // NOLINT: filled by read()
  const ssize_t got = read(process.stdoutFd(), sample.data(), sample.size());
  if (got > 0) {
    return idleBroke(
        slot, "wrote output between requests: '" +
                  escapeForLog(std::string_view(sample.data(), static_cast<std::size_t>(got)), 64) +
                  "'");
  }
  idleBroke(slot, "");
}

void WorkerPool::idleBroke(Slot& slot, std::string what) const {
  WorkerProcess& process = *slot.process;
  const pid_t pid = process.pid();
  // Its stdout closes a moment before it is seen to exit: give it that moment.
  const bool exited = process.waitExited(what.empty() ? kDyingGrace : std::chrono::milliseconds(0));
  if (what.empty() && !exited) what = "closed its stdout between requests";
  const std::string how = process.reap(std::chrono::milliseconds(0));
  if (what.empty() && process.exitedCleanly()) {
    // It ended after its last reply: no request lost, so no crash; it is
    // started again for the next one.
    logger_->info("worker {} {} between requests", pid, how);
    slot.process.reset();
    slot.exited = false;
    slot.restart_at = Clock::now();
    return;
  }
  // The protocol broke, or it died, with no request to lose: a failure all
  // the same (counted, backed off).
  logger_->error("worker {} {} between requests{}", pid, what.empty() ? how : what,
                 what.empty() ? "" : "; killed");
  failed(slot);
  metrics_->workerCrashed();
}

void WorkerPool::beginDying(Slot& slot, std::string broke, const char* closed) const {
  WorkerProcess& process = *slot.process;
  unwatch(process.stdoutFd());
  if (slot.watching_stdin) unwatch(process.stdinFd());
  slot.watching_stdin = false;
  slot.dying = Dying{std::move(broke), closed, Clock::now() + kDyingGrace};
  // Already gone: nothing to wait for.
  if (slot.exited || process.hasExited()) finishCrash(slot);
}

void WorkerPool::finishCrash(Slot& slot) const {
  WorkerProcess& process = *slot.process;
  const pid_t pid = process.pid();
  const Dying dying = slot.dying.value_or(Dying{});
  const bool ended = slot.exited || process.hasExited();
  const std::string how = process.reap(std::chrono::milliseconds(0));
  std::string what;
  if (dying.broke.empty()) {
    what = ended ? how : std::string(dying.closed) + " and was killed";
  } else {
    what = dying.broke + (ended ? ", then " + how : " and was killed");
  }
  const Held held = std::move(*slot.held);
  failed(slot);
  metrics_->workerCrashed();
  logger_->error("worker {} {} holding a request (correlation_id '{}'): answered handler_crashed",
                 pid, what, escapeForLog(held.correlation_id));
  completeWith(held.reply, WARREN_ERROR_HANDLER_CRASHED, "the handler's worker " + what);
}

void WorkerPool::killAtDeadline(Slot& slot) const {
  const pid_t pid = slot.process->pid();
  slot.process->reap(std::chrono::milliseconds(0));
  const Held held = std::move(*slot.held);
  failed(slot);
  metrics_->workerKilled();
  logger_->warn(
      "worker {} held a request (correlation_id '{}') past its deadline: killed; "
      "answered deadline_exceeded",
      pid, escapeForLog(held.correlation_id));
  completeWith(held.reply, WARREN_ERROR_DEADLINE_EXCEEDED,
               "the handler held the request past its deadline: its worker was killed");
}

void WorkerPool::runTimers(Clock::time_point now) const {
  for (const auto& owned : slots_) {
    Slot& slot = *owned;
    if (!slot.held || !slot.process) continue;
    if (now >= slot.held->deadline) {
      killAtDeadline(slot);
    } else if (slot.dying && now >= slot.dying->until) {
      finishCrash(slot);
    } else if (!slot.dying && slot.exited && now >= slot.exited_until) {
      slot.dying = Dying{};
      finishCrash(slot);
    }
  }
}

void WorkerPool::updateWakeAt() const {
  Clock::time_point at = Clock::time_point::max();
  for (const auto& owned : slots_) {
    const Slot& slot = *owned;
    if (slot.held) {
      at = std::min(at, slot.held->deadline);
      if (slot.dying) at = std::min(at, slot.dying->until);
      if (slot.exited) at = std::min(at, slot.exited_until);
    } else if (!slot.process && !waiting_.empty()) {
      at = std::min(at, slot.restart_at);
    }
  }
  for (const Waiting& waiting : waiting_) at = std::min(at, waiting.deadline);
  wake_at_ = at;
}

// ---------------------------------------------------------------- workers

void WorkerPool::start(Slot& slot) const {
  auto process = std::make_unique<WorkerProcess>(settings_.command, stderr_.writeFd());
  ++slot.generation;
  // Watched before it is the slot's: a failure here leaves no worker behind.
  watch(slot, Source::kStdout, process->stdoutFd(), EPOLLIN);
  watch(slot, Source::kExit, process->pidFd(), EPOLLIN);
  slot.process = std::move(process);
  slot.reader = FrameReader(settings_.max_reply_bytes);
  slot.initialised = settings_.init_bytes.empty();
  slot.exited = false;
  slot.dying.reset();
  slot.watching_stdin = false;
  if (slot.started_before) {
    metrics_->workerRestarted();
    logger_->info("worker started again (pid {})", slot.process->pid());
  } else {
    logger_->debug("worker started (pid {})", slot.process->pid());
  }
  slot.started_before = true;
}

void WorkerPool::watch(Slot& slot, Source source, int fd, std::uint32_t events) const {
  epoll_event event{};
  event.events = events;
  event.data.u64 = eventTag(slot.index, slot.generation, static_cast<std::uint8_t>(source));
  if (epoll_ctl(events_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }
}

void WorkerPool::unwatch(int fd) const noexcept {
  // Closing a descriptor also takes it out; this is for the ones kept open.
  epoll_ctl(events_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void WorkerPool::failed(Slot& slot) const {
  slot.process.reset();  // reaped already, or killed and reaped here
  slot.held.reset();
  slot.dying.reset();
  slot.exited = false;
  slot.watching_stdin = false;
  ++slot.failures_in_a_row;
  slot.restart_at =
      Clock::now() + restartBackoff(slot.failures_in_a_row, settings_.restart_backoff_max);
}

void WorkerPool::completeWith(warren_reply* reply, warren_error_code code, std::string message) {
  HandlerReply& out = *reply->out;
  out.body.clear();
  out.content_type.clear();
  out.error = HandlerError{code, std::move(message)};
  complete(reply);
}

void WorkerPool::complete(warren_reply* reply) { DeferredReply::complete(reply); }

}  // namespace warren
