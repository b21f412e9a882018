// Handler threads of one queue.
//
// The I/O thread never runs a handler: it submits a Job here and goes on
// servicing the socket (heartbeats included). A worker runs the plugin and
// hands the Completion to the pool's sink, which publishes the reply
// (see live_session.h).
#pragma once

#include "delivery_assembler.h"
#include "handler_reply.h"
#include "plugin_instance.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace warren {

struct Job {
  std::uint64_t session = 0;  // which connection the delivery came on
  InboundMessage message;
};

struct Completion {
  std::uint64_t session = 0;
  amqp_channel_t channel = 0;
  std::uint64_t delivery_tag = 0;
  std::string reply_to;
  std::string correlation_id;
  HandlerReply reply;
};

// Receives each finished request, on the worker thread that ran it.
using CompletionSink = std::function<void(Completion&&)>;

class HandlerPool {
 public:
  // `sink` may be called after the pool is gone (a handler that overran the
  // drain timeout): it must own what it uses.
  HandlerPool(std::shared_ptr<const PluginInstance> handler, int threads, CompletionSink sink);
  // Joins the workers if they are idle; otherwise leaves them running
  // detached (see abandon()).
  ~HandlerPool();
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  void submit(Job job);
  // Jobs of sessions other than `session` are dropped unrun: their
  // deliveries died with their connection and the broker redelivers them.
  void setSession(std::uint64_t session) noexcept;
  // Removes and returns the jobs no worker has started (to requeue them).
  std::vector<Job> takeQueued();
  // Waits until no handler is running or `deadline`; true when idle.
  bool waitIdle(std::chrono::steady_clock::time_point deadline);
  // Handlers still running: how many.
  int busy() const;

 private:
  struct State {
    std::shared_ptr<const PluginInstance> handler;
    CompletionSink sink;
    mutable std::mutex mutex;
    std::condition_variable work_ready;
    std::condition_variable idle;
    std::deque<Job> queue;
    std::uint64_t session = 0;
    int running = 0;
    bool stopping = false;
  };
  static void work(const std::shared_ptr<State>& state);

  // Shared with the workers, so a worker stuck in a plugin past shutdown
  // still has valid state (and a live plugin) when it returns.
  std::shared_ptr<State> state_;
  std::vector<std::thread> threads_;
};

}  // namespace warren
