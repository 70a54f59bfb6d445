/*
 * stdin_source.c - `type: stdin`: one event per line of standard input; end of input
 * ends the source (contracts.md §3).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/line_reader.h"
#include "sluice/connector.h"

typedef struct stdin_config {
  uint64_t max_line;
} stdin_config;

typedef struct stdin_source {
  const sl_node_ctx *node;
  const stdin_config *config;
  sl_source_port *port;
  pthread_t thread;
  bool thread_started;
  int wake_fd; /* stop() writes here so a blocked poll() returns */
  atomic_bool stopping;
} stdin_source;

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  stdin_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = config;
  src->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (src->wake_fd < 0) {
    free(src);
    return sl_error_set(err, SL_IO, "eventfd: %s", strerror(errno));
  }
  *state = src;
  return SL_OK;
}

/* Waits until stdin is readable or stop() was called; false when stopping. */
static bool wait_readable(stdin_source *src) {
  struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                          {.fd = src->wake_fd, .events = POLLIN}};
  for (;;) {
    if (atomic_load(&src->stopping)) return false;
    int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (fds[1].revents) return false;
    return true; /* readable, hung up or in error: read() tells which */
  }
}

static void *run(void *arg) {
  stdin_source *src = arg;
  sl_line_reader reader;
  sl__line_reader_init(&reader, STDIN_FILENO, 0, src->config->max_line);
  size_t batch_size = sl_source_batch_size(src->port);
  sl_event_list *batch = NULL;
  while (!reader.eof) {
    if (reader.start == reader.end && !wait_readable(src)) break;
    if (!batch) {
      batch = malloc(sizeof *batch);
      if (!batch) abort();
      sl_event_list_init(batch);
    }
    sl_error err;
    if (sl__line_reader_fill(&reader, batch, batch_size, true, NULL, &err) != SL_OK) {
      sl_node_log(src->node, SL_LOG_ERROR, "stdin: %s", err.message);
      break;
    }
    if (batch->count == 0) continue;
    if (sl_source_emit(src->port, &batch, NULL, NULL) != SL_OK) break;
  }
  if (batch) {
    sl_event_list_destroy(batch);
    free(batch);
  }
  sl__line_reader_destroy(&reader);
  sl_source_end(src->port);
  return NULL;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  stdin_source *src = state;
  src->port = port;
  int rc = pthread_create(&src->thread, NULL, run, src);
  if (rc != 0) return sl_error_set(err, SL_IO, "cannot start the stdin thread: %s", strerror(rc));
  src->thread_started = true;
  return SL_OK;
}

static void stop(void *state) {
  stdin_source *src = state;
  atomic_store(&src->stopping, true);
  uint64_t one = 1;
  ssize_t ignored = write(src->wake_fd, &one, sizeof one);
  (void)ignored;
}

static void destroy(void *state) {
  stdin_source *src = state;
  if (src->thread_started) pthread_join(src->thread, NULL);
  close(src->wake_fd);
  free(src);
}

static const sl_conf_field fields[] = {
    {"max_line", SL_CONF_SIZE, 0, "1MiB", offsetof(stdin_config, max_line),
     "A longer line is cut into pieces of this size rather than dropped.", NULL},
    {NULL},
};

const sl_connector sl_stdin_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "stdin",
    .kind = SL_NODE_SOURCE,
    .summary = "One event per line of standard input; end of input ends the source.",
    .fields = fields,
    .config_size = sizeof(stdin_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
};
