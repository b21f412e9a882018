/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reference_loadgen: the minimal "sum" RPC load generator in plain rabbitmq-c.
 * One connection, one channel, one thread, a fixed number of calls in flight
 * (closed loop: each reply lets the next request go). It is the yardstick for
 * warren-bench: what a client with nothing in the way reaches on this broker.
 *
 * Wire protocol (the seed's): request "a,b" to the default exchange with
 * routing key = queue, reply_to and correlation_id set; the reply body is the
 * decimal a+b with the same correlation_id.
 *
 * Prints one line of JSON on stdout; exits 1 on any error, wrong answer or
 * timeout.
 */
#define _POSIX_C_SOURCE 200809L

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

enum { CHANNEL = 1, FRAME_MAX = 131072, ID_SIZE = 48 };

static const int64_t NS_PER_S = 1000000000;
/* A call without a reply for this long aborts the run. */
static const int64_t REPLY_TIMEOUT_NS = 10 * NS_PER_S;
static const char DIRECT_REPLY_TO[] = "amq.rabbitmq.reply-to";

typedef struct {
  const char* host;
  int port;
  const char* queue;
  int concurrency;
  long calls;      /* measured calls, when duration is 0 */
  double duration; /* seconds of measured run, or 0 */
  long warmup;
  int direct;     /* reply mode: 1 = direct reply-to, 0 = exclusive queue */
  int persistent; /* requests with delivery_mode 2 */
} options_t;

/* One call in flight. Its correlation id is "<slot>-<seq>", so a reply finds
 * its slot without a lookup table and a stale reply cannot match. */
typedef struct {
  int busy;
  int measured; /* 0 for warm-up calls */
  uint64_t seq;
  int64_t sent_ns;
  long long expected;
} slot_t;

typedef struct {
  const options_t* opts;
  amqp_connection_state_t conn;
  amqp_bytes_t reply_to; /* owned (amqp_bytes_malloc_dup) */
  slot_t* slots;
  int in_flight;
  uint64_t rng;
  uint64_t next_seq;
  long warmup_left;
  long measured_sent;
  int64_t measure_start_ns; /* 0 until the first measured request goes out */
  int64_t last_reply_ns;
  int64_t* latencies; /* ns, one per measured reply */
  size_t latency_count;
  size_t latency_cap;
  long errors;
  long wrong;
  long timeouts;
} run_t;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ---- command line ------------------------------------------------------ */

static int parse_long(const char* text, long min, long max, long* out) {
  char* end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) return -1;
  *out = value;
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: reference_loadgen [--host H] [--port P] [--queue Q] [--concurrency C]\n"
          "         [--calls N | --duration SECONDS] [--warmup N] "
          "[--reply-mode exclusive|direct] [--persistent 0|1]\n");
}

static int parse_option(const char* flag, const char* value, options_t* opts, int* have_calls) {
  long n = 0;
  if (strcmp(flag, "--host") == 0) {
    opts->host = value;
  } else if (strcmp(flag, "--port") == 0) {
    if (parse_long(value, 1, 65535, &n) != 0) return -1;
    opts->port = (int)n;
  } else if (strcmp(flag, "--queue") == 0) {
    opts->queue = value;
  } else if (strcmp(flag, "--concurrency") == 0) {
    if (parse_long(value, 1, 100000, &n) != 0) return -1;
    opts->concurrency = (int)n;
  } else if (strcmp(flag, "--calls") == 0) {
    if (parse_long(value, 1, 1000000000, &opts->calls) != 0) return -1;
    *have_calls = 1;
  } else if (strcmp(flag, "--duration") == 0) {
    char* end = NULL;
    opts->duration = strtod(value, &end);
    if (end == value || *end != '\0' || !(opts->duration > 0 && opts->duration < 1e6)) return -1;
  } else if (strcmp(flag, "--warmup") == 0) {
    if (parse_long(value, 0, 1000000000, &opts->warmup) != 0) return -1;
  } else if (strcmp(flag, "--persistent") == 0) {
    if (parse_long(value, 0, 1, &n) != 0) return -1;
    opts->persistent = (int)n;
  } else if (strcmp(flag, "--reply-mode") == 0) {
    if (strcmp(value, "exclusive") == 0) {
      opts->direct = 0;
    } else if (strcmp(value, "direct") == 0) {
      opts->direct = 1;
    } else {
      return -1;
    }
  } else {
    return -1;
  }
  return 0;
}

