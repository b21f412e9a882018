/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idle_consumers: holds idle consumers on many queues, laid out over
 * connections and channels as asked, so that bench/scale can measure what
 * the layout alone costs the broker while another queue is under load.
 *
 *   idle_consumers --port P --queues N --consumers C --channels K [--prefix idle_]
 *
 * Declares the queues PREFIX000 .. PREFIX(N-1) (non-durable, no arguments) and
 * starts C consumers on each (prefetch 1, manual acks): N * C channels, K per
 * connection, so ceil(N * C / K) connections. K = 1 is warrend's layout today
 * (a connection per consumer); K = C is a connection per queue. Heartbeats are
 * 10 s, as warrend proposes. Prints "ready" once every consumer consumes, then
 * keeps the connections alive (one thread, epoll) until SIGINT or SIGTERM.
 * Nothing is published to these queues: a delivery that arrives is rejected
 * back to the queue.
 */
#define _POSIX_C_SOURCE 200809L

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set by SIGINT/SIGTERM; the only global. */
static volatile sig_atomic_t g_signalled = 0;

enum { HEARTBEAT_S = 10, FRAME_MAX = 131072 };

static void on_signal(int sig) {
  (void)sig;
  g_signalled = 1;
}

static int fail(const char* what, amqp_rpc_reply_t reply) {
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return 0;
  fprintf(stderr, "idle_consumers: %s failed (reply type %d, library error %s)\n", what,
          reply.reply_type, amqp_error_string2(reply.library_error));
  return 1;
}

static int parse_int(const char* text, int low, int high, const char* name) {
  char* end = NULL;
  errno = 0;
  const long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
    fprintf(stderr, "idle_consumers: %s must be an integer in %d..%d, not '%s'\n", name, low, high,
            text);
    exit(2);
  }
  return (int)value;
}

/* Opens one connection and logs in; NULL on failure (reported). */
static amqp_connection_state_t open_connection(int port) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (socket == NULL || amqp_socket_open(socket, "127.0.0.1", port) != AMQP_STATUS_OK) {
    fprintf(stderr, "idle_consumers: cannot connect to 127.0.0.1:%d\n", port);
    amqp_destroy_connection(conn);
    return NULL;
  }
  if (fail("login", amqp_login(conn, "/", /*channel_max=*/0, FRAME_MAX, HEARTBEAT_S,
                               AMQP_SASL_METHOD_PLAIN, "guest", "guest"))) {
    amqp_destroy_connection(conn);
    return NULL;
  }
  return conn;
}

/* Opens `channel`, declares `queue` and consumes it on that channel. */
static int consume(amqp_connection_state_t conn, amqp_channel_t channel, const char* queue) {
  amqp_channel_open(conn, channel);
  if (fail("channel.open", amqp_get_rpc_reply(conn))) return 1;
  amqp_basic_qos(conn, channel, /*prefetch_size=*/0, /*prefetch_count=*/1, /*global=*/0);
  if (fail("basic.qos", amqp_get_rpc_reply(conn))) return 1;
  amqp_queue_declare(conn, channel, amqp_cstring_bytes(queue), /*passive=*/0, /*durable=*/0,
                     /*exclusive=*/0, /*auto_delete=*/0, amqp_empty_table);
  if (fail("queue.declare", amqp_get_rpc_reply(conn))) return 1;
  amqp_basic_consume(conn, channel, amqp_cstring_bytes(queue), amqp_empty_bytes, /*no_local=*/0,
                     /*no_ack=*/0, /*exclusive=*/0, amqp_empty_table);
  return fail("basic.consume", amqp_get_rpc_reply(conn));
}

/* Reads what is there without waiting (sending a heartbeat when one is due);
 * returns non-zero when the connection is gone. */
