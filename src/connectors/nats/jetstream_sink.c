/*
 * jetstream_sink.c - `type: jetstream` with inputs: publishes each event to a JetStream
 * stream and counts it accepted only once the stream answered with a PubAck.
 *
 * The subject is a template (nats_msg.h) and must be captured by a stream; with a static
 * subject, init warns when none is. `msg_id` (a template too, e.g. "{{meta.id}}" or
 * "{{meta.stream}}-{{meta.stream_seq}}") becomes the Nats-Msg-Id header, so the stream
 * drops a message whose id it already stored within its duplicate window (2 minutes by
 * default): replays after a crash and this sink's own retries then store nothing twice.
 * Without msg_id a retried message may be stored twice.
 *
 * Throughput: `write` publishes the whole batch asynchronously (js_PublishMsgAsync), then
 * waits for every PubAck. Messages the stream refused, or that got no PubAck within
 * `timeout` (taken back with js_PublishAsyncGetPendingList), are published again after
 * `backoff` (doubling up to `max_backoff`), once the connection is up, until all are
 * acknowledged (SL_OK: the batch is accepted), `max_retries` is used up (SL_IO), or
 * stop() is called (SL_CLOSED). This is js_PublishAsyncComplete's job done with a wait
 * that stop() can cut short.
 *
 * Bookkeeping: every message of the batch (the "round") has an entry (state and, while
 * this sink owns it, the natsMsg). nats.c's PubAck callback runs on its own thread and
 * finds the entry through a pointer-keyed table; `stopper.lock` guards entries, table
 * and counts, and `stopper.wake` is signalled when the last pending PubAck arrives or
 * stop() is called.
 *
 * Sections: entries - publishing - write - the connector.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/nats/nats_conn.h"
#include "connectors/nats/nats_msg.h"

typedef struct js_sink_config {
  nats_conn_config conn;
  char *subject;
  char *msg_id;
  bool headers;
  uint64_t timeout;
  int64_t max_retries;
} js_sink_config;

typedef enum entry_state {
  ENTRY_NEW,     /* made, not yet handed to nats.c; the sink owns msg */
  ENTRY_PENDING, /* nats.c owns the message until its PubAck (or we take it back) */
  ENTRY_OK,      /* acknowledged; the message is gone */
  ENTRY_FAILED,  /* refused or timed out; the sink owns msg again, to retry */
} entry_state;

typedef struct js_entry {
  natsMsg *msg;      /* while the sink owns the message; NULL otherwise */
  const natsMsg *id; /* the message's address, its key in the table (never dereferenced) */
  entry_state state;
} js_entry;

typedef struct jetstream_sink {
  const sl_node_ctx *node;
  const js_sink_config *config;
  nats_conn conn;
  bool connected;
  jsCtx *js;
  sl_meta_template subject;
  sl_meta_template msg_id;
  bool has_msg_id;
  sl_meta_template_buf rendered, id, scratch;

  /* The batch being written (the round); under stopper.lock. */
  js_entry *entries;
  size_t count, cap;
  size_t pending; /* entries in ENTRY_PENDING */
  /* natsMsg pointer -> entry index; open addressing, capacity a power of two. */
  const natsMsg **slot_keys;
  size_t *slot_values;
  size_t slot_cap;
  char last_error[256]; /* why the latest message failed, for messages */

  nats_stopper stopper;
  nats_log_limit retry_log;
  nats_log_limit skip_log;
} jetstream_sink;

/* ---- entries ----------------------------------------------------------------------- */

static size_t slot_of(const jetstream_sink *sink, const natsMsg *msg) {
  uintptr_t h = (uintptr_t)msg;
  h ^= h >> 17;
  h *= (uintptr_t)0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return (size_t)h & (sink->slot_cap - 1);
}

/* Maps msg to index, replacing a stale mapping for the same address (a message that
 * was acknowledged and freed, whose address malloc handed out again). */