static int parse_args(int argc, char** argv, options_t* opts) {
  *opts = (options_t){"127.0.0.1", 5672, "sum", 64, 20000, 0, 1000, 0, 0};
  int have_calls = 0;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc || parse_option(argv[i], argv[i + 1], opts, &have_calls) != 0) return -1;
  }
  if (have_calls && opts->duration > 0) return -1; /* one or the other */
  return 0;
}

/* ---- AMQP helpers ------------------------------------------------------ */

/* Prints why an RPC-style library call failed; returns 0 when it did not. */
static int check_reply(amqp_rpc_reply_t reply, const char* what) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return 0;
    case AMQP_RESPONSE_NONE:
      fprintf(stderr, "reference_loadgen: %s: no reply\n", what);
      break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      fprintf(stderr, "reference_loadgen: %s: %s\n", what, amqp_error_string2(reply.library_error));
      break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD ||
          reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        /* Both close methods start with reply_code, reply_text. */
        const amqp_channel_close_t* c = reply.reply.decoded;
        fprintf(stderr, "reference_loadgen: %s: broker closed: %u %.*s\n", what, c->reply_code,
                (int)c->reply_text.len, (const char*)c->reply_text.bytes);
      } else {
        fprintf(stderr, "reference_loadgen: %s: broker error (method 0x%08x)\n", what,
                (unsigned)reply.reply.id);
      }
      break;
  }
  return -1;
}

static amqp_connection_state_t open_connection(const options_t* opts) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* sock = conn ? amqp_tcp_socket_new(conn) : NULL;
  struct timeval connect_timeout = {5, 0};
  if (sock == NULL) {
    fprintf(stderr, "reference_loadgen: out of memory\n");
  } else if (amqp_socket_open_noblock(sock, opts->host, opts->port, &connect_timeout) !=
             AMQP_STATUS_OK) {
    fprintf(stderr, "reference_loadgen: cannot connect to %s:%d\n", opts->host, opts->port);
  } else if (check_reply(
                 amqp_login(conn, "/", 0, FRAME_MAX, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                 "login") == 0) {
    amqp_channel_open(conn, CHANNEL);
    if (check_reply(amqp_get_rpc_reply(conn), "channel.open") == 0) return conn;
  }
  if (conn) amqp_destroy_connection(conn);
  return NULL;
}

/* Sets up where replies come back and starts consuming there (no-ack: a reply
 * needs no ack, and direct reply-to requires it). Direct reply-to must be
 * consumed on this channel before the first publish that names it. */
static int setup_replies(run_t* run) {
  amqp_connection_state_t conn = run->conn;
  if (run->opts->direct) {
    run->reply_to = amqp_bytes_malloc_dup(amqp_cstring_bytes(DIRECT_REPLY_TO));
  } else {
    amqp_queue_declare_ok_t* ok =
        amqp_queue_declare(conn, CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    if (check_reply(amqp_get_rpc_reply(conn), "queue.declare")) return -1;
    /* Copied: the name lives in a buffer that the next release frees. */
    run->reply_to = amqp_bytes_malloc_dup(ok->queue);
  }
  if (run->reply_to.bytes == NULL) {
    fprintf(stderr, "reference_loadgen: out of memory\n");
    return -1;
  }
  amqp_basic_consume(conn, CHANNEL, run->reply_to, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
  return check_reply(amqp_get_rpc_reply(conn), "basic.consume");
}

/* amqp_consume_message met a frame that is not a delivery and put it back:
 * read it. Closes are fatal; a basic.return (not expected: mandatory is off)
 * carries content that must be read off the wire too; the rest is ignored. */
static int handle_other_frame(amqp_connection_state_t conn) {
  amqp_frame_t frame;
  if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) {
    fprintf(stderr, "reference_loadgen: lost the connection\n");
    return -1;
  }
  if (frame.frame_type != AMQP_FRAME_METHOD) return 0;
  switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const amqp_channel_close_t* c = frame.payload.method.decoded;
      fprintf(stderr, "reference_loadgen: broker closed the %s: %u %.*s\n",
              frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection",
              c->reply_code, (int)c->reply_text.len, (const char*)c->reply_text.bytes);
      return -1;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      amqp_message_t message;
      if (check_reply(amqp_read_message(conn, frame.channel, &message, 0), "basic.return")) {
        return -1;
      }
      amqp_destroy_message(&message);
      return 0;
    }
    default:
      return 0;
  }
}

/* ---- requests and replies ---------------------------------------------- */

/* xorshift64: cheap and reproducible (fixed seed), so runs send the same calls. */
static uint64_t next_random(run_t* run) {
  uint64_t x = run->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  run->rng = x;
  return x;
}

