/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reference_server: the "sum" RPC server in plain rabbitmq-c, with nothing in
 * the way (no logging, no plugins, no framework). It measures the limit any
 * server can reach on this broker, so that warrend's figures have a ceiling to
 * be compared with.
 *
 * Wire protocol (the seed's): a request "a,b" arrives on the queue with
 * reply_to and correlation_id; the reply "a+b" goes to the default exchange
 * with routing key = reply_to and the same correlation_id.
 *
 * Each thread owns its connection and channel, like the seed's pika server,
 * so the threads share nothing but the stop flags. With --channels C a
 * thread's connection carries C channels, each one consumer, all served by
 * that one thread in turn: --threads 1 --channels 5 is one connection per
 * queue with the handler inline (bench/run's reference-shared).
 */
#define _POSIX_C_SOURCE 200809L

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* Set by SIGINT/SIGTERM; the only global. Threads poll it between messages. */
static volatile sig_atomic_t g_signalled = 0;

enum { CHANNEL = 1, FRAME_MAX = 131072, MAX_BODY = 64 };

typedef struct {
  const char* host;
  int port;
  const char* queue;
  int threads;
  int prefetch;
  int channels; /* per thread (connection), each one consumer */
} options_t;

/* What the threads share: start-up progress (so main can print "ready" once
 * all consume) and a stop request raised by a thread that failed. */
typedef struct {
  const options_t* opts;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int ready;
  int failed;
  atomic_int abort;
} shared_t;

typedef struct {
  shared_t* shared;
  int index;
  int ok;
} worker_t;

static void on_signal(int sig) {
  (void)sig;
  g_signalled = 1;
}

static int stop_requested(shared_t* shared) { return g_signalled || atomic_load(&shared->abort); }

/* ---- command line ------------------------------------------------------ */

static int parse_int(const char* text, long min, long max, int* out) {
  char* end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) return -1;
  *out = (int)value;
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: reference_server [--host H] [--port P] [--queue Q] [--threads N] "
          "[--prefetch K] [--channels C]\n");
}

static int parse_args(int argc, char** argv, options_t* opts) {
  *opts = (options_t){"127.0.0.1", 5672, "sum", 5, 1, 1};
  for (int i = 1; i < argc; i++) {
    const char* flag = argv[i];
    if (i + 1 >= argc) return -1;
    const char* value = argv[++i];
    if (strcmp(flag, "--host") == 0) {
      opts->host = value;
    } else if (strcmp(flag, "--port") == 0) {
      if (parse_int(value, 1, 65535, &opts->port) != 0) return -1;
    } else if (strcmp(flag, "--queue") == 0) {
      opts->queue = value;
    } else if (strcmp(flag, "--threads") == 0) {
      if (parse_int(value, 1, 1000, &opts->threads) != 0) return -1;
    } else if (strcmp(flag, "--prefetch") == 0) {
      if (parse_int(value, 1, 65535, &opts->prefetch) != 0) return -1;
    } else if (strcmp(flag, "--channels") == 0) {
      if (parse_int(value, 1, 2047, &opts->channels) != 0) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

/* ---- the computation --------------------------------------------------- */

/* Parses one integer: strtoll skips leading blanks, trailing ones are skipped
 * here. Returns the position after it, or NULL when there is no number. */
static const char* parse_operand(const char* p, long long* out) {
  char* end = NULL;
  errno = 0;
  *out = strtoll(p, &end, 10);
  if (end == p || errno == ERANGE) return NULL;
  while (isspace((unsigned char)*end)) end++;
  return end;
}

/* Writes the reply body for a request body "a,b": the decimal sum, or
 * "error" for anything malformed or out of range. Returns its length. */
static int compute_reply(amqp_bytes_t body, char* out, size_t out_size) {
  char text[MAX_BODY + 1];
  long long a = 0;
  long long b = 0;
  /* The body is not NUL-terminated; anything this long is not "a,b" anyway. */
  if (body.len > MAX_BODY || memchr(body.bytes, '\0', body.len) != NULL) goto error;
  memcpy(text, body.bytes, body.len);
  text[body.len] = '\0';
  const char* p = parse_operand(text, &a);
  if (p == NULL || *p != ',') goto error;
  p = parse_operand(p + 1, &b);
  if (p == NULL || *p != '\0') goto error;
  if ((b > 0 && a > LLONG_MAX - b) || (b < 0 && a < LLONG_MIN - b)) goto error;
  return snprintf(out, out_size, "%lld", a + b);
error:
  return snprintf(out, out_size, "error");
}

/* ---- AMQP helpers ------------------------------------------------------ */

/* Prints why an RPC-style library call failed; returns 0 when it did not. */
static int check_reply(amqp_rpc_reply_t reply, int index, const char* what) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return 0;
    case AMQP_RESPONSE_NONE:
      fprintf(stderr, "reference_server[%d]: %s: no reply\n", index, what);
      break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      fprintf(stderr, "reference_server[%d]: %s: %s\n", index, what,
              amqp_error_string2(reply.library_error));
      break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD ||
          reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        /* Both close methods start with reply_code, reply_text. */
        const amqp_channel_close_t* c = reply.reply.decoded;
        fprintf(stderr, "reference_server[%d]: %s: broker closed: %u %.*s\n", index, what,
                c->reply_code, (int)c->reply_text.len, (const char*)c->reply_text.bytes);
      } else {
        fprintf(stderr, "reference_server[%d]: %s: broker error (method 0x%08x)\n", index, what,
                (unsigned)reply.reply.id);
      }
      break;
  }
  return -1;
}