static int service(amqp_connection_state_t conn) {
  for (;;) {
    amqp_frame_t frame;
    struct timeval no_wait = {0, 0};
    const int status = amqp_simple_wait_frame_noblock(conn, &frame, &no_wait);
    if (status == AMQP_STATUS_TIMEOUT) return 0;
    if (status != AMQP_STATUS_OK) return 1;
    if (frame.frame_type == AMQP_FRAME_METHOD &&
        frame.payload.method.id == AMQP_BASIC_DELIVER_METHOD) {
      const amqp_basic_deliver_t* deliver = frame.payload.method.decoded;
      amqp_basic_reject(conn, frame.channel, deliver->delivery_tag, /*requeue=*/1);
    } else if (frame.frame_type == AMQP_FRAME_METHOD &&
               (frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
                frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD)) {
      return 1;
    }
    amqp_maybe_release_buffers(conn);
  }
}

int main(int argc, char** argv) {
  int port = 5672, queues = 99, consumers = 5, channels = 1;
  const char* prefix = "idle_";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0) {
      port = parse_int(argv[i + 1], 1, 65535, "--port");
    } else if (strcmp(argv[i], "--queues") == 0) {
      queues = parse_int(argv[i + 1], 1, 1000, "--queues");
    } else if (strcmp(argv[i], "--consumers") == 0) {
      consumers = parse_int(argv[i + 1], 1, 100, "--consumers");
    } else if (strcmp(argv[i], "--channels") == 0) {
      channels = parse_int(argv[i + 1], 1, 2047, "--channels");
    } else if (strcmp(argv[i], "--prefix") == 0) {
      prefix = argv[i + 1];
    } else {
      fprintf(stderr,
              "usage: idle_consumers --port P --queues N --consumers C --channels K "
              "[--prefix idle_]\n");
      return 2;
    }
  }
  const int total = queues * consumers;
  const int connections = (total + channels - 1) / channels;
  amqp_connection_state_t* conns = calloc((size_t)connections, sizeof *conns);
  if (conns == NULL) return 1;

  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);

  int code = 0;
  for (int c = 0; c < total && code == 0; ++c) {
    const int index = c / channels;
    if (conns[index] == NULL && (conns[index] = open_connection(port)) == NULL) code = 1;
    char queue[256];
    snprintf(queue, sizeof queue, "%s%03d", prefix, c / consumers);
    if (code == 0) code = consume(conns[index], (amqp_channel_t)(c % channels + 1), queue);
  }
  if (code == 0) {
    printf("ready: %d consumers on %d queues over %d connections\n", total, queues, connections);
    fflush(stdout);
  }
  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) code = 1;
  for (int i = 0; i < connections && code == 0; ++i) {
    struct epoll_event event = {.events = EPOLLIN, .data = {.u32 = (uint32_t)i}};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, amqp_get_sockfd(conns[i]), &event) != 0) code = 1;
  }
  /* Readable connections are read at once; every connection is looked at
   * (and sends its heartbeat when due) each quarter heartbeat, as warrend's
   * consumers do. */
  const long quarter_ms = HEARTBEAT_S * 1000 / 4;
  struct timespec last_sweep;
  clock_gettime(CLOCK_MONOTONIC, &last_sweep);
  while (code == 0 && !g_signalled) {
    struct epoll_event events[64];
    const int ready = epoll_wait(epoll, events, 64, (int)quarter_ms);
    if (ready < 0 && errno != EINTR) code = 1;
    for (int e = 0; e < ready && code == 0; ++e) {
      const int i = (int)events[e].data.u32;
      if (service(conns[i]) != 0) {
        fprintf(stderr, "idle_consumers: connection %d lost\n", i);
        code = 1;
      }
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const long since_ms =
        (now.tv_sec - last_sweep.tv_sec) * 1000 + (now.tv_nsec - last_sweep.tv_nsec) / 1000000;
    if (since_ms < quarter_ms) continue;
    last_sweep = now;
    for (int i = 0; i < connections && code == 0; ++i) {
      if (service(conns[i]) != 0) {
        fprintf(stderr, "idle_consumers: connection %d lost\n", i);
        code = 1;
      }
    }
  }
  for (int i = 0; i < connections; ++i) {
    if (conns[i] == NULL) continue;
    amqp_connection_close(conns[i], AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conns[i]);
  }
  if (epoll >= 0) close(epoll);
  free(conns);
  return code;
}