static void table_put(jetstream_sink *sink, const natsMsg *msg, size_t index) {
  size_t at = slot_of(sink, msg);
  while (sink->slot_keys[at] && sink->slot_keys[at] != msg) at = (at + 1) & (sink->slot_cap - 1);
  sink->slot_keys[at] = msg;
  sink->slot_values[at] = index;
}

/* The entry index for msg, or SIZE_MAX. */
static size_t table_get(const jetstream_sink *sink, const natsMsg *msg) {
  if (!sink->slot_cap) return SIZE_MAX;
  for (size_t at = slot_of(sink, msg); sink->slot_keys[at]; at = (at + 1) & (sink->slot_cap - 1))
    if (sink->slot_keys[at] == msg) return sink->slot_values[at];
  return SIZE_MAX;
}

/* Room for `more` entries; the table stays at most half full. Under the lock. */
static void reserve(jetstream_sink *sink, size_t more) {
  size_t need = sink->count + more;
  if (need > sink->cap) {
    size_t cap = sink->cap ? sink->cap : 1024;
    while (cap < need) cap *= 2;
    js_entry *grown = realloc(sink->entries, cap * sizeof *grown);
    if (!grown) abort(); /* host out of memory */
    sink->entries = grown;
    sink->cap = cap;
  }
  if (need * 2 <= sink->slot_cap) return;
  size_t slot_cap = sink->slot_cap ? sink->slot_cap : 2048;
  while (slot_cap < need * 2) slot_cap *= 2;
  free(sink->slot_keys);
  free(sink->slot_values);
  sink->slot_keys = calloc(slot_cap, sizeof *sink->slot_keys);
  sink->slot_values = malloc(slot_cap * sizeof *sink->slot_values);
  if (!sink->slot_keys || !sink->slot_values) abort();
  sink->slot_cap = slot_cap;
  /* Rebuilt from the entries; acknowledged ones (freed) need no mapping. */
  for (size_t i = 0; i < sink->count; i++)
    if (sink->entries[i].state != ENTRY_OK) table_put(sink, sink->entries[i].id, i);
}

/* Ends the round: frees the messages still owned and forgets every entry. Only when no
 * PubAck is pending. Under the lock. */
static void clear_round(jetstream_sink *sink) {
  for (size_t i = 0; i < sink->count; i++) natsMsg_Destroy(sink->entries[i].msg);
  sink->count = 0;
  if (sink->slot_cap) memset(sink->slot_keys, 0, sink->slot_cap * sizeof *sink->slot_keys);
}

/* ---- publishing -------------------------------------------------------------------- */

/* nats.c's thread: a PubAck, or a failure, for one message of the round. */
static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
  jetstream_sink *sink = closure;
  natsMsg *done = msg; /* freed here unless kept for a retry */
  pthread_mutex_lock(&sink->stopper.lock);
  size_t index = table_get(sink, msg);
  if (index != SIZE_MAX && sink->entries[index].state == ENTRY_PENDING) {
    js_entry *entry = &sink->entries[index];
    if (pa) {
      entry->state = ENTRY_OK;
    } else {
      entry->state = ENTRY_FAILED;
      entry->msg = msg;
      done = NULL;
      if (pae && pae->Err == NATS_NO_RESPONDERS)
        snprintf(sink->last_error, sizeof sink->last_error,
                 "no stream answered for subject %s (no stream captures it, or JetStream is "
                 "unavailable)",
                 natsMsg_GetSubject(msg));
      else if (pae && pae->ErrText && *pae->ErrText)
        snprintf(sink->last_error, sizeof sink->last_error,
                 "the stream refused a message: %s (JetStream error %d)", pae->ErrText,
                 (int)pae->ErrCode);
      else
        snprintf(sink->last_error, sizeof sink->last_error, "the stream refused a message: %s",
                 natsStatus_GetText(pae ? pae->Err : NATS_ERR));
    }
    sink->pending--;
    if (sink->pending == 0) pthread_cond_broadcast(&sink->stopper.wake);
  }
  pthread_mutex_unlock(&sink->stopper.lock);
  natsMsg_Destroy(done);
}