static amqp_connection_state_t open_connection(const options_t* opts, int index) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* sock = conn ? amqp_tcp_socket_new(conn) : NULL;
  /* A bounded connect, so a dead address cannot hang start-up forever. */
  struct timeval connect_timeout = {5, 0};
  if (sock == NULL) {
    fprintf(stderr, "reference_server[%d]: out of memory\n", index);
  } else if (amqp_socket_open_noblock(sock, opts->host, opts->port, &connect_timeout) !=
             AMQP_STATUS_OK) {
    fprintf(stderr, "reference_server[%d]: cannot connect to %s:%d\n", index, opts->host,
            opts->port);
  } else if (check_reply(
                 amqp_login(conn, "/", 0, FRAME_MAX, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                 index, "login") == 0) {
    return conn;
  }
  if (conn) amqp_destroy_connection(conn);
  return NULL;
}

/* On each of the thread's channels: channel.open, queue.declare as the
 * seed's server does (non-durable, not exclusive, not auto-delete, no
 * arguments), basic.qos, basic.consume with manual acks. */
static int start_consuming(amqp_connection_state_t conn, const options_t* opts, int index) {
  amqp_bytes_t queue = amqp_cstring_bytes(opts->queue);
  for (int c = 0; c < opts->channels; c++) {
    const amqp_channel_t channel = (amqp_channel_t)(CHANNEL + c);
    amqp_channel_open(conn, channel);
    if (check_reply(amqp_get_rpc_reply(conn), index, "channel.open")) return -1;
    amqp_queue_declare(conn, channel, queue, 0, 0, 0, 0, amqp_empty_table);
    if (check_reply(amqp_get_rpc_reply(conn), index, "queue.declare")) return -1;
    amqp_basic_qos(conn, channel, 0, (uint16_t)opts->prefetch, 0);
    if (check_reply(amqp_get_rpc_reply(conn), index, "basic.qos")) return -1;
    amqp_basic_consume(conn, channel, queue, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (check_reply(amqp_get_rpc_reply(conn), index, "basic.consume")) return -1;
  }
  return 0;
}

/* amqp_consume_message met a frame that is not a delivery and put it back:
 * read it. Closes are fatal; a basic.return carries content that must be read
 * off the wire too; anything else is of no interest here. */
static int handle_other_frame(amqp_connection_state_t conn, int index) {
  amqp_frame_t frame;
  if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) {
    fprintf(stderr, "reference_server[%d]: lost the connection\n", index);
    return -1;
  }
  if (frame.frame_type != AMQP_FRAME_METHOD) return 0;
  switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const amqp_channel_close_t* c = frame.payload.method.decoded;
      fprintf(stderr, "reference_server[%d]: broker closed the %s: %u %.*s\n", index,
              frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection",
              c->reply_code, (int)c->reply_text.len, (const char*)c->reply_text.bytes);
      return -1;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      amqp_message_t message;
      amqp_rpc_reply_t r = amqp_read_message(conn, frame.channel, &message, 0);
      if (check_reply(r, index, "reading a returned message")) return -1;
      amqp_destroy_message(&message);
      return 0;
    }
    default:
      return 0;
  }
}

/* Replies to one request, then acks it: the ack comes after the publish, as in
 * the seed, so a crash in between redelivers rather than loses the call. */
static int serve_delivery(amqp_connection_state_t conn, const amqp_envelope_t* env, int index) {
  const amqp_basic_properties_t* in = &env->message.properties;
  if (in->_flags & AMQP_BASIC_REPLY_TO_FLAG) {
    char body[32];
    int len = compute_reply(env->message.body, body, sizeof body);
    amqp_basic_properties_t out;
    memset(&out, 0, sizeof out);
    if (in->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
      out._flags = AMQP_BASIC_CORRELATION_ID_FLAG;
      out.correlation_id = in->correlation_id;
    }
    amqp_bytes_t reply_body = {(size_t)len, body};
    int status = amqp_basic_publish(conn, env->channel, amqp_empty_bytes, in->reply_to, 0, 0, &out,
                                    reply_body);
    if (status != AMQP_STATUS_OK) {
      fprintf(stderr, "reference_server[%d]: publish: %s\n", index, amqp_error_string2(status));
      return -1;
    }
  }
  /* No reply_to: nowhere to answer; ack it anyway so it does not come back. */
  int status = amqp_basic_ack(conn, env->channel, env->delivery_tag, 0);
  if (status != AMQP_STATUS_OK) {
    fprintf(stderr, "reference_server[%d]: ack: %s\n", index, amqp_error_string2(status));
    return -1;
  }
  return 0;
}

