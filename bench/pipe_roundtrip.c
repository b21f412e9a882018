/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipe_roundtrip: what one process hop costs on this machine, with nothing
 * else in the way. A parent (in warrend's place) writes a message to a
 * child's stdin pipe and waits in poll() for the answer on another pipe; the
 * child (in a worker's place) blocks in read() and writes the message back.
 * One message in flight, so each hop wakes a process that sleeps: the cost an
 * isolated handler (isolation: process) pays on top of the handler itself.
 *
 *   pipe_roundtrip [--round-trips N] [--bytes B]
 *
 * Prints one line of JSON: round trips, bytes, wall and CPU time (parent and
 * child together, from getrusage) per round trip in microseconds, and the
 * voluntary context switches per round trip. Used by bench/run to put the
 * isolation figures in proportion (docs/performance.md).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_BYTES = 65536 };

static int usage(void) {
  fprintf(stderr, "usage: pipe_roundtrip [--round-trips N] [--bytes B] (B: 1..%d)\n", MAX_BYTES);
  return 2;
}

/* Reads or writes exactly `size` bytes; 0 on success, -1 on error or EOF. */
static int read_all(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t got = read(fd, data, size);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    data += got;
    size -= (size_t)got;
  }
  return 0;
}

static int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t put = write(fd, data, size);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return -1;
    data += put;
    size -= (size_t)put;
  }
  return 0;
}

/* The worker's side: echo messages until the parent closes the pipe. */
static int echo(int in, int out, char* buffer, size_t bytes) {
  while (read_all(in, buffer, bytes) == 0) {
    if (write_all(out, buffer, bytes) != 0) return 1;
  }
  return 0;
}

static double seconds_of(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

int main(int argc, char** argv) {
  long round_trips = 100000;
  long bytes = 64;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--round-trips") == 0) {
      round_trips = strtol(argv[++i], NULL, 10);
    } else if (i + 1 < argc && strcmp(argv[i], "--bytes") == 0) {
      bytes = strtol(argv[++i], NULL, 10);
    } else {
      return usage();
    }
  }
  if (round_trips < 1 || bytes < 1 || bytes > MAX_BYTES) return usage();

  static char buffer[MAX_BYTES];
  memset(buffer, 'x', sizeof buffer);
  int to_child[2];
  int from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) {
    perror("pipe");
    return 1;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("fork");
    return 1;
  }
  if (child == 0) {
    close(to_child[1]);
    close(from_child[0]);
    _exit(echo(to_child[0], from_child[1], buffer, (size_t)bytes));
  }
  close(to_child[0]);
  close(from_child[1]);

  struct timespec start;
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < round_trips; ++i) {
    struct pollfd ready = {from_child[0], POLLIN, 0};
    if (write_all(to_child[1], buffer, (size_t)bytes) != 0) {
      perror("write");
      return 1;
    }
    /* As warrend's connection thread does: poll, then read what is there. */
    while (poll(&ready, 1, 10000) < 0 && errno == EINTR) {
    }
    if (!(ready.revents & POLLIN) || read_all(from_child[0], buffer, (size_t)bytes) != 0) {
      fprintf(stderr, "pipe_roundtrip: the child did not answer\n");
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  close(to_child[1]);
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "pipe_roundtrip: the child failed\n");
    return 1;
  }

  struct rusage self;
  struct rusage children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  const double cpu = seconds_of(self.ru_utime) + seconds_of(self.ru_stime) +
                     seconds_of(children.ru_utime) + seconds_of(children.ru_stime);
  const double wall =
      (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
  const double switches = (double)(self.ru_nvcsw + children.ru_nvcsw);
  printf(
      "{\"round_trips\": %ld, \"bytes\": %ld, \"wall_us\": %.2f, \"cpu_us\": %.2f, "
      "\"voluntary_switches\": %.2f}\n",
      round_trips, bytes, wall * 1e6 / (double)round_trips, cpu * 1e6 / (double)round_trips,
      switches / (double)round_trips);
  return 0;
}
