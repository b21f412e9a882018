#include "live_session.h"

#include "reply_properties.h"

#include <string_view>

namespace warren {
void LiveSession::attach(AmqpConnection* connection, std::uint64_t session) noexcept {
  connection_ = connection;
  session_ = session;
  in_flight_ = 0;
  draining_ = false;
}

void LiveSession::detach() noexcept { connection_ = nullptr; }

void LiveSession::answer(const Completion& completion) noexcept {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (connection_ == nullptr || completion.session != session_) {
      ++counters_.stale;
      return;
    }
    try {
      publishReply(*connection_, completion);
    } catch (const std::exception& e) {
      // The I/O thread owns recovery: tell it, and let it end the session.
      try {
        events_.push(e.what());
      } catch (...) {
        events_.wake();
      }
    }
    wake = --in_flight_ == 0 && draining_;
  }
  if (wake) events_.wake();
}

void LiveSession::publishReply(AmqpConnection& connection, const Completion& completion) {
  const ReplyProperties properties(completion.correlation_id, completion.reply);
  const HandlerReply& reply = completion.reply;
  const std::string error_body = reply.error ? errorReplyBody(*reply.error) : std::string();
  // Reply first, then ack, on the same channel: AMQP keeps their order, so a
  // channel lost in between means the request is redelivered and answered
  // again, never acked unanswered.
  connection.publish(completion.channel, completion.reply_to, properties.get(),
                     reply.error ? std::string_view(error_body) : std::string_view(reply.body),
                     /*mandatory=*/!isDirectReplyTo(completion.reply_to));
  connection.ack(completion.channel, completion.delivery_tag);
  if (reply.error) {
    ++counters_.replied_error;
    logger_->debug("error reply {} to '{}': {}", errorCodeName(reply.error->code),
                   completion.reply_to, reply.error->message);
  } else {
    ++counters_.replied;
  }
}

}  // namespace warren