/* The consume loop. The 1 s timeout exists only to notice a stop request. */
static int serve(amqp_connection_state_t conn, shared_t* shared, int index) {
  while (!stop_requested(shared)) {
    struct timeval timeout = {1, 0};
    amqp_envelope_t env;
    amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &timeout, 0);
    int rc = 0;
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      rc = serve_delivery(conn, &env, index);
      amqp_destroy_envelope(&env);
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_TIMEOUT) {
      rc = 0;
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      rc = handle_other_frame(conn, index);
    } else {
      rc = check_reply(r, index, "consume");
    }
    amqp_maybe_release_buffers(conn);
    if (rc != 0) return -1;
  }
  return 0;
}

/* ---- threads ----------------------------------------------------------- */

static void report_start(shared_t* shared, int ok) {
  pthread_mutex_lock(&shared->lock);
  if (ok) {
    shared->ready++;
  } else {
    shared->failed++;
  }
  pthread_cond_signal(&shared->changed);
  pthread_mutex_unlock(&shared->lock);
}

static void* worker_main(void* arg) {
  worker_t* w = arg;
  shared_t* shared = w->shared;
  amqp_connection_state_t conn = open_connection(shared->opts, w->index);
  int started = conn != NULL && start_consuming(conn, shared->opts, w->index) == 0;
  report_start(shared, started);
  w->ok = started && serve(conn, shared, w->index) == 0;
  if (!w->ok) atomic_store(&shared->abort, 1); /* one thread down: stop the benchmark */
  if (conn != NULL) {
    /* Unacked prefetched messages go back to the queue when the channel closes. */
    if (w->ok) {
      for (int c = 0; c < shared->opts->channels; c++) {
        amqp_channel_close(conn, (amqp_channel_t)(CHANNEL + c), AMQP_REPLY_SUCCESS);
      }
      amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
  }
  return NULL;
}

static int install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGINT, &sa, NULL) == 0 && sigaction(SIGTERM, &sa, NULL) == 0 ? 0 : -1;
}

/* Blocks until every thread has either started consuming or given up. */
static int wait_for_start(shared_t* shared) {
  pthread_mutex_lock(&shared->lock);
  while (shared->ready + shared->failed < shared->opts->threads) {
    pthread_cond_wait(&shared->changed, &shared->lock);
  }
  int failed = shared->failed;
  pthread_mutex_unlock(&shared->lock);
  return failed == 0 ? 0 : -1;
}

int main(int argc, char** argv) {
  options_t opts;
  if (parse_args(argc, argv, &opts) != 0) {
    usage();
    return 1;
  }
  if (install_signal_handlers() != 0) {
    perror("reference_server: sigaction");
    return 1;
  }
  shared_t shared = {.opts = &opts};
  pthread_mutex_init(&shared.lock, NULL);
  pthread_cond_init(&shared.changed, NULL);
  atomic_init(&shared.abort, 0);

  worker_t* workers = calloc((size_t)opts.threads, sizeof *workers);
  pthread_t* tids = calloc((size_t)opts.threads, sizeof *tids);
  if (workers == NULL || tids == NULL) {
    fprintf(stderr, "reference_server: out of memory\n");
    return 1;
  }
  int launched = 0;
  for (; launched < opts.threads; launched++) {
    workers[launched] = (worker_t){&shared, launched, 0};
    if (pthread_create(&tids[launched], NULL, worker_main, &workers[launched]) != 0) {
      fprintf(stderr, "reference_server: cannot create thread %d\n", launched);
      break;
    }
  }

  int ok = launched == opts.threads;
  if (!ok) {
    /* Account for the threads never created, so wait_for_start can finish. */
    atomic_store(&shared.abort, 1);
    pthread_mutex_lock(&shared.lock);
    shared.failed += opts.threads - launched;
    pthread_mutex_unlock(&shared.lock);
  }
  if (wait_for_start(&shared) == 0 && ok) {
    printf("reference_server: ready\n");
    fflush(stdout);
  } else {
    ok = 0;
    atomic_store(&shared.abort, 1);
  }

  for (int i = 0; i < launched; i++) {
    pthread_join(tids[i], NULL);
    ok = ok && workers[i].ok;
  }
  free(workers);
  free(tids);
  pthread_cond_destroy(&shared.changed);
  pthread_mutex_destroy(&shared.lock);
  return ok ? 0 : 1;
}