/* An operand in [-1e9, 1e9]: the sum stays far from overflow. */
static long long random_operand(run_t* run) {
  return (long long)(next_random(run) % 2000000001u) - 1000000000;
}

static int format_id(char* out, int slot, uint64_t seq) {
  return snprintf(out, ID_SIZE, "%d-%llu", slot, (unsigned long long)seq);
}

/* Whether another request may go out: warm-up first, then the measured calls
 * (a count, or whatever fits before the deadline). */
static int may_send(const run_t* run, int64_t now) {
  const options_t* opts = run->opts;
  if (run->warmup_left > 0) return 1;
  if (opts->duration <= 0) return run->measured_sent < opts->calls;
  return run->measure_start_ns == 0 ||
         now - run->measure_start_ns < (int64_t)(opts->duration * (double)NS_PER_S);
}

static int send_request(run_t* run, int index) {
  slot_t* slot = &run->slots[index];
  long long a = random_operand(run);
  long long b = random_operand(run);
  char body[64];
  char id[ID_SIZE];
  int body_len = snprintf(body, sizeof body, "%lld,%lld", a, b);
  int id_len = format_id(id, index, run->next_seq);

  amqp_basic_properties_t props;
  memset(&props, 0, sizeof props);
  props._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
  props.reply_to = run->reply_to;
  props.correlation_id = (amqp_bytes_t){(size_t)id_len, id};
  if (run->opts->persistent) {
    props._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
  }

  int64_t sent = now_ns();
  int status =
      amqp_basic_publish(run->conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(run->opts->queue),
                         0, 0, &props, (amqp_bytes_t){(size_t)body_len, body});
  if (status != AMQP_STATUS_OK) {
    fprintf(stderr, "reference_loadgen: publish: %s\n", amqp_error_string2(status));
    return -1;
  }
  *slot = (slot_t){1, run->warmup_left == 0, run->next_seq++, sent, a + b};
  if (slot->measured) {
    if (run->measure_start_ns == 0) run->measure_start_ns = sent;
    run->measured_sent++;
  } else {
    run->warmup_left--;
  }
  run->in_flight++;
  return 0;
}

/* The slot a correlation id names, if that call is still in flight. */
static int find_slot(const run_t* run, amqp_bytes_t id) {
  char text[ID_SIZE];
  char expected[ID_SIZE];
  if (id.len == 0 || id.len >= ID_SIZE) return -1;
  memcpy(text, id.bytes, id.len);
  text[id.len] = '\0';
  char* end = NULL;
  long index = strtol(text, &end, 10);
  if (end == text || *end != '-' || index < 0 || index >= run->opts->concurrency) return -1;
  const slot_t* slot = &run->slots[index];
  if (!slot->busy || format_id(expected, (int)index, slot->seq) != (int)id.len ||
      memcmp(expected, text, id.len) != 0) {
    return -1;
  }
  return (int)index;
}

static int record_latency(run_t* run, int64_t latency) {
  if (run->latency_count == run->latency_cap) {
    size_t cap = run->latency_cap ? run->latency_cap * 2 : 65536;
    int64_t* grown = realloc(run->latencies, cap * sizeof *grown);
    if (grown == NULL) {
      fprintf(stderr, "reference_loadgen: out of memory\n");
      return -1;
    }
    run->latencies = grown;
    run->latency_cap = cap;
  }
  run->latencies[run->latency_count++] = latency;
  return 0;
}

/* Checks a reply against its call, records it, and sends the next request on
 * the freed slot (closed loop). */
static int handle_reply(run_t* run, const amqp_envelope_t* env) {
  int64_t now = now_ns();
  const amqp_basic_properties_t* props = &env->message.properties;
  int index =
      (props->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) ? find_slot(run, props->correlation_id) : -1;
  if (index < 0) {
    run->errors++; /* unknown or stale correlation id */
    return 0;
  }
  slot_t* slot = &run->slots[index];
  char expected[32];
  int len = snprintf(expected, sizeof expected, "%lld", slot->expected);
  if (env->message.body.len != (size_t)len || memcmp(env->message.body.bytes, expected, len)) {
    run->wrong++;
  }
  if (slot->measured) {
    if (record_latency(run, now - slot->sent_ns) != 0) return -1;
    run->last_reply_ns = now;
  }
  slot->busy = 0;
  run->in_flight--;
  return may_send(run, now) ? send_request(run, index) : 0;
}

