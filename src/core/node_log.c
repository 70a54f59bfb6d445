/*
 * node_log.c - log lines from nodes, the runtime and processors' stdout/stderr, with
 * secrets redacted, and a limiter for conditions that could otherwise print a line per
 * event.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/pipeline_internal.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

uint64_t sl__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool sl__log_limiter_allow(sl_log_limiter *limiter, uint64_t *suppressed) {
  uint64_t now = sl__now_ms();
  bool allow = false;
  pthread_mutex_lock(&limiter->lock);
  if (limiter->window_start_ms == 0 || now - limiter->window_start_ms >= 1000) {
    limiter->window_start_ms = now;
    *suppressed = limiter->suppressed;
    limiter->suppressed = 0;
    allow = true;
  } else {
    limiter->suppressed++;
  }
  pthread_mutex_unlock(&limiter->lock);
  return allow;
}

const char *sl__log_suppressed_note(uint64_t suppressed) {
  static __thread char note[64];
  if (suppressed == 0) return "";
  snprintf(note, sizeof note, " (%llu similar messages held back)", (unsigned long long)suppressed);
  return note;
}

void sl_node_log(const sl_node_ctx *node, sl_log_level level, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  const sl_pipeline *pipeline = node->runtime;
  if (pipeline) sl_pipeline_spec_redact(pipeline->spec, line, sizeof line);
  const char *stream = level_names[level <= SL_LOG_DEBUG ? level : SL_LOG_DEBUG];
  if (pipeline && pipeline->log) {
    size_t len = 0;
    while (line[len]) len++;
    pipeline->log(pipeline->log_user, node->id, stream, line, len);
    return;
  }
  fprintf(stderr, "[%s] %s: %s\n", node->id, stream, line);
}

void sl__processor_log(void *user, const char *node_id, const char *stream, const char *line,
                       size_t len) {
  const sl_pipeline *pipeline = user;
  /* The guest's lines come in pieces of at most 1 KiB (src/wasm/wasi.c); the room above
   * that is for "***" being longer than a short secret it replaces. */
  char text[4096];
  snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1), line);
  sl_pipeline_spec_redact(pipeline->spec, text, sizeof text);
  pipeline->log(pipeline->log_user, node_id, stream, text, strlen(text));
}
