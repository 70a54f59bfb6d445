/*
 * nats_sink.c - `type: nats` with inputs: publishes each event as a core NATS message.
 *
 * The subject is a template (`orders.{{meta.region}}`, see nats_msg.h); with `headers`
 * (the default) every metadata pair goes along as a header. An event lacking a key the
 * subject uses, or whose subject comes out invalid, fails its whole batch at once (it
 * would fail again on every retry).
 *
 * Delivery: `write` hands the batch's messages to nats.c, then sends a PING and waits for
 * the server's PONG, which proves the server has processed everything published before
 * it; only then is the batch accepted. When the connection is lost or the PONG does not
 * come within `timeout`, it waits `backoff` (doubling up to `max_backoff`), and once
 * connected again publishes the whole batch again and flushes again, until it works,
 * `max_retries` is used up, or stop() is called. Messages the server had received before
 * the failure are then sent twice: at least once, and core NATS has no deduplication. A
 * subscriber that is not connected when a message is published never sees it (core
 * NATS stores nothing).
 *
 * Stopping: stop() (any thread) cuts a backoff wait short and makes a flush in progress
 * give up within FLUSH_SLICE_MS; that batch fails with SL_CLOSED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/nats/nats_conn.h"
#include "connectors/nats/nats_msg.h"

/* Waits for the PONG in slices so stop() is noticed between them. */
#define FLUSH_SLICE_MS 200

typedef struct nats_sink_config {
  nats_conn_config conn;
  char *subject;
  bool headers;
  uint64_t timeout;
  int64_t max_retries;
} nats_sink_config;

typedef struct nats_sink {
  const sl_node_ctx *node;
  const nats_sink_config *config;
  nats_conn conn;
  bool connected;
  sl_meta_template subject;
  sl_meta_template_buf rendered; /* one event's subject */
  sl_meta_template_buf scratch;  /* header key and value, for nats.c */
  /* The batch being written, in order; the first `published` were handed to nats.c
   * without an error (since the last retry). */
  natsMsg **held;
  size_t held_count, held_cap, published;
  nats_stopper stopper;
  nats_log_limit retry_log;
  nats_log_limit skip_log;
} nats_sink;

static void release_held(nats_sink *sink) {
  for (size_t i = 0; i < sink->held_count; i++) natsMsg_Destroy(sink->held[i]);
  sink->held_count = 0;
  sink->published = 0;
}

static void hold(nats_sink *sink, natsMsg *msg) {
  if (sink->held_count == sink->held_cap) {
    size_t cap = sink->held_cap ? sink->held_cap * 2 : 1024;
    natsMsg **grown = realloc(sink->held, cap * sizeof *grown);
    if (!grown) abort(); /* host out of memory */
    sink->held = grown;
    sink->held_cap = cap;
  }
  sink->held[sink->held_count++] = msg;
}

/* Hands the held messages not yet published to nats.c; stops at the first refusal. */
static natsStatus publish_pending(nats_sink *sink) {
  natsStatus s = NATS_OK;
  while (sink->published < sink->held_count && s == NATS_OK) {
    s = natsConnection_PublishMsg(sink->conn.nc, sink->held[sink->published]);
    if (s == NATS_OK) sink->published++;
  }
  return s;
}

/* Makes the batch's messages (held). SL_INVALID (nothing held) when an event cannot
 * become a message: a retry would not change that. */
static sl_status make_messages(nats_sink *sink, const sl_event_list *batch, sl_error *err) {
  size_t first = sink->held_count;
  size_t skipped = 0;
  int64_t max_payload = natsConnection_GetMaxPayload(sink->conn.nc);
  sl_status st = SL_OK;
  for (size_t i = 0; i < batch->count && st == SL_OK; i++) {
    const sl_event *event = &batch->items[i];
    sl_error why = {{0}};
    if (sl__nats_template_render(&sink->subject, event, &sink->rendered, &why) != SL_OK) {
      st = sl_error_set(err, SL_INVALID, "nats sink: %s", why.message);
      break;
    }
    if (!sl__nats_subject_valid(sink->rendered.bytes, false)) {
      st = sl_error_set(err, SL_INVALID,
                        "nats sink: subject \"%s\" (from \"%s\") is not a valid subject to "
                        "publish to",
                        sink->rendered.bytes, sink->config->subject);
      break;
    }
    size_t size = sl__nats_wire_size(event, sink->config->headers, NULL);
    if (max_payload > 0 && size > (uint64_t)max_payload) {
      st = sl_error_set(err, SL_INVALID,
                        "nats sink: an event of %zu bytes (payload and headers) is more than the "
                        "server accepts (max_payload %lld bytes)",
                        size, (long long)max_payload);
      break;
    }
    natsMsg *msg = NULL;
    st = sl__nats_msg_from_event(&msg, sink->rendered.bytes, event, sink->config->headers, NULL,
                                 &sink->scratch, &skipped, err);
    if (st == SL_OK) hold(sink, msg);
  }
  if (st != SL_OK) {
    for (size_t i = first; i < sink->held_count; i++) natsMsg_Destroy(sink->held[i]);
    sink->held_count = first;
    return st;
  }
  if (skipped)
    sl__nats_log_limited(&sink->skip_log, sink->node, SL_LOG_WARN,
                         "nats sink: %zu metadata pairs not sent as headers (a key with ':', "
                         "spaces or control characters, or a value with a line break)",
                         skipped);
  return SL_OK;
}

