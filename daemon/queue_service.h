// Serves one configured queue: one connection, one I/O thread, N channels
// consuming with prefetch P, and a pool of N handler threads.
//
// The I/O thread reads every frame and manages the session; handler threads
// publish their own replies through LiveSession, under its mutex. The I/O
// thread never blocks on anything but poll(), which it leaves at least every
// heartbeat/4, so heartbeats flow however long a handler takes. When the connection, a
// channel or the consumer is lost it starts a new session after a capped,
// jittered backoff; deliveries of the lost session are redelivered by the
// broker and answered again.
#pragma once

#include "amqp_connection.h"
#include "backoff.h"
#include "broker_url.h"
#include "config.h"
#include "delivery_assembler.h"
#include "handler_pool.h"
#include "live_session.h"
#include "plugin_instance.h"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace warren {

struct BrokerSettings {
  BrokerAddress address;
  ConnectionOptions connection;
  ReconnectConfig reconnect;
};

class QueueService {
 public:
  QueueService(QueueConfig queue, BrokerSettings broker, std::chrono::milliseconds drain_timeout,
               std::shared_ptr<const PluginInstance> handler,
               std::shared_ptr<spdlog::logger> logger);
  // Stops (as requestStop) and joins.
  ~QueueService();
  QueueService(const QueueService&) = delete;
  QueueService& operator=(const QueueService&) = delete;

  void start();
  // Stop taking requests, finish those in flight (bounded by the drain
  // timeout), close. Returns at once; join() waits.
  void requestStop() noexcept;
  void join();

  // Blocks until every consumer of the current session is consuming, or the
  // deadline; true when consuming.
  bool waitConsuming(std::chrono::steady_clock::time_point deadline) const;
  // True after join() when handlers were still running at the drain deadline.
  bool abandonedHandlers() const noexcept { return abandoned_.load(); }

  const QueueCounters& counters() const noexcept { return live_->counters(); }
  const QueueConfig& config() const noexcept { return queue_; }

 private:
  enum class SessionEnd { kDrained, kDrainTimedOut };

  void run();
  void openSession(AmqpConnection& connection);
  SessionEnd serve(AmqpConnection& connection, std::uint64_t session);
  void handleFrame(AmqpConnection& connection, const amqp_frame_t& frame, std::uint64_t session,
                   bool draining);
  void handleMessage(AmqpConnection& connection, InboundMessage message, std::uint64_t session,
                     bool draining);
  void beginDrain(AmqpConnection& connection);
  void setConsuming(bool consuming);
  // Sleeps for the backoff delay unless a stop is requested first.
  void waitBeforeRetry(std::chrono::milliseconds delay);
  void logFailure(const std::string& what, std::uint32_t attempt, std::chrono::milliseconds delay,
                  bool misconfigured);

  QueueConfig queue_;
  BrokerSettings broker_;
  std::chrono::milliseconds drain_timeout_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<LiveSession> live_;
  HandlerPool pool_;
  DeliveryAssembler assembler_;

  std::vector<std::string> consumer_tags_;  // index = channel - 1

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> abandoned_{false};
  mutable std::mutex state_mutex_;
  mutable std::condition_variable state_changed_;
  bool consuming_ = false;
  std::thread io_thread_;
};

}  // namespace warren