/* Statuses a retry cannot fix: the message itself is wrong. */
static bool permanent(natsStatus s) {
  return s == NATS_MAX_PAYLOAD || s == NATS_INVALID_SUBJECT || s == NATS_INVALID_ARG;
}

/* Hands every NEW or FAILED entry to nats.c. NATS_OK, or the first permanent failure
 * (that entry stays FAILED, and so do the ones after it); other failures leave entries
 * FAILED for the next attempt. */
static natsStatus publish_round(jetstream_sink *sink) {
  pthread_mutex_lock(&sink->stopper.lock);
  for (size_t i = 0; i < sink->count; i++) {
    js_entry *entry = &sink->entries[i];
    if (entry->state != ENTRY_NEW && entry->state != ENTRY_FAILED) continue;
    /* The callback may run before this call returns, and writes entry->msg itself on a
     * failure: hand over a copy of the pointer, not the entry's own. */
    natsMsg *msg = entry->msg;
    entry->msg = NULL;
    entry->state = ENTRY_PENDING;
    sink->pending++;
    pthread_mutex_unlock(&sink->stopper.lock);
    natsStatus s = js_PublishMsgAsync(sink->js, &msg, NULL);
    pthread_mutex_lock(&sink->stopper.lock);
    entry = &sink->entries[i];
    if (s != NATS_OK) {
      entry->msg = msg;
      entry->state = ENTRY_FAILED;
      sink->pending--;
      char why[200];
      snprintf(sink->last_error, sizeof sink->last_error, "publishing failed: %s",
               sl__nats_status_text(s, why, sizeof why));
      if (permanent(s)) {
        pthread_mutex_unlock(&sink->stopper.lock);
        return s;
      }
    }
  }
  pthread_mutex_unlock(&sink->stopper.lock);
  return NATS_OK;
}

/* Takes back every message still waiting for a PubAck (they become FAILED), then waits
 * for callbacks already running. */
static void reclaim_pending(jetstream_sink *sink) {
  natsMsgList list = {0};
  if (js_PublishAsyncGetPendingList(&list, sink->js) == NATS_OK) {
    pthread_mutex_lock(&sink->stopper.lock);
    for (int i = 0; i < list.Count; i++) {
      size_t index = table_get(sink, list.Msgs[i]);
      if (index == SIZE_MAX || sink->entries[index].state != ENTRY_PENDING) continue;
      sink->entries[index].msg = list.Msgs[i];
      sink->entries[index].state = ENTRY_FAILED;
      sink->pending--;
      list.Msgs[i] = NULL; /* ours again: natsMsgList_Destroy must not free it */
    }
    snprintf(sink->last_error, sizeof sink->last_error, "no PubAck within %llu ms",
             (unsigned long long)sink->config->timeout);
    pthread_mutex_unlock(&sink->stopper.lock);
    natsMsgList_Destroy(&list);
  }
  /* A PubAck nats.c already took off its list is being handled right now. */
  pthread_mutex_lock(&sink->stopper.lock);
  while (sink->pending > 0) pthread_cond_wait(&sink->stopper.wake, &sink->stopper.lock);
  pthread_mutex_unlock(&sink->stopper.lock);
}

/* Waits until every PubAck of the round arrived, `timeout` passed or stop() was called;
 * then nothing of the round is pending any more (what was late is taken back). */
static void wait_round(jetstream_sink *sink) {
  struct timespec deadline = sl__nats_deadline(sink->config->timeout);
  pthread_mutex_lock(&sink->stopper.lock);
  while (sink->pending > 0 && !atomic_load(&sink->stopper.stopping))
    if (pthread_cond_timedwait(&sink->stopper.wake, &sink->stopper.lock, &deadline) == ETIMEDOUT)
      break;
  bool late = sink->pending > 0;
  pthread_mutex_unlock(&sink->stopper.lock);
  if (late) reclaim_pending(sink);
}

