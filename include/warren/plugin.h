/* SPDX-License-Identifier: Apache-2.0 */
/*
 * warren plugin ABI: the one header a handler plugin compiles against.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * `warren_plugin_v1` (the ABI major is in the name), returning a pointer to a
 * static `warren_plugin` descriptor. warrend dlopen()s the file, looks the
 * symbol up, checks the descriptor and then drives the lifecycle:
 *
 *   create   once per configured queue, with that queue's `options` map;
 *   handle   once per request, from several consumer threads at once; it
 *            answers before it returns, or defers its reply and answers
 *            later from any thread (since 1.1, reply_defer);
 *   destroy  once, after the last handle() of that instance has returned.
 *
 * Compatibility rules:
 *   - ABI major: a change that breaks existing plugins. The entry symbol is
 *     renamed (warren_plugin_v2, ...), so a plugin built for another major is
 *     refused at load with both versions named.
 *   - ABI minor: append-only growth. New fields go at the end of a struct and
 *     are marked "since 1.N"; every struct begins with `struct_size`, so either
 *     side can tell which fields the other one knows. A plugin built against a
 *     newer minor runs on an older host as long as it checks
 *     `host->abi_minor` / `host->struct_size` before using a newer host field.
 *
 * Nothing but C types crosses this boundary: no C++ types, no exceptions.
 * Strings are views (pointer + length), never NUL-terminated unless stated.
 * Whatever a plugin hands to the host through a host function is copied by
 * the host before that function returns.
 *
 * Threads: handle() is called concurrently, from several host threads, on the
 * same instance; it must be thread-safe (keep per-request state on the stack,
 * guard shared state). It may block (it does not run on a connection's I/O
 * thread), but it should return within the daemon's drain timeout: a handler
 * still running when that expires is abandoned and its request redelivered.
 * create() and destroy() are never called concurrently with handle() on the
 * same instance.
 */
#ifndef WARREN_PLUGIN_H
#define WARREN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARREN_PLUGIN_ABI_MAJOR 1
#define WARREN_PLUGIN_ABI_MINOR 1

/* The exported entry point of an ABI-1 plugin. */
#define WARREN_PLUGIN_ENTRY_SYMBOL "warren_plugin_v1"

#if defined(__GNUC__)
#define WARREN_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define WARREN_PLUGIN_EXPORT
#endif

/* A read-only byte view. Not NUL-terminated. Owner: stated where used. */
typedef struct warren_str {
  const char* data;
  size_t size;
} warren_str;

/* Error codes a handler reports; on the wire they travel as the names given
 * (see docs/protocol.md). Values are stable; new codes are only appended. */
typedef enum warren_error_code {
  WARREN_ERROR_INVALID_ARGUMENT = 1, /* "invalid_argument": the request is malformed */
  WARREN_ERROR_OUT_OF_RANGE = 2,     /* "out_of_range": well-formed, but a value is out of range */
  WARREN_ERROR_TOO_LARGE = 3,        /* "too_large": the request body exceeds the limit */
  WARREN_ERROR_INTERNAL = 4,         /* "internal": the handler failed */
  WARREN_ERROR_UNAVAILABLE = 5,      /* "unavailable": a dependency of the handler is down */
  /* since 1.1: "deadline_exceeded": the request's deadline passed before its
   * reply was ready. The host answers it so on its own (the handler is then
   * not run, or its late reply is replaced); a handler may return it too,
   * e.g. when a dependency cannot answer within warren_request.deadline_ms. */
  WARREN_ERROR_DEADLINE_EXCEEDED = 6,
  /* since 1.1: "handler_crashed": the handler's worker process died, or
   * broke the worker protocol, while it held the request (isolation:
   * process, handler: exec). Set by the host only. */
  WARREN_ERROR_HANDLER_CRASHED = 7
} warren_error_code;

/* Log levels for warren_host_api.log. */
typedef enum warren_log_level {
  WARREN_LOG_DEBUG = 0,
  WARREN_LOG_INFO = 1,
  WARREN_LOG_WARN = 2,
  WARREN_LOG_ERROR = 3
} warren_log_level;

/* One `key: value` of the queue's `options` map; every YAML scalar arrives as
 * its text. Host-owned, valid only inside create(). */
typedef struct warren_option {
  warren_str key;
  warren_str value;
} warren_option;

/* One AMQP header of the request. String, integer and boolean values arrive
 * as text ("42", "true"); headers of other types are not passed.
 * Host-owned, valid only inside handle(). */
typedef struct warren_header {
  warren_str key;
  warren_str value;
} warren_header;

/* One request. Host-owned, valid only inside handle(). */
typedef struct warren_request {
  size_t struct_size;           /* sizeof(warren_request) as the host knows it */
  warren_str body;              /* the message body, possibly empty */
  warren_str content_type;      /* the content_type property, empty when absent */
  const warren_header* headers; /* header_count entries, NULL when none */
  size_t header_count;
  int redelivered;  /* non-zero: the broker delivered this request before (a retry) */
  warren_str queue; /* the queue the request came from */

  /* since 1.1: check struct_size (WARREN_REQUEST_HAS) before reading these. */
  warren_str correlation_id; /* the correlation_id property, empty when absent */
  /* When the caller stops waiting, in milliseconds since the Unix epoch
   * (UTC, the host's clock): the request's x-warren-deadline header, or for
   * a request without one, its arrival plus the queue's handler_timeout.
   * Work past it is wasted: the host answers deadline_exceeded instead. */
  int64_t deadline_ms;
  /* How many times the broker delivered this request before: its
   * x-delivery-count header (quorum queues), else 1 when redelivered, 0 when
   * not. A handler can refuse a request that keeps failing. */
  uint32_t delivery_count;
} warren_request;

