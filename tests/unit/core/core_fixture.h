/*
 * core_fixture.h - helpers for the running-pipeline tests: a pipeline from YAML text on
 * the test SLUICE_HOME, with real connectors and the test guests; a thread-safe log
 * capture; and a tap that keeps copies of what it sees. Every helper asserts.
 */
#ifndef SL_TEST_CORE_FIXTURE_H
#define SL_TEST_CORE_FIXTURE_H

#include <pthread.h>
#include <stdarg.h>
#include <time.h>

#include "../../support/fixture.h"
#include "sluice/pipeline.h"

/* Log lines as "node|stream|line\n", from any thread. */
typedef struct log_lines {
  pthread_mutex_t lock;
  char text[32768];
  size_t len;
} log_lines;

static inline void log_lines_init(log_lines *log) {
  memset(log, 0, sizeof *log);
  pthread_mutex_init(&log->lock, NULL);
}

static inline void on_log_line(void *user, const char *node, const char *stream, const char *line,
                               size_t len) {
  log_lines *log = user;
  pthread_mutex_lock(&log->lock);
  int n = snprintf(log->text + log->len, sizeof log->text - log->len, "%s|%s|%.*s\n", node, stream,
                   (int)len, line);
  if (n > 0 && log->len + (size_t)n < sizeof log->text) log->len += (size_t)n;
  pthread_mutex_unlock(&log->lock);
}

static inline bool log_has(log_lines *log, const char *needle) {
  pthread_mutex_lock(&log->lock);
  bool found = strstr(log->text, needle) != NULL;
  pthread_mutex_unlock(&log->lock);
  return found;
}

/* A pipeline built from YAML text, with everything it needs. */
typedef struct test_run {
  sl_engine *engine; /* owned unless given to run_new_on */
  bool own_engine;
  sl_pipeline_spec *spec;
  sl_pipeline *pipeline;
} test_run;

static inline const char *test_getenv(void *user, const char *name) {
  return strcmp(name, "TEST_SECRET") == 0 ? "hunter2" : getenv(name);
}

/* Builds (not starts) the pipeline `yaml` on `engine`, logging to `log` (NULL: the
 * pipeline's default). $TEST_SECRET is "hunter2". */
static inline void run_new_on(test_run *run, sl_engine *engine, const char *yaml, log_lines *log) {
  memset(run, 0, sizeof *run);
  run->engine = engine;
  sl_error err = {{0}};
  sl_load_options lopts = {.getenv = test_getenv};
  sl_status st =
      sl_pipeline_load_text(yaml, strlen(yaml), "test.yaml", "/tmp", &lopts, &run->spec, &err);
  cr_assert_eq(st, SL_OK, "loading the pipeline: %s\n%s", err.message, yaml);
  sl_pipeline_options popts = {0};
  if (log) {
    popts.log = on_log_line;
    popts.log_user = log;
  }
  st = sl_pipeline_new(engine, run->spec, &popts, &run->pipeline, &err);
  cr_assert_eq(st, SL_OK, "sl_pipeline_new: %s", err.message);
}

static inline void run_new(test_run *run, const char *yaml, log_lines *log) {
  run_new_on(run, test_engine(), yaml, log);
  run->own_engine = true;
}

static inline void run_start(test_run *run) {
  sl_error err = {{0}};
  sl_status st = sl_pipeline_start(run->pipeline, &err);
  cr_assert_eq(st, SL_OK, "sl_pipeline_start: %s", err.message);
}

/* Waits until every source ended and everything is delivered. */
static inline void run_wait(test_run *run) {
  sl_error err = {{0}};
  sl_status st = sl_pipeline_wait(run->pipeline, &err);
  cr_assert_eq(st, SL_OK, "sl_pipeline_wait: %s", err.message);
}

static inline void run_free(test_run *run) {
  sl_pipeline_destroy(run->pipeline);
  if (run->own_engine) sl_engine_destroy(run->engine);
  sl_pipeline_spec_free(run->spec);
  memset(run, 0, sizeof *run);
}

static inline sl_node_stats stats_of(test_run *run, const char *node) {
  sl_node_stats stats;
  cr_assert(sl_pipeline_node_stats(run->pipeline, node, &stats), "no node '%s'", node);
  return stats;
}

static inline uint64_t histogram_count(const uint64_t *buckets) {
  uint64_t total = 0;
  for (unsigned i = 0; i < SL_LATENCY_BUCKETS; i++) total += buckets[i];
  return total;
}

/* malloc'd printf; the caller frees. */
static inline char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = NULL;
  cr_assert(vasprintf(&text, fmt, ap) >= 0);
  va_end(ap);
  return text;
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A tap that keeps a copy of every event it is shown. */
typedef struct tap_seen {
  pthread_mutex_t lock;
  sl_event_list events;
  size_t calls;
} tap_seen;

static inline void tap_seen_init(tap_seen *seen) {
  pthread_mutex_init(&seen->lock, NULL);
  sl_event_list_init(&seen->events);
  seen->calls = 0;
}

static inline void tap_seen_destroy(tap_seen *seen) {
  sl_event_list_destroy(&seen->events);
  pthread_mutex_destroy(&seen->lock);
}

static inline void on_tap_copy(void *user, const sl_event *events, size_t count) {
  tap_seen *seen = user;
  pthread_mutex_lock(&seen->lock);
  seen->calls++;
  for (size_t i = 0; i < count; i++)
    if (sl_event_list_push_copy(&seen->events, &events[i], NULL, 0) != SL_OK) abort();
  pthread_mutex_unlock(&seen->lock);
}

static inline bool payload_is(const sl_event *ev, const char *text) {
  size_t len = strlen(text);
  return ev->payload.len == len && memcmp(ev->payload.ptr, text, len) == 0;
}

/* The value of metadata `key`, NUL-terminated in a per-thread buffer; "" when absent. */
static inline const char *meta_of(const sl_event *ev, const char *key) {
  static __thread char value[1024];
  value[0] = '\0';
  for (size_t m = 0; m < ev->meta_count; m++)
    if (ev->meta[m].key.len == strlen(key) && memcmp(ev->meta[m].key.ptr, key, strlen(key)) == 0)
      snprintf(value, sizeof value, "%.*s", (int)ev->meta[m].value.len,
               (const char *)ev->meta[m].value.ptr);
  return value;
}

#endif
