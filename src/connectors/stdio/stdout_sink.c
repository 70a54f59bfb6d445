/*
 * stdout_sink.c - `type: stdout`: each event's payload, then a newline (contracts.md §3).
 *
 * A batch is written with one buffered pass and flushed when the sink's queue runs dry,
 * so a pipe reader sees lines promptly and a fast pipeline makes few write(2) calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/connector.h"

typedef struct stdout_config {
  bool with_meta;
} stdout_config;

typedef struct stdout_sink {
  const stdout_config *config;
  char *buf;
  size_t len, cap;
} stdout_sink;

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  stdout_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->config = config;
  sink->cap = 256u << 10;
  sink->buf = malloc(sink->cap);
  if (!sink->buf) abort();
  *state = sink;
  return SL_OK;
}

static sl_status flush(void *state, sl_error *err) {
  stdout_sink *sink = state;
  size_t done = 0;
  while (done < sink->len) {
    ssize_t n = write(STDOUT_FILENO, sink->buf + done, sink->len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      sink->len = 0;
      return sl_error_set(err, SL_IO, "stdout: %s", strerror(errno));
    }
    done += (size_t)n;
  }
  sink->len = 0;
  return SL_OK;
}

static sl_status append(stdout_sink *sink, const void *bytes, size_t len, sl_error *err) {
  if (sink->len + len > sink->cap) {
    sl_status st = flush(sink, err);
    if (st != SL_OK) return st;
    if (len > sink->cap) {
      size_t cap = len;
      char *grown = realloc(sink->buf, cap);
      if (!grown) abort();
      sink->buf = grown;
      sink->cap = cap;
    }
  }
  memcpy(sink->buf + sink->len, bytes, len);
  sink->len += len;
  return SL_OK;
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  stdout_sink *sink = state;
  sl_status st = SL_OK;
  for (size_t i = 0; i < batch->count && st == SL_OK; i++) {
    const sl_event *ev = &batch->items[i];
    if (sink->config->with_meta) {
      for (size_t m = 0; m < ev->meta_count && st == SL_OK; m++) {
        st = append(sink, ev->meta[m].key.ptr, ev->meta[m].key.len, err);
        if (st == SL_OK) st = append(sink, "=", 1, err);
        if (st == SL_OK) st = append(sink, ev->meta[m].value.ptr, ev->meta[m].value.len, err);
        if (st == SL_OK) st = append(sink, " ", 1, err);
      }
    }
    if (st == SL_OK) st = append(sink, ev->payload.ptr, ev->payload.len, err);
    if (st == SL_OK) st = append(sink, "\n", 1, err);
  }
  return st;
}

static void destroy(void *state) {
  stdout_sink *sink = state;
  free(sink->buf);
  free(sink);
}

static const sl_conf_field fields[] = {
    {"with_meta", SL_CONF_BOOL, 0, "false", offsetof(stdout_config, with_meta),
     "Print each event's metadata as key=value pairs before its payload.", NULL},
    {NULL},
};

const sl_connector sl_stdout_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "stdout",
    .kind = SL_NODE_SINK,
    .summary = "Writes each event's payload and a newline to standard output.",
    .fields = fields,
    .config_size = sizeof(stdout_config),
    .init = init,
    .write = write_batch,
    .flush = flush,
    .destroy = destroy,
};