/* One attempt: publish what is not yet, then wait for the PONG. */
static natsStatus try_flush(nats_sink *sink) {
  natsStatus s = publish_pending(sink);
  uint64_t deadline = sl__nats_now_ms() + sink->config->timeout;
  while (s == NATS_OK) {
    uint64_t now = sl__nats_now_ms();
    if (now >= deadline) return NATS_TIMEOUT;
    uint64_t slice = deadline - now < FLUSH_SLICE_MS ? deadline - now : FLUSH_SLICE_MS;
    s = natsConnection_FlushTimeout(sink->conn.nc, (int64_t)slice);
    if (s == NATS_OK) return NATS_OK;
    if (s == NATS_TIMEOUT && !atomic_load(&sink->stopper.stopping)) s = NATS_OK;
  }
  return s;
}

/* Publishes the held messages and waits for the server to confirm them, publishing them
 * all again after a failure, until it works, max_retries is used up, or stop(). */
static sl_status confirm(nats_sink *sink, sl_error *err) {
  const nats_sink_config *cfg = sink->config;
  char why[512];
  for (unsigned attempt = 1;; attempt++) {
    /* While reconnecting, publishing would only fill nats.c's reconnect buffer with
     * messages this loop may publish again: wait for the connection instead. */
    natsStatus s = sl__nats_conn_up(&sink->conn) ? try_flush(sink) : NATS_CONNECTION_DISCONNECTED;
    if (s == NATS_OK) return SL_OK;
    if (s == NATS_CONNECTION_DISCONNECTED)
      snprintf(why, sizeof why, "not connected to %s", sink->conn.shown_url);
    else if (s == NATS_TIMEOUT)
      snprintf(why, sizeof why, "the server did not confirm within %llu ms",
               (unsigned long long)cfg->timeout);
    else
      sl__nats_status_text(s, why, sizeof why);
    if (atomic_load(&sink->stopper.stopping))
      return sl_error_set(err, SL_CLOSED, "nats sink: stopped while publishing (%s)", why);
    if (cfg->max_retries >= 0 && attempt > (uint64_t)cfg->max_retries)
      return sl_error_set(err, SL_IO,
                          "nats sink: publishing %zu messages failed: %s; gave up after %u "
                          "attempts",
                          sink->held_count, why, attempt);
    uint64_t delay = sl__nats_backoff_ms(&cfg->conn, attempt);
    sl__nats_log_limited(&sink->retry_log, sink->node, SL_LOG_WARN,
                         "nats sink: publishing %zu messages failed: %s (attempt %u); publishing "
                         "them again in %llu ms",
                         sink->held_count, why, attempt, (unsigned long long)delay);
    if (!sl__nats_stopper_sleep(&sink->stopper, delay))
      return sl_error_set(err, SL_CLOSED, "nats sink: stopped while publishing (%s)", why);
    sink->published = 0; /* which ones arrived is unknown: all of them go again */
  }
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  nats_sink *sink = state;
  if (atomic_load(&sink->stopper.stopping))
    return sl_error_set(err, SL_CLOSED, "nats sink: stopped");
  sl_status st = make_messages(sink, batch, err);
  if (st == SL_OK) st = confirm(sink, err);
  release_held(sink);
  return st;
}

/* ---- the connector ----------------------------------------------------------------- */

static void stop(void *state) {
  nats_sink *sink = state;
  sl__nats_stopper_stop(&sink->stopper);
}

static void destroy(void *state) {
  nats_sink *sink = state;
  if (!sink) return;
  release_held(sink);
  free(sink->held);
  if (sink->connected) sl__nats_conn_close(&sink->conn, 1000);
  sl_meta_template_destroy(&sink->subject);
  sl_meta_template_buf_destroy(&sink->rendered);
  sl_meta_template_buf_destroy(&sink->scratch);
  sl__nats_stopper_destroy(&sink->stopper);
  sl__nats_log_limit_destroy(&sink->retry_log);
  sl__nats_log_limit_destroy(&sink->skip_log);
  free(sink);
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const nats_sink_config *cfg = config;
  sl_status st = sl__nats_conn_check(&cfg->conn, err);
  if (st == SL_OK) st = sl__nats_sink_limits_check(cfg->timeout, cfg->max_retries, err);
  if (st != SL_OK) return st;
  nats_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = cfg;
  sl__nats_stopper_init(&sink->stopper);
  sl__nats_log_limit_init(&sink->retry_log);
  sl__nats_log_limit_init(&sink->skip_log);
  st = sl__nats_subject_template_parse(&sink->subject, cfg->subject, err);
  if (st != SL_OK) goto fail;
  st = sl__nats_conn_open(&sink->conn, node, &cfg->conn, "nats sink", err);
  if (st != SL_OK) goto fail;
  sink->connected = true;
  *state = sink;
  return SL_OK;

fail:
  destroy(sink);
  return st;
}

static const sl_conf_field fields[] = {
    {"subject", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(nats_sink_config, subject),
     "Subject to publish to; {{meta.KEY}} takes part of it from each event's metadata "
     "(orders.{{meta.region}}).",
     NULL},
    {"headers", SL_CONF_BOOL, 0, "true", offsetof(nats_sink_config, headers),
     "Send each event's metadata as NATS headers.", NULL},
    {"timeout", SL_CONF_DURATION, 0, "5s", offsetof(nats_sink_config, timeout),
     "How long to wait for the server to confirm a batch before publishing it again.", NULL},
    {"max_retries", SL_CONF_INT, 0, "-1", offsetof(nats_sink_config, max_retries),
     "Retries before the batch fails; -1 retries until the pipeline stops.", NULL},
    SL_NATS_CONN_FIELDS(nats_sink_config),
    {NULL},
};

const sl_connector sl_nats_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "nats",
    .kind = SL_NODE_SINK,
    .summary = "Publishes each event as a core NATS message, metadata as headers.",
    .fields = fields,
    .config_size = sizeof(nats_sink_config),
    .init = init,
    .write = write_batch,
    .stop = stop,
    .destroy = destroy,
};