/* Any call older than the reply timeout ends the run. */
static int check_timeouts(run_t* run, int64_t now) {
  for (int i = 0; i < run->opts->concurrency; i++) {
    const slot_t* slot = &run->slots[i];
    if (slot->busy && now - slot->sent_ns > REPLY_TIMEOUT_NS) {
      fprintf(stderr, "reference_loadgen: no reply within 10 s (call %d-%llu)\n", i,
              (unsigned long long)slot->seq);
      run->timeouts++;
      return -1;
    }
  }
  return 0;
}

/* The whole run: fill every slot, then one request per reply until the
 * measured part is over, then drain. Returns -1 on a connection error or a
 * timeout. */
static int run_calls(run_t* run) {
  for (int i = 0; i < run->opts->concurrency && may_send(run, now_ns()); i++) {
    if (send_request(run, i) != 0) return -1;
  }
  int64_t last_scan = now_ns();
  while (run->in_flight > 0) {
    /* 1 s: often enough to notice a call past its 10 s timeout. */
    struct timeval timeout = {1, 0};
    amqp_envelope_t env;
    amqp_rpc_reply_t r = amqp_consume_message(run->conn, &env, &timeout, 0);
    int rc = 0;
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
      rc = handle_reply(run, &env);
      amqp_destroy_envelope(&env);
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_TIMEOUT) {
      rc = 0;
    } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      rc = handle_other_frame(run->conn);
    } else {
      rc = check_reply(r, "consume");
    }
    amqp_maybe_release_buffers(run->conn);
    if (rc != 0) return -1;
    int64_t now = now_ns();
    if (now - last_scan >= NS_PER_S) {
      last_scan = now;
      if (check_timeouts(run, now) != 0) return -1;
    }
  }
  return 0;
}

/* ---- report ------------------------------------------------------------ */

static int compare_int64(const void* a, const void* b) {
  int64_t x = *(const int64_t*)a;
  int64_t y = *(const int64_t*)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in whole microseconds. */
static long long percentile_us(const int64_t* sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t rank = (size_t)ceil(p * (double)n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return (long long)((sorted[rank - 1] + 500) / 1000);
}

static void print_report(run_t* run) {
  size_t n = run->latency_count;
  qsort(run->latencies, n, sizeof *run->latencies, compare_int64);
  double seconds =
      n > 0 ? (double)(run->last_reply_ns - run->measure_start_ns) / (double)NS_PER_S : 0.0;
  double rate = seconds > 0 ? (double)n / seconds : 0.0;
  const int64_t* s = run->latencies;
  printf(
      "{\"tool\":\"reference_loadgen\",\"reply_mode\":\"%s\",\"concurrency\":%d,\"calls\":%zu,"
      "\"seconds\":%.3f,\"calls_per_second\":%.1f,\"p50_us\":%lld,\"p90_us\":%lld,"
      "\"p99_us\":%lld,\"p999_us\":%lld,\"max_us\":%lld,\"errors\":%ld,\"wrong\":%ld,"
      "\"timeouts\":%ld}\n",
      run->opts->direct ? "direct" : "exclusive", run->opts->concurrency, n, seconds, rate,
      percentile_us(s, n, 0.50), percentile_us(s, n, 0.90), percentile_us(s, n, 0.99),
      percentile_us(s, n, 0.999), percentile_us(s, n, 1.0), run->errors, run->wrong, run->timeouts);
  fflush(stdout);
}

static void close_connection(amqp_connection_state_t conn) {
  amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
}

int main(int argc, char** argv) {
  options_t opts;
  if (parse_args(argc, argv, &opts) != 0) {
    usage();
    return 1;
  }
  run_t run = {.opts = &opts, .rng = 0x9E3779B97F4A7C15u, .warmup_left = opts.warmup};
  run.slots = calloc((size_t)opts.concurrency, sizeof *run.slots);
  if (run.slots == NULL) {
    fprintf(stderr, "reference_loadgen: out of memory\n");
    return 1;
  }
  run.conn = open_connection(&opts);
  if (run.conn == NULL) return 1;
  if (setup_replies(&run) != 0) {
    amqp_destroy_connection(run.conn);
    return 1;
  }

  int rc = run_calls(&run);
  /* A timed-out run still reports what it measured, for the record. */
  if (rc == 0 || run.timeouts > 0) print_report(&run);
  if (rc == 0)
    close_connection(run.conn);
  else
    amqp_destroy_connection(run.conn);

  if (rc == 0 && (run.errors > 0 || run.wrong > 0)) {
    fprintf(stderr, "reference_loadgen: %ld wrong answers, %ld unmatched replies\n", run.wrong,
            run.errors);
    rc = -1;
  }
  amqp_bytes_free(run.reply_to);
  free(run.latencies);
  free(run.slots);
  return rc == 0 ? 0 : 1;
}
