/*
 * generate_source.c - `type: generate`: synthetic events for demos, tests and benchmarks.
 *
 * `payload` is a template: `{{seq}}` becomes the event's sequence number (from 1).
 * `rate` 0 means as fast as the pipeline takes them; otherwise events per second,
 * paced in small batches so a slow rate still looks smooth.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "sluice/connector.h"

typedef struct generate_config {
  int64_t count;
  char *payload;
  int64_t rate;
} generate_config;

typedef struct generate_source {
  const sl_node_ctx *node;
  const generate_config *config;
  sl_source_port *port;
  pthread_t thread;
  bool thread_started;
  atomic_bool stopping;
  int wake_fd; /* eventfd: stop() ends a paced wait at once (write(2) is signal-safe) */
  /* The template split at each "{{seq}}": the number goes between the pieces. */
  const char **pieces;
  size_t *piece_lens;
  size_t piece_count;
  size_t fixed_len; /* sum of piece_lens */
} generate_source;

#define SEQ_MARK "{{seq}}"

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const generate_config *cfg = config;
  if (cfg->count < 0) return sl_error_set(err, SL_CONFIG, "count: must be 0 (forever) or more");
  if (cfg->rate < 0) return sl_error_set(err, SL_CONFIG, "rate: must be 0 (unpaced) or more");
  generate_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  src->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (src->wake_fd < 0) {
    free(src);
    return sl_error_set(err, SL_IO, "cannot make the generate source's wake-up: %s",
                        strerror(errno));
  }
  const char *tmpl = cfg->payload ? cfg->payload : "";
  size_t marks = 0;
  for (const char *at = tmpl; (at = strstr(at, SEQ_MARK)) != NULL; at += strlen(SEQ_MARK)) marks++;
  src->pieces = calloc(marks + 1, sizeof *src->pieces);
  src->piece_lens = calloc(marks + 1, sizeof *src->piece_lens);
  if (!src->pieces || !src->piece_lens) abort();
  for (const char *at = tmpl;; src->piece_count++) {
    const char *mark = strstr(at, SEQ_MARK);
    src->pieces[src->piece_count] = at;
    src->piece_lens[src->piece_count] = mark ? (size_t)(mark - at) : strlen(at);
    src->fixed_len += src->piece_lens[src->piece_count];
    if (!mark) {
      src->piece_count++;
      break;
    }
    at = mark + strlen(SEQ_MARK);
  }
  *state = src;
  return SL_OK;
}

static void push_event(generate_source *src, sl_event_list *batch, uint64_t seq) {
  char digits[24];
  size_t n = (size_t)snprintf(digits, sizeof digits, "%llu", (unsigned long long)seq);
  size_t len = src->fixed_len + n * (src->piece_count - 1);
  uint8_t *payload;
  sl_meta *meta;
  if (sl_event_list_push(batch, len, 0, &payload, &meta) != SL_OK) abort();
  for (size_t i = 0; i < src->piece_count; i++) {
    if (i > 0) {
      memcpy(payload, digits, n);
      payload += n;
    }
    memcpy(payload, src->pieces[i], src->piece_lens[i]);
    payload += src->piece_lens[i];
  }
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *run(void *arg) {
  generate_source *src = arg;
  uint64_t count = (uint64_t)src->config->count; /* 0: forever */
  uint64_t rate = (uint64_t)src->config->rate;
  size_t batch_size = sl_source_batch_size(src->port);
  if (rate) {
    /* About 20 batches a second keeps pacing smooth without a syscall per event. */
    size_t paced = (size_t)(rate / 20);
    batch_size = paced < 1 ? 1 : paced < batch_size ? paced : batch_size;
  }
  uint64_t started = now_ns();
  uint64_t seq = 0;
  while (!atomic_load(&src->stopping) && (count == 0 || seq < count)) {
    sl_event_list *batch = malloc(sizeof *batch);
    if (!batch) abort();
    sl_event_list_init(batch);
    while (batch->count < batch_size && (count == 0 || seq < count)) push_event(src, batch, ++seq);
    if (sl_source_emit(src->port, &batch, NULL, NULL) != SL_OK) break;
    if (rate) {
      uint64_t due = started + seq * 1000000000u / rate;
      uint64_t now = now_ns();
      while (now < due && !atomic_load(&src->stopping)) {
        uint64_t wait = due - now;
        struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
        struct pollfd woken = {.fd = src->wake_fd, .events = POLLIN};
        ppoll(&woken, 1, &ts, NULL);
        now = now_ns();
      }
    }
  }
  sl_source_end(src->port);
  return NULL;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  generate_source *src = state;
  src->port = port;
  int rc = pthread_create(&src->thread, NULL, run, src);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "cannot start the generate thread: %s", strerror(rc));
  src->thread_started = true;
  return SL_OK;
}

static void stop(void *state) {
  generate_source *src = state;
  atomic_store(&src->stopping, true);
  uint64_t one = 1;
  if (write(src->wake_fd, &one, sizeof one) < 0) {
    /* The counter cannot overflow here; the flag alone still stops within one wait. */
  }
}

static void destroy(void *state) {
  generate_source *src = state;
  if (src->thread_started) pthread_join(src->thread, NULL);
  if (src->wake_fd >= 0) close(src->wake_fd);
  free(src->pieces);
  free(src->piece_lens);
  free(src);
}

static const sl_conf_field fields[] = {
    {"count", SL_CONF_INT, 0, "0", offsetof(generate_config, count),
     "Events to generate before the source ends; 0 generates until stopped.", NULL},
    {"payload", SL_CONF_STRING, 0, "{\"seq\":{{seq}}}", offsetof(generate_config, payload),
     "The payload of each event; {{seq}} becomes the sequence number, from 1.", NULL},
    {"rate", SL_CONF_INT, 0, "0", offsetof(generate_config, rate),
     "Events per second; 0 is as fast as the pipeline accepts them.", NULL},
    {NULL},
};

const sl_connector sl_generate_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "generate",
    .kind = SL_NODE_SOURCE,
    .summary = "Synthetic events at a fixed rate or as fast as possible.",
    .fields = fields,
    .config_size = sizeof(generate_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
};