/* ---- write ------------------------------------------------------------------------- */

/* Makes the batch's messages into the round's entries. SL_INVALID (nothing made) when an
 * event cannot become a message: a retry would not change that. */
static sl_status make_round(jetstream_sink *sink, const sl_event_list *batch, sl_error *err) {
  pthread_mutex_lock(&sink->stopper.lock);
  reserve(sink, batch->count);
  pthread_mutex_unlock(&sink->stopper.lock);
  size_t skipped = 0;
  int64_t max_payload = natsConnection_GetMaxPayload(sink->conn.nc);
  const char *id = NULL;
  sl_status st = SL_OK;
  for (size_t i = 0; i < batch->count && st == SL_OK; i++) {
    const sl_event *event = &batch->items[i];
    sl_error why = {{0}};
    st = sl__nats_template_render(&sink->subject, event, &sink->rendered, &why);
    if (st == SL_OK && sink->has_msg_id)
      st = sl__nats_template_render(&sink->msg_id, event, &sink->id, &why);
    if (st != SL_OK) {
      st = sl_error_set(err, SL_INVALID, "jetstream sink: %s", why.message);
      break;
    }
    id = sink->has_msg_id ? sink->id.bytes : NULL;
    size_t size = sl__nats_wire_size(event, sink->config->headers, id);
    if (!sl__nats_subject_valid(sink->rendered.bytes, false))
      st = sl_error_set(err, SL_INVALID,
                        "jetstream sink: subject \"%s\" (from \"%s\") is not a valid subject to "
                        "publish to",
                        sink->rendered.bytes, sink->config->subject);
    else if (id && !*id)
      st = sl_error_set(err, SL_INVALID, "jetstream sink: msg_id \"%s\" came out empty",
                        sink->config->msg_id);
    else if (max_payload > 0 && size > (uint64_t)max_payload)
      st = sl_error_set(err, SL_INVALID,
                        "jetstream sink: an event of %zu bytes (payload and headers) is more than "
                        "the server accepts (max_payload %lld bytes)",
                        size, (long long)max_payload);
    natsMsg *msg = NULL;
    if (st == SL_OK)
      st = sl__nats_msg_from_event(&msg, sink->rendered.bytes, event, sink->config->headers, id,
                                   &sink->scratch, &skipped, err);
    if (st == SL_OK) {
      pthread_mutex_lock(&sink->stopper.lock);
      sink->entries[sink->count] = (js_entry){msg, msg, ENTRY_NEW};
      table_put(sink, msg, sink->count);
      sink->count++;
      pthread_mutex_unlock(&sink->stopper.lock);
    }
  }
  if (skipped)
    sl__nats_log_limited(&sink->skip_log, sink->node, SL_LOG_WARN,
                         "jetstream sink: %zu metadata pairs not sent as headers (a key with ':', "
                         "spaces or control characters, or a value with a line break)",
                         skipped);
  return st;
}

/* Publishes the round and waits for its PubAcks, publishing again what failed, until
 * all are acknowledged, max_retries is used up, or stop(). */
