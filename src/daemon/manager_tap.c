/*
 * manager_tap.c - `GET .../nodes/ID/tap`: sampled events at a node's output, streamed
 * to a client, following the pipeline across swaps.
 *
 * The callback runs on the pipeline's worker threads, so it never waits: a token bucket
 * decides which events are sampled, the stream's own buffer takes the bytes, and a
 * client that left or a limit that was reached only sets `closed`. The sampler thread
 * then detaches the tap and ends the stream (sl__taps_sweep), away from workers.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/utf8.h"
#include "daemon/manager_internal.h"

typedef struct tap_binding {
  sl_pipeline *pipeline;
  sl_tap *tap;
} tap_binding;

struct sl_tap_sub {
  sl_manager *manager;
  char *node;
  bool errors;
  double rate;
  uint64_t limit;
  sl_api_stream *stream;
  atomic_bool closed;
  pthread_mutex_t lock; /* the bucket, counters; taken on worker threads, briefly */
  double tokens;
  double refilled_ms;
  uint64_t sent, dropped;
  tap_binding bindings[2]; /* the old and the new graph during an overlap swap */
  sl_tap_sub *link;
};

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}


static char *base64(const uint8_t *in, size_t len) {
  static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < len ? in[i + 2] : 0);
    *o++ = table[v >> 18 & 63];
    *o++ = table[v >> 12 & 63];
    *o++ = i + 1 < len ? table[v >> 6 & 63] : '=';
    *o++ = i + 2 < len ? table[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

static json_t *event_json(const sl_tap_sub *sub, const sl_event *ev, uint64_t dropped) {
  json_t *meta = json_object();
  for (size_t m = 0; m < ev->meta_count; m++) {
    char key[256];
    size_t klen = ev->meta[m].key.len < sizeof key - 1 ? ev->meta[m].key.len : sizeof key - 1;
    memcpy(key, ev->meta[m].key.ptr, klen);
    key[klen] = '\0';
    json_object_set_new(meta, key,
                        json_stringn((const char *)ev->meta[m].value.ptr, ev->meta[m].value.len));
  }
  json_t *out =
      json_pack("{s:s, s:s, s:o, s:I}", "node", sub->node, "output", sub->errors ? "errors" : "out",
                "meta", meta, "dropped", (json_int_t)dropped);
  if (!out) return NULL;
  if (sl__utf8_valid(ev->payload.ptr, ev->payload.len, NULL)) {
    json_object_set_new(out, "payload",
                        json_stringn((const char *)ev->payload.ptr, ev->payload.len));
  } else {
    char *text = base64(ev->payload.ptr, ev->payload.len);
    json_object_set_new(out, "payload", json_string(text ? text : ""));
    json_object_set_new(out, "encoding", json_string("base64"));
    free(text);
  }
  return out;
}

static void wake_sampler(sl_manager *manager) {
  pthread_mutex_lock(&manager->sampler_lock);
  pthread_cond_signal(&manager->sampler_wake);
  pthread_mutex_unlock(&manager->sampler_lock);
}

static void on_events(void *user, const sl_event *events, size_t count) {
  sl_tap_sub *sub = user;
  for (size_t i = 0; i < count && !atomic_load(&sub->closed); i++) {
    pthread_mutex_lock(&sub->lock);
    double now = mono_ms();
    sub->tokens += (now - sub->refilled_ms) * sub->rate / 1e3;
    if (sub->tokens > sub->rate) sub->tokens = sub->rate; /* bursts of one second at most */
    sub->refilled_ms = now;
    bool take = sub->tokens >= 1 && (!sub->limit || sub->sent < sub->limit);
    if (take) {
      sub->tokens -= 1;
      sub->sent++;
    }
    uint64_t dropped = sub->dropped;
    bool done = sub->limit && sub->sent >= sub->limit;
    pthread_mutex_unlock(&sub->lock);
    if (!take) break; /* the rest of this batch is not sampled either */

    json_t *event = event_json(sub, &events[i], dropped);
    sl_stream_send sent = event ? sl_api_stream_send_event(sub->stream, event) : SL_STREAM_DROPPED;
    pthread_mutex_lock(&sub->lock);
    if (sent == SL_STREAM_SENT) sub->dropped = 0;
    if (sent == SL_STREAM_DROPPED) sub->dropped++;
    pthread_mutex_unlock(&sub->lock);
    if (sent == SL_STREAM_CLOSED || done) {
      atomic_store(&sub->closed, true);
      wake_sampler(sub->manager);
    }
  }
}

static void on_client_gone(void *user) {
  sl_tap_sub *sub = user;
  atomic_store(&sub->closed, true);
}

/* Binds `sub` to `run`'s graph if the node is there. Caller holds tap_lock. */
static void bind(sl_tap_sub *sub, sl_running *run) {
  if (atomic_load(&sub->closed)) return;
  for (int b = 0; b < 2; b++) {
    if (sub->bindings[b].pipeline) continue;
    sl_error err;
    if (sl_pipeline_tap_add(run->pipeline, sub->node, sub->errors, on_events, sub,
                            &sub->bindings[b].tap, &err) == SL_OK)
      sub->bindings[b].pipeline = run->pipeline;
    return;
  }
}

static void unbind(sl_tap_sub *sub, sl_running *run) {
  for (int b = 0; b < 2; b++)
    if (sub->bindings[b].pipeline == run->pipeline) {
      sl_pipeline_tap_remove(run->pipeline, sub->bindings[b].tap);
      sub->bindings[b] = (tap_binding){0};
    }
}

void sl__taps_attach(sl_manager *manager, sl_entry *entry, sl_running *run) {
  pthread_mutex_lock(&manager->tap_lock);
  for (sl_tap_sub *sub = entry->taps; sub; sub = sub->link) bind(sub, run);
  pthread_mutex_unlock(&manager->tap_lock);
}

void sl__taps_detach(sl_manager *manager, sl_entry *entry, sl_running *run) {
  pthread_mutex_lock(&manager->tap_lock);
  for (sl_tap_sub *sub = entry->taps; sub; sub = sub->link) unbind(sub, run);
  pthread_mutex_unlock(&manager->tap_lock);
}

/* Caller holds tap_lock and has unlinked `sub`. */
static void sub_end(sl_tap_sub *sub) {
  for (int b = 0; b < 2; b++)
    if (sub->bindings[b].pipeline)
      sl_pipeline_tap_remove(sub->bindings[b].pipeline, sub->bindings[b].tap);
  sl_api_stream_end(sub->stream);
  pthread_mutex_destroy(&sub->lock);
  free(sub->node);
  free(sub);
}

static void sweep(sl_manager *manager, sl_entry *entry, bool all) {
  pthread_mutex_lock(&manager->tap_lock);
  for (sl_tap_sub **at = &entry->taps; *at;) {
    sl_tap_sub *sub = *at;
    if (all || atomic_load(&sub->closed)) {
      *at = sub->link;
      sub_end(sub);
    } else {
      at = &sub->link;
    }
  }
  pthread_mutex_unlock(&manager->tap_lock);
}

void sl__taps_sweep(sl_manager *manager, sl_entry *entry) { sweep(manager, entry, false); }
void sl__taps_end_all(sl_manager *manager, sl_entry *entry) { sweep(manager, entry, true); }

sl_status sl_manager_tap(sl_manager *manager, const char *name, const char *node, bool errors,
                         double rate, uint64_t limit, sl_api_reply *reply, sl_error *err) {
  sl_entry *entry = sl__entry_get(manager, name);
  if (!entry) return sl_error_set(err, SL_NOT_FOUND, "no pipeline '%s'", name);
  pthread_rwlock_rdlock(&entry->rw);
  sl_status status = SL_OK;
  const sl_node_spec *spec = entry->run ? sl_pipeline_spec_node(entry->run->spec, node) : NULL;
  if (!entry->run)
    status =
        sl_error_set(err, SL_NOT_FOUND, "pipeline '%s' is not running (%s)", name, entry->status);
  else if (!spec)
    status = sl_error_set(err, SL_NOT_FOUND, "pipeline '%s' has no node '%s'", name, node);
  else if (errors && spec->kind != SL_NODE_PROCESSOR)
    status = sl_error_set(err, SL_INVALID, "node '%s' is a %s: only processors have .errors", node,
                          spec->kind == SL_NODE_SOURCE ? "source" : "sink");
  sl_tap_sub *sub = status == SL_OK ? calloc(1, sizeof *sub) : NULL;
  if (status == SL_OK && (!sub || !(sub->node = strdup(node)))) {
    free(sub);
    sub = NULL;
    status = sl_error_set(err, SL_NOMEM, "out of memory");
  }
  if (status != SL_OK) {
    pthread_rwlock_unlock(&entry->rw);
    sl__entry_release(manager, entry);
    return status;
  }
  sub->manager = manager;
  sub->errors = errors;
  sub->rate = rate > 0 ? rate : 10;
  sub->tokens = sub->rate >= 1 ? 1 : sub->rate;
  sub->refilled_ms = mono_ms();
  sub->limit = limit;
  pthread_mutex_init(&sub->lock, NULL);
  sub->stream = sl_api_reply_stream(reply, "text/event-stream");
  sl_api_stream_on_close(sub->stream, on_client_gone, sub);
  pthread_mutex_lock(&manager->tap_lock);
  sub->link = entry->taps;
  entry->taps = sub;
  bind(sub, entry->run);
  pthread_mutex_unlock(&manager->tap_lock);
  pthread_rwlock_unlock(&entry->rw);
  sl__entry_release(manager, entry);
  return SL_OK;
}