/* True when `request` (a const warren_request*) carries `field`: the host
 * knows that field (since 1.1 ones need a 1.1 host). */
#define WARREN_REQUEST_HAS(request, field) \
  ((request)->struct_size >= offsetof(warren_request, field) + sizeof((request)->field))

/* Opaque, host-owned handles. */
typedef struct warren_host warren_host;             /* valid from create() to destroy() */
typedef struct warren_reply warren_reply;           /* valid only inside handle(), unless deferred */
typedef struct warren_create_error warren_create_error; /* valid only inside create() */

/* What the host offers a plugin. Host-owned, valid until destroy() returns. */
typedef struct warren_host_api {
  size_t struct_size; /* check it before using a field added in a later minor */
  uint16_t abi_major;
  uint16_t abi_minor;

  /* Appends `size` bytes to the reply body (the host copies them). */
  void (*reply_write)(warren_reply* reply, const char* data, size_t size);
  /* Sets the reply's content_type (copied). Default: none. */
  void (*reply_set_content_type)(warren_reply* reply, const char* data, size_t size);
  /* Makes the reply an error reply with `code` and a human-readable message
   * (copied). Any body written is discarded. The last call wins. */
  void (*reply_error)(warren_reply* reply, warren_error_code code, const char* message,
                      size_t size);

  /* Refuses the options given to create(): `key` names the offending option
   * (size 0 when the problem is not one key), `message` says what is wrong and
   * what is accepted. Both copied. create() must then return NULL. */
  void (*create_error)(warren_create_error* error, const char* key, size_t key_size,
                       const char* message, size_t message_size);

  /* Logs through the daemon's logger, stamped with the queue and plugin name.
   * Never log request bodies at INFO or above. Callable from any thread. */
  void (*log)(warren_host* host, warren_log_level level, const char* message, size_t size);

  /* since 1.1: check WARREN_HOST_HAS(host, reply_defer) before using these.
   *
   * Deferring a reply (the Redis modules' BlockClient model): handle() calls
   * reply_defer(reply) and returns at once; the request stays in flight,
   * and the plugin answers it later, from any thread, through the handle
   * reply_defer returned: reply_write / reply_set_content_type /
   * reply_error on it as in handle(), then reply_complete(handle) exactly
   * once. The host then publishes that reply and acks the request. So one
   * consumer with `prefetch: N` has up to N requests in flight.
   *
   *   - The request (body, headers, ...) is valid only inside handle():
   *     copy what the deferred work needs.
   *   - The handle may move between threads, but is used by one thread at
   *     a time (hand it over through a queue or a lock).
   *   - A request whose deadline (warren_request.deadline_ms) passes first
   *     is answered deadline_exceeded by the host; completing it later is
   *     still required (it frees the handle) and the late reply is dropped
   *     and counted.
   *   - When the connection the request came on is lost, or warrend stops
   *     past its drain deadline, the completion is dropped and the broker
   *     redelivers the request.
   *   - destroy() comes after the drain: a plugin completes every handle it
   *     still holds in destroy() at the latest; a handle is invalid once
   *     destroy() returned.
   * reply_defer returns NULL (and the reply stays an ordinary one) when
   * called twice, or on a handle it returned. */
  warren_reply* (*reply_defer)(warren_reply* reply);
  /* Sends a deferred reply (see reply_defer); `deferred` is invalid after
   * the call. Callable from any thread. */
  void (*reply_complete)(warren_reply* deferred);
} warren_host_api;

/* True when `host` (a const warren_host_api*) offers `field` (since 1.1
 * ones need a 1.1 host). */
#define WARREN_HOST_HAS(host, field) \
  ((host)->struct_size >= offsetof(warren_host_api, field) + sizeof((host)->field))

/* The descriptor a plugin exports. Plugin-owned, static storage: it must stay
 * valid and unchanged while the plugin is loaded. */
typedef struct warren_plugin {
  size_t struct_size; /* sizeof(warren_plugin) as the plugin was built */
  uint16_t abi_major; /* WARREN_PLUGIN_ABI_MAJOR the plugin was built with */
  uint16_t abi_minor; /* WARREN_PLUGIN_ABI_MINOR the plugin was built with */
  const char* name;   /* NUL-terminated, static: e.g. "sum" */
  const char* version; /* NUL-terminated, static: the plugin's own version */
  const char* description; /* NUL-terminated, static, one line */

  /* Creates one handler instance. `options` (option_count entries) is
   * host-owned and valid only during the call: copy what you keep. On
   * failure, call host->create_error(error, ...) and return NULL. The
   * returned pointer is plugin-owned and handed back to handle()/destroy(). */
  void* (*create)(const warren_host_api* host, warren_host* host_context,
                  const warren_option* options, size_t option_count,
                  warren_create_error* error);

  /* Handles one request and writes the reply through host->reply_*(reply,
   * ...). Writing nothing yields an empty success reply. Called from several
   * threads at once. Must not unwind (no C++ exception may escape). */
  void (*handle)(void* instance, const warren_request* request, warren_reply* reply);

  /* Destroys an instance made by create(). Called once, after every handle()
   * on it has returned. */
  void (*destroy)(void* instance);
} warren_plugin;

/* The entry point every ABI-1 plugin exports (define it with
 * WARREN_PLUGIN_EXPORT). Returns the plugin's static descriptor. */
typedef const warren_plugin* (*warren_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* WARREN_PLUGIN_H */