static sl_status confirm_round(jetstream_sink *sink, sl_error *err) {
  const js_sink_config *cfg = sink->config;
  for (unsigned attempt = 1;; attempt++) {
    /* While reconnecting, publishing would only fill nats.c's reconnect buffer with
     * messages this loop may publish again: wait for the connection instead. */
    bool up = sl__nats_conn_up(&sink->conn);
    natsStatus s = up ? publish_round(sink) : NATS_OK;
    wait_round(sink);
    pthread_mutex_lock(&sink->stopper.lock);
    size_t left = 0;
    for (size_t i = 0; i < sink->count; i++) left += sink->entries[i].state != ENTRY_OK;
    if (!up && left)
      snprintf(sink->last_error, sizeof sink->last_error, "not connected to %s",
               sink->conn.shown_url);
    char why[sizeof sink->last_error];
    snprintf(why, sizeof why, "%s", sink->last_error);
    size_t total = sink->count;
    pthread_mutex_unlock(&sink->stopper.lock);
    if (left == 0) return SL_OK;
    if (permanent(s)) return sl_error_set(err, SL_INVALID, "jetstream sink: %s", why);
    if (atomic_load(&sink->stopper.stopping))
      return sl_error_set(err, SL_CLOSED,
                          "jetstream sink: stopped with %zu of %zu messages not acknowledged (%s)",
                          left, total, why);
    if (cfg->max_retries >= 0 && attempt > (uint64_t)cfg->max_retries)
      return sl_error_set(err, SL_IO,
                          "jetstream sink: %zu of %zu messages not acknowledged: %s; gave up "
                          "after %u attempts",
                          left, total, why, attempt);
    uint64_t delay = sl__nats_backoff_ms(&cfg->conn, attempt);
    sl__nats_log_limited(&sink->retry_log, sink->node, SL_LOG_WARN,
                         "jetstream sink: %zu of %zu messages not acknowledged: %s (attempt %u); "
                         "publishing them again in %llu ms",
                         left, total, why, attempt, (unsigned long long)delay);
    if (!sl__nats_stopper_sleep(&sink->stopper, delay))
      return sl_error_set(err, SL_CLOSED,
                          "jetstream sink: stopped with %zu of %zu messages not acknowledged (%s)",
                          left, total, why);
  }
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  jetstream_sink *sink = state;
  if (atomic_load(&sink->stopper.stopping))
    return sl_error_set(err, SL_CLOSED, "jetstream sink: stopped");
  sl_status st = make_round(sink, batch, err);
  if (st == SL_OK) st = confirm_round(sink, err);
  /* Nothing of the round is pending now (wait_round took back what was late). */
  pthread_mutex_lock(&sink->stopper.lock);
  clear_round(sink);
  pthread_mutex_unlock(&sink->stopper.lock);
  return st;
}

/* ---- the connector ----------------------------------------------------------------- */

static void stop(void *state) {
  jetstream_sink *sink = state;
  sl__nats_stopper_stop(&sink->stopper);
}

static void destroy(void *state) {
  jetstream_sink *sink = state;
  if (!sink) return;
  if (sink->js) {
    /* Nothing may call back into this sink any more: take back what nats.c holds. */
    if (sink->pending) reclaim_pending(sink);
    jsCtx_Destroy(sink->js);
  }
  clear_round(sink);
  if (sink->connected) sl__nats_conn_close(&sink->conn, 1000);
  free(sink->entries);
  free(sink->slot_keys);
  free(sink->slot_values);
  sl_meta_template_destroy(&sink->subject);
  sl_meta_template_destroy(&sink->msg_id);
  sl_meta_template_buf_destroy(&sink->rendered);
  sl_meta_template_buf_destroy(&sink->id);
  sl_meta_template_buf_destroy(&sink->scratch);
  sl__nats_stopper_destroy(&sink->stopper);
  sl__nats_log_limit_destroy(&sink->retry_log);
  sl__nats_log_limit_destroy(&sink->skip_log);
  free(sink);
}

/*
 * A static subject should be captured by a stream, or every publish fails (and is
 * retried). Missing, it is a warning rather than an error: a jetstream source of the same
 * pipeline may create the stream when it starts, after the sinks' init.
 */
