#include "handler_pool.h"

namespace warren {

HandlerPool::HandlerPool(std::shared_ptr<const PluginInstance> handler, int threads,
                         CompletionSink sink)
    : state_(std::make_shared<State>()) {
  state_->handler = std::move(handler);
  state_->sink = std::move(sink);
  threads_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back(&HandlerPool::work, state_);
}

HandlerPool::~HandlerPool() {
  bool idle = false;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    state_->queue.clear();
    idle = state_->running == 0;
  }
  state_->work_ready.notify_all();
  for (auto& thread : threads_) {
    if (idle) {
      thread.join();
    } else {
      thread.detach();  // a handler overran the drain timeout; it keeps `state_` alive
    }
  }
}

void HandlerPool::submit(Job job) {
  {
    std::lock_guard lock(state_->mutex);
    state_->queue.push_back(std::move(job));
  }
  state_->work_ready.notify_one();
}

void HandlerPool::setSession(std::uint64_t session) noexcept {
  std::lock_guard lock(state_->mutex);
  state_->session = session;
}

std::vector<Job> HandlerPool::takeQueued() {
  std::lock_guard lock(state_->mutex);
  std::vector<Job> jobs(std::make_move_iterator(state_->queue.begin()),
                        std::make_move_iterator(state_->queue.end()));
  state_->queue.clear();
  return jobs;
}

bool HandlerPool::waitIdle(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(state_->mutex);
  return state_->idle.wait_until(lock, deadline, [this] { return state_->running == 0; });
}

int HandlerPool::busy() const {
  std::lock_guard lock(state_->mutex);
  return state_->running;
}

void HandlerPool::work(const std::shared_ptr<State>& state) {
  std::vector<warren_header> headers;
  for (;;) {
    Job job;
    {
      std::unique_lock lock(state->mutex);
      state->work_ready.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      if (state->stopping) return;
      job = std::move(state->queue.front());
      state->queue.pop_front();
      if (job.session != state->session) continue;
      ++state->running;
    }
    const InboundMessage& message = job.message;
    headers.clear();
    for (const auto& [key, value] : message.headers) {
      headers.push_back({{key.data(), key.size()}, {value.data(), value.size()}});
    }
    warren_request request{};
    request.body = {message.body.data(), message.body.size()};
    request.content_type = {message.content_type.data(), message.content_type.size()};
    request.headers = headers.empty() ? nullptr : headers.data();
    request.header_count = headers.size();
    request.redelivered = message.redelivered ? 1 : 0;

    Completion completion;
    completion.session = job.session;
    completion.channel = message.channel;
    completion.delivery_tag = message.delivery_tag;
    completion.reply_to = std::move(job.message.reply_to);
    completion.correlation_id = std::move(job.message.correlation_id);
    state->handler->handle(request, completion.reply);
    state->sink(std::move(completion));
    {
      std::lock_guard lock(state->mutex);
      --state->running;
    }
    state->idle.notify_all();
  }
}

}  // namespace warren
