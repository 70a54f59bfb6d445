/*
 * log_hub.c - recent log lines per pipeline and their live readers (log_hub.h).
 *
 * One mutex guards everything: pushes are rare next to events (processors' prints and
 * the runtime's notices, which are rate-limited), and a push only copies a line and
 * hands bytes to non-blocking streams.
 */
#include "daemon/log_hub.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct log_line {
  int64_t at_ms;
  int64_t version;
  char *node;
  char *stream;
  char *text;
} log_line;

typedef struct pipeline_log {
  char *name;
  log_line ring[SL_LOG_HUB_KEEP];
  size_t next;  /* where the next line goes */
  size_t count; /* lines held, at most SL_LOG_HUB_KEEP */
  struct pipeline_log *link;
} pipeline_log;

typedef struct subscriber {
  char *pipeline;
  char *node; /* NULL: every node */
  sl_api_stream *stream;
  atomic_bool closed; /* set on the server's loop thread when the client leaves */
  uint64_t dropped;
  struct subscriber *link;
} subscriber;

struct sl_log_hub {
  pthread_mutex_t lock;
  bool echo;
  pipeline_log *pipelines;
  subscriber *subscribers;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void line_clear(log_line *line) {
  free(line->node);
  free(line->stream);
  free(line->text);
  memset(line, 0, sizeof *line);
}

static json_t *line_json(const char *pipeline, const log_line *line) {
  return json_pack("{s:I, s:s, s:I, s:s, s:s, s:s}", "at", (json_int_t)line->at_ms, "pipeline",
                   pipeline, "version", (json_int_t)line->version, "node", line->node, "stream",
                   line->stream, "line", line->text);
}

sl_log_hub *sl_log_hub_new(bool echo) {
  sl_log_hub *hub = calloc(1, sizeof *hub);
  if (!hub) return NULL;
  pthread_mutex_init(&hub->lock, NULL);
  hub->echo = echo;
  return hub;
}

static void subscriber_free(subscriber *sub) {
  sl_api_stream_end(sub->stream);
  free(sub->pipeline);
  free(sub->node);
  free(sub);
}

static void pipeline_log_free(pipeline_log *log) {
  for (size_t i = 0; i < SL_LOG_HUB_KEEP; i++) line_clear(&log->ring[i]);
  free(log->name);
  free(log);
}

void sl_log_hub_destroy(sl_log_hub *hub) {
  if (!hub) return;
  for (subscriber *sub = hub->subscribers, *next; sub; sub = next) {
    next = sub->link;
    subscriber_free(sub);
  }
  for (pipeline_log *log = hub->pipelines, *next; log; log = next) {
    next = log->link;
    pipeline_log_free(log);
  }
  pthread_mutex_destroy(&hub->lock);
  free(hub);
}

static pipeline_log *find_log(sl_log_hub *hub, const char *pipeline, bool create) {
  for (pipeline_log *log = hub->pipelines; log; log = log->link)
    if (strcmp(log->name, pipeline) == 0) return log;
  if (!create) return NULL;
  pipeline_log *log = calloc(1, sizeof *log);
  if (!log || !(log->name = strdup(pipeline))) {
    free(log);
    return NULL;
  }
  log->link = hub->pipelines;
  hub->pipelines = log;
  return log;
}

/* Sends one line to one subscriber; false when the subscriber is gone. */
static bool deliver(subscriber *sub, const char *pipeline, const log_line *line) {
  if (atomic_load(&sub->closed)) return false;
  if (sub->node && strcmp(sub->node, line->node) != 0) return true;
  json_t *event = line_json(pipeline, line);
  if (!event) return true;
  if (sub->dropped) json_object_set_new(event, "dropped", json_integer((json_int_t)sub->dropped));
  switch (sl_api_stream_send_event(sub->stream, event)) {
  case SL_STREAM_SENT:
    sub->dropped = 0;
    return true;
  case SL_STREAM_DROPPED:
    sub->dropped++;
    return true;
  case SL_STREAM_CLOSED:
    break;
  }
  return false;
}

/* Removes the subscribers whose clients left. Caller holds the lock. */
static void sweep_locked(sl_log_hub *hub) {
  for (subscriber **at = &hub->subscribers; *at;) {
    subscriber *sub = *at;
    if (atomic_load(&sub->closed)) {
      *at = sub->link;
      subscriber_free(sub);
    } else {
      at = &sub->link;
    }
  }
}

void sl_log_hub_push(sl_log_hub *hub, const char *pipeline, int64_t version, const char *node,
                     const char *stream, const char *text, size_t len) {
  if (hub->echo) fprintf(stderr, "%s/%s %s: %.*s\n", pipeline, node, stream, (int)len, text);
  pthread_mutex_lock(&hub->lock);
  pipeline_log *log = find_log(hub, pipeline, true);
  if (log) {
    log_line *line = &log->ring[log->next];
    line_clear(line);
    line->at_ms = now_ms();
    line->version = version;
    line->node = strdup(node);
    line->stream = strdup(stream);
    line->text = strndup(text, len);
    if (line->node && line->stream && line->text) {
      log->next = (log->next + 1) % SL_LOG_HUB_KEEP;
      if (log->count < SL_LOG_HUB_KEEP) log->count++;
      for (subscriber *sub = hub->subscribers; sub; sub = sub->link)
        if (strcmp(sub->pipeline, pipeline) == 0 && !deliver(sub, pipeline, line))
          atomic_store(&sub->closed, true);
    } else {
      line_clear(line);
    }
  }
  sweep_locked(hub);
  pthread_mutex_unlock(&hub->lock);
}

/* Calls `fn` with the last `tail` matching lines, oldest first. Caller holds the lock. */
static void each_recent(pipeline_log *log, const char *node, size_t tail,
                        bool (*fn)(void *user, const log_line *line), void *user) {
  if (!log) return;
  size_t first = (log->next + SL_LOG_HUB_KEEP - log->count) % SL_LOG_HUB_KEEP;
  /* Count matches from the newest backwards to find where the tail starts. */
  size_t start = log->count, matched = 0;
  while (start > 0 && matched < tail) {
    const log_line *line = &log->ring[(first + start - 1) % SL_LOG_HUB_KEEP];
    if (!node || strcmp(line->node, node) == 0) matched++;
    start--;
  }
  for (size_t i = start; i < log->count; i++) {
    const log_line *line = &log->ring[(first + i) % SL_LOG_HUB_KEEP];
    if (node && strcmp(line->node, node) != 0) continue;
    if (!fn(user, line)) return;
  }
}

typedef struct collect_ctx {
  const char *pipeline;
  json_t *array;
} collect_ctx;

static bool collect(void *user, const log_line *line) {
  collect_ctx *ctx = user;
  json_array_append_new(ctx->array, line_json(ctx->pipeline, line));
  return true;
}

json_t *sl_log_hub_recent(sl_log_hub *hub, const char *pipeline, const char *node, size_t tail) {
  collect_ctx ctx = {pipeline, json_array()};
  pthread_mutex_lock(&hub->lock);
  each_recent(find_log(hub, pipeline, false), node, tail, collect, &ctx);
  pthread_mutex_unlock(&hub->lock);
  return ctx.array;
}

static bool replay(void *user, const log_line *line) {
  subscriber *sub = user;
  return deliver(sub, sub->pipeline, line);
}

static void on_client_gone(void *user) {
  subscriber *sub = user;
  atomic_store(&sub->closed, true);
}

void sl_log_hub_follow(sl_log_hub *hub, const char *pipeline, const char *node, size_t tail,
                       sl_api_stream *stream) {
  subscriber *sub = calloc(1, sizeof *sub);
  if (!sub || !(sub->pipeline = strdup(pipeline)) || (node && !(sub->node = strdup(node)))) {
    if (sub) free(sub->pipeline);
    free(sub);
    sl_api_stream_end(stream);
    return;
  }
  sub->stream = stream;
  sl_api_stream_on_close(stream, on_client_gone, sub);
  pthread_mutex_lock(&hub->lock);
  /* Replay and subscribe under one lock, so no line falls between the two. */
  each_recent(find_log(hub, pipeline, false), node, tail, replay, sub);
  sub->link = hub->subscribers;
  hub->subscribers = sub;
  pthread_mutex_unlock(&hub->lock);
}

void sl_log_hub_sweep(sl_log_hub *hub) {
  pthread_mutex_lock(&hub->lock);
  sweep_locked(hub);
  pthread_mutex_unlock(&hub->lock);
}

void sl_log_hub_forget(sl_log_hub *hub, const char *pipeline) {
  pthread_mutex_lock(&hub->lock);
  for (pipeline_log **at = &hub->pipelines; *at; at = &(*at)->link) {
    if (strcmp((*at)->name, pipeline) == 0) {
      pipeline_log *log = *at;
      *at = log->link;
      pipeline_log_free(log);
      break;
    }
  }
  pthread_mutex_unlock(&hub->lock);
}
