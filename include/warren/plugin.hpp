// SPDX-License-Identifier: Apache-2.0
// Header-only C++ helper for writing a warren plugin as a class.
//
//   class Echo {
//    public:
//     explicit Echo(const warren::Options& options) { options.rejectUnknown({}); }
//     void handle(const warren::Request& request, warren::Reply& reply) {
//       reply.write(request.body());
//     }
//   };
//   WARREN_PLUGIN(Echo, "echo", "1.0.0", "Replies with the request body")
//
// The class needs a constructor taking `const warren::Options&` and a
// thread-safe `handle(const warren::Request&, warren::Reply&)` (it is called
// from several threads at once). Everything here is noexcept at the C
// boundary: an exception thrown by the constructor refuses the options, one
// thrown by handle() becomes an error reply (warren::Error keeps its code,
// anything else is reported as "internal").
#pragma once

#include <warren/plugin.h>

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace warren {

// Thrown from handle(): becomes an error reply with this code and message.
class Error : public std::runtime_error {
 public:
  Error(warren_error_code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  warren_error_code code() const noexcept { return code_; }

 private:
  warren_error_code code_;
};

// Thrown from the constructor: refuses the queue's options. `key` names the
// offending option, or is empty when the problem is not one key.
class OptionError : public std::runtime_error {
 public:
  OptionError(std::string key, const std::string& message)
      : std::runtime_error(message), key_(std::move(key)) {}
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

inline std::string_view view(warren_str s) noexcept { return {s.data, s.size}; }

// The queue's `options` map, valid only inside the constructor.
class Options {
 public:
  Options(const warren_option* options, std::size_t count) noexcept
      : options_(options), count_(count) {}

  bool has(std::string_view key) const noexcept { return find(key) != nullptr; }
  // The value of `key` as text, or `fallback` when absent.
  std::string get(std::string_view key, std::string_view fallback) const {
    const warren_option* option = find(key);
    return std::string(option != nullptr ? view(option->value) : fallback);
  }
  // The value of `key` as an integer, or `fallback` when absent; throws
  // OptionError naming the key when it is not an integer.
  std::int64_t getInt(std::string_view key, std::int64_t fallback) const {
    const warren_option* option = find(key);
    if (option == nullptr) return fallback;
    const std::string text(view(option->value));
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size()) {
      throw OptionError(std::string(key), "expected an integer, got '" + text + "'");
    }
    return value;
  }

  // Refuses any key not in `allowed`, naming the allowed ones.
  void rejectUnknown(std::initializer_list<std::string_view> allowed) const {
    for (std::size_t i = 0; i < count_; ++i) {
      const std::string_view key = view(options_[i].key);
      bool known = false;
      for (std::string_view a : allowed) known = known || a == key;
      if (known) continue;
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw OptionError(std::string(key), "unknown option '" + std::string(key) +
                                              "'; allowed: " + (list.empty() ? "none" : list));
    }
  }

 private:
  const warren_option* find(std::string_view key) const noexcept {
    for (std::size_t i = 0; i < count_; ++i) {
      if (view(options_[i].key) == key) return &options_[i];
    }
    return nullptr;
  }
  const warren_option* options_;
  std::size_t count_;
};

// A request, valid only inside handle().
class Request {
 public:
  explicit Request(const warren_request& raw) noexcept : raw_(raw) {}
  std::string_view body() const noexcept { return view(raw_.body); }
  std::string_view contentType() const noexcept { return view(raw_.content_type); }
  std::string_view queue() const noexcept { return view(raw_.queue); }
  bool redelivered() const noexcept { return raw_.redelivered != 0; }
  // The value of header `key` as text, or empty when absent.
  std::string_view header(std::string_view key) const noexcept {
    for (std::size_t i = 0; i < raw_.header_count; ++i) {
      if (view(raw_.headers[i].key) == key) return view(raw_.headers[i].value);
    }
    return {};
  }
  // Since ABI 1.1; on an older host: empty, no deadline, 0 or 1.
  std::string_view correlationId() const noexcept {
    return WARREN_REQUEST_HAS(&raw_, correlation_id) ? view(raw_.correlation_id)
                                                     : std::string_view();
  }
  // When the caller stops waiting: milliseconds since the Unix epoch, 0 when
  // the host does not say (a 1.0 host).
  std::int64_t deadlineMs() const noexcept {
    return WARREN_REQUEST_HAS(&raw_, deadline_ms) ? raw_.deadline_ms : 0;
  }
  // How many times the broker delivered this request before this delivery.
  std::uint32_t deliveryCount() const noexcept {
    if (WARREN_REQUEST_HAS(&raw_, delivery_count)) return raw_.delivery_count;
    return redelivered() ? 1 : 0;
  }
  const warren_request& raw() const noexcept { return raw_; }

 private:
  const warren_request& raw_;
};

// A reply deferred by Reply::defer() (ABI 1.1, warren_host_api.reply_defer):
// write it later, from any thread (one at a time: move it where the work
// is done), then complete() it. One destroyed without complete() completes
// as an `internal` error, so that no request is left unanswered. Empty
// (false) when the host could not defer.
class Deferred {
 public:
  Deferred() noexcept = default;
  Deferred(const warren_host_api* host, warren_reply* raw) noexcept : host_(host), raw_(raw) {}
  Deferred(Deferred&& other) noexcept : host_(other.host_), raw_(other.raw_) {
    other.raw_ = nullptr;
  }
  Deferred& operator=(Deferred&& other) noexcept {
    if (this != &other) {
      abandon();
      host_ = other.host_;
      raw_ = other.raw_;
      other.raw_ = nullptr;
    }
    return *this;
  }
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;
  ~Deferred() { abandon(); }

  explicit operator bool() const noexcept { return raw_ != nullptr; }
  void write(std::string_view bytes) noexcept {
    host_->reply_write(raw_, bytes.data(), bytes.size());
  }
  void contentType(std::string_view type) noexcept {
    host_->reply_set_content_type(raw_, type.data(), type.size());
  }
  void error(warren_error_code code, std::string_view message) noexcept {
    host_->reply_error(raw_, code, message.data(), message.size());
  }
  // Sends the reply; the object is empty afterwards.
  void complete() noexcept {
    if (raw_ == nullptr) return;
    host_->reply_complete(raw_);
    raw_ = nullptr;
  }

 private:
  void abandon() noexcept {
    if (raw_ == nullptr) return;
    error(WARREN_ERROR_INTERNAL, "the handler dropped its deferred reply without completing it");
    complete();
  }
  const warren_host_api* host_ = nullptr;
  warren_reply* raw_ = nullptr;
};

// The reply being built, valid only inside handle(). The host copies.
class Reply {
 public:
  Reply(const warren_host_api* host, warren_reply* raw) noexcept : host_(host), raw_(raw) {}
  void write(std::string_view bytes) noexcept {
    host_->reply_write(raw_, bytes.data(), bytes.size());
  }
  void contentType(std::string_view type) noexcept {
    host_->reply_set_content_type(raw_, type.data(), type.size());
  }
  void error(warren_error_code code, std::string_view message) noexcept {
    host_->reply_error(raw_, code, message.data(), message.size());
  }
  // Defers this reply (see Deferred): handle() returns, and the request is
  // answered when the Deferred completes. Empty on a 1.0 host or when
  // already deferred; answer through this Reply then. An exception thrown
  // by handle() after deferring does not reach the deferred reply.
  Deferred defer() noexcept {
    if (!WARREN_HOST_HAS(host_, reply_defer)) return {};
    warren_reply* deferred = host_->reply_defer(raw_);
    if (deferred == nullptr) return {};
    return Deferred(host_, deferred);
  }

 private:
  const warren_host_api* host_;
  warren_reply* raw_;
};

// Logging through the host, stamped with queue and plugin name.
class Log {
 public:
  Log(const warren_host_api* host, warren_host* context) noexcept
      : host_(host), context_(context) {}
  void operator()(warren_log_level level, std::string_view message) const noexcept {
    host_->log(context_, level, message.data(), message.size());
  }

 private:
  const warren_host_api* host_;
  warren_host* context_;
};

namespace detail {

template <class Handler>
struct Instance {
  const warren_host_api* host;
  Handler handler;
};

template <class Handler>
void* create(const warren_host_api* host, warren_host* context, const warren_option* options,
             std::size_t option_count, warren_create_error* error) noexcept {
  auto fail = [&](std::string_view key, std::string_view message) {
    host->create_error(error, key.data(), key.size(), message.data(), message.size());
  };
  try {
    const Options view_of_options(options, option_count);
    if constexpr (std::is_constructible_v<Handler, const Options&, Log>) {
      return new Instance<Handler>{host, Handler(view_of_options, Log(host, context))};
    } else {
      (void)context;
      return new Instance<Handler>{host, Handler(view_of_options)};
    }
  } catch (const OptionError& e) {
    fail(e.key(), e.what());
  } catch (const std::exception& e) {
    fail({}, e.what());
  } catch (...) {
    fail({}, "unknown exception from the plugin's constructor");
  }
  return nullptr;
}

template <class Handler>
void handle(void* instance, const warren_request* request, warren_reply* raw_reply) noexcept {
  auto* self = static_cast<Instance<Handler>*>(instance);
  Reply reply(self->host, raw_reply);
  try {
    self->handler.handle(Request(*request), reply);
  } catch (const Error& e) {
    reply.error(e.code(), e.what());
  } catch (const std::exception& e) {
    reply.error(WARREN_ERROR_INTERNAL, e.what());
  } catch (...) {
    reply.error(WARREN_ERROR_INTERNAL, "unknown exception from the handler");
  }
}

template <class Handler>
void destroy(void* instance) noexcept {
  delete static_cast<Instance<Handler>*>(instance);
}

}  // namespace detail
}  // namespace warren

// Defines the plugin's exported entry point for class `Handler`.
#define WARREN_PLUGIN(Handler, plugin_name, plugin_version, plugin_description)    \
  extern "C" WARREN_PLUGIN_EXPORT const warren_plugin* warren_plugin_v1(void) {    \
    static const warren_plugin descriptor = {sizeof(warren_plugin),                \
                                             WARREN_PLUGIN_ABI_MAJOR,              \
                                             WARREN_PLUGIN_ABI_MINOR,              \
                                             plugin_name,                          \
                                             plugin_version,                       \
                                             plugin_description,                   \
                                             &::warren::detail::create<Handler>,   \
                                             &::warren::detail::handle<Handler>,   \
                                             &::warren::detail::destroy<Handler>}; \
    return &descriptor;                                                            \
  }