static sl_status check_stream(jetstream_sink *sink, sl_error *err) {
  jsOptions opts;
  jsOptions_Init(&opts);
  opts.Stream.Info.SubjectsFilter = sink->config->subject;
  jsStreamNamesList *names = NULL;
  jsErrCode code = 0;
  natsStatus s = js_StreamNames(&names, sink->js, &opts, &code);
  int found = names ? names->Count : 0;
  jsStreamNamesList_Destroy(names);
  if (s == NATS_OK && found > 0) return SL_OK;
  if (s == NATS_OK || s == NATS_NOT_FOUND) {
    sl_node_log(sink->node, SL_LOG_WARN,
                "jetstream sink: no stream on %s captures subject %s (yet): publishing fails and "
                "is retried until one does (create one: nats stream add NAME --subjects '%s')",
                sink->conn.shown_url, sink->config->subject, sink->config->subject);
    return SL_OK;
  }
  char why[512];
  sl__nats_status_text(s, why, sizeof why);
  if (s == NATS_NO_RESPONDERS)
    return sl_error_set(err, SL_IO,
                        "JetStream does not answer on %s (is the server running with JetStream "
                        "enabled, nats-server -js?)",
                        sink->conn.shown_url);
  return sl_error_set(err, SL_IO, "cannot list the streams on %s: %s", sink->conn.shown_url, why);
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const js_sink_config *cfg = config;
  sl_status st = sl__nats_conn_check(&cfg->conn, err);
  if (st == SL_OK) st = sl__nats_sink_limits_check(cfg->timeout, cfg->max_retries, err);
  if (st != SL_OK) return st;
  jetstream_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = cfg;
  sl__nats_stopper_init(&sink->stopper);
  sl__nats_log_limit_init(&sink->retry_log);
  sl__nats_log_limit_init(&sink->skip_log);
  st = sl__nats_subject_template_parse(&sink->subject, cfg->subject, err);
  if (st == SL_OK && cfg->msg_id) {
    st = sl__nats_template_parse(&sink->msg_id, "msg_id", cfg->msg_id, err);
    sink->has_msg_id = st == SL_OK;
  }
  if (st != SL_OK) goto fail;
  bool fixed = sl_meta_template_constant(&sink->subject);
  st = sl__nats_conn_open(&sink->conn, node, &cfg->conn, "jetstream sink", err);
  if (st != SL_OK) goto fail;
  sink->connected = true;
  jsOptions opts;
  jsOptions_Init(&opts);
  opts.Wait = (int64_t)cfg->timeout;
  opts.PublishAsync.AckHandler = on_pub_ack;
  opts.PublishAsync.AckHandlerClosure = sink;
  natsStatus s = natsConnection_JetStream(&sink->js, sink->conn.nc, &opts);
  if (s != NATS_OK) {
    char why[512];
    st = sl_error_set(err, SL_IO, "cannot use JetStream: %s",
                      sl__nats_status_text(s, why, sizeof why));
    goto fail;
  }
  if (fixed) st = check_stream(sink, err);
  if (st != SL_OK) goto fail;
  *state = sink;
  return SL_OK;

fail:
  destroy(sink);
  return st;
}

static const sl_conf_field fields[] = {
    {"subject", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(js_sink_config, subject),
     "Subject to publish to, captured by a stream; {{meta.KEY}} takes part of it from each "
     "event's metadata.",
     NULL},
    {"msg_id", SL_CONF_STRING, 0, NULL, offsetof(js_sink_config, msg_id),
     "Template for the Nats-Msg-Id header ({{meta.KEY}}, {{payload_sha256}}) so the stream "
     "stores a replayed event once.",
     NULL},
    {"headers", SL_CONF_BOOL, 0, "true", offsetof(js_sink_config, headers),
     "Send each event's metadata as NATS headers.", NULL},
    {"timeout", SL_CONF_DURATION, 0, "5s", offsetof(js_sink_config, timeout),
     "How long to wait for a message's PubAck before publishing it again.", NULL},
    {"max_retries", SL_CONF_INT, 0, "-1", offsetof(js_sink_config, max_retries),
     "Retries before the batch fails; -1 retries until the pipeline stops.", NULL},
    SL_NATS_CONN_FIELDS(js_sink_config),
    {NULL},
};

const sl_connector sl_jetstream_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "jetstream",
    .kind = SL_NODE_SINK,
    .summary = "Publishes each event to a JetStream stream and waits for its PubAck; "
               "Nats-Msg-Id deduplication.",
    .fields = fields,
    .config_size = sizeof(js_sink_config),
    .init = init,
    .write = write_batch,
    .stop = stop,
    .destroy = destroy,
};
