/*
 * nats_source.c - `type: nats` without inputs: core NATS messages on a subject (wildcards
 * allowed), optionally in a queue group, become events.
 *
 * Each message becomes one event: its payload, one metadata pair per header value, and
 * `subject` (the subject it was published to). Core NATS keeps nothing: a message is
 * delivered at most once, and it is lost if the host dies, the pipeline fails to deliver
 * it, or the connection is down when it is published. Batches carry no acknowledgement.
 *
 * Threads: nats.c's reader thread queues messages on a synchronous subscription (up to
 * `max_pending`; beyond that nats.c drops them and reports a slow consumer, which is
 * logged). The source's own thread takes them in batches of up to the pipeline's
 * batch_size and emits them; sl_source_emit blocking on credits is the backpressure.
 *
 * Stopping: stop() sets a flag; the thread notices within POLL_MS, drains the
 * subscription (the server stops sending, what is already here is still emitted: in a
 * queue group the other members take over), and ends.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/nats/nats_conn.h"
#include "connectors/nats/nats_msg.h"

/* How often the thread looks at the stop flag while no message comes. */
#define POLL_MS 100

/* How long a stopping source keeps emitting what the drained subscription still holds. */
#define DRAIN_MS 2000

typedef struct nats_source_config {
  nats_conn_config conn;
  char *subject;
  char *queue;
  int64_t max_pending;
} nats_source_config;

typedef struct nats_source {
  const sl_node_ctx *node;
  const nats_source_config *config;
  sl_source_port *port;
  nats_conn conn;
  bool connected;
  natsSubscription *sub;
  pthread_t thread;
  bool thread_started;
  atomic_bool stopping;
  nats_log_limit failures; /* repeated receive errors */
} nats_source;

/* Appends `msg` to *batch (made when NULL) and destroys it. */
static void add_message(nats_source *src, sl_event_list **batch, natsMsg *msg) {
  if (!*batch) {
    *batch = malloc(sizeof **batch);
    if (!*batch) abort(); /* host out of memory */
    sl_event_list_init(*batch);
  }
  const char *subject = natsMsg_GetSubject(msg);
  sl_meta extra = sl__nats_meta("subject", subject, strlen(subject));
  if (sl__nats_event_from_msg(*batch, msg, &extra, 1) != SL_OK) abort(); /* out of memory */
  natsMsg_Destroy(msg);
}

/* Emits *batch if it holds anything; false when the pipeline refuses more. */
static bool emit(nats_source *src, sl_event_list **batch) {
  if (!*batch || (*batch)->count == 0) return true;
  return sl_source_emit(src->port, batch, NULL, NULL) == SL_OK;
}

/* Takes the messages already waiting, up to `room`, without waiting for more. */
static void take_waiting(nats_source *src, sl_event_list **batch, size_t room) {
  natsMsg *msg = NULL;
  while ((*batch)->count < room && natsSubscription_NextMsg(&msg, src->sub, 0) == NATS_OK)
    add_message(src, batch, msg);
}

/* After stop: the server stops sending; what is already here is emitted. */
static void drain(nats_source *src, size_t batch_size) {
  natsStatus s = natsSubscription_Drain(src->sub);
  if (s != NATS_OK) return;
  uint64_t deadline = sl__nats_now_ms() + DRAIN_MS;
  sl_event_list *batch = NULL;
  while (sl__nats_now_ms() < deadline) {
    natsMsg *msg = NULL;
    s = natsSubscription_NextMsg(&msg, src->sub, POLL_MS);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK && s != NATS_SLOW_CONSUMER) break; /* drained: the subscription closed */
    if (s != NATS_OK) continue;
    add_message(src, &batch, msg);
    take_waiting(src, &batch, batch_size);
    if (!emit(src, &batch)) break;
  }
  if (batch) {
    sl_event_list_destroy(batch);
    free(batch);
  }
}

static void *run(void *arg) {
  nats_source *src = arg;
  size_t batch_size = sl_source_batch_size(src->port);
  if (batch_size == 0) batch_size = 1;
  sl_event_list *batch = NULL;
  bool open = true;
  while (open && !atomic_load(&src->stopping)) {
    natsMsg *msg = NULL;
    natsStatus s = natsSubscription_NextMsg(&msg, src->sub, POLL_MS);
    if (s == NATS_TIMEOUT) continue;
    if (s == NATS_SLOW_CONSUMER) {
      int64_t dropped = 0;
      natsSubscription_GetDropped(src->sub, &dropped);
      sl__nats_log_limited(&src->failures, src->node, SL_LOG_WARN,
                           "nats source: %lld messages on %s dropped so far: more arrived than "
                           "max_pending (%lld) while the pipeline was busy",
                           (long long)dropped, src->config->subject,
                           (long long)src->config->max_pending);
      continue;
    }
    if (s != NATS_OK) {
      char why[512];
      sl__nats_status_text(s, why, sizeof why);
      sl_node_log(src->node, SL_LOG_ERROR, "nats source: receiving on %s failed: %s",
                  src->config->subject, why);
      break;
    }
    add_message(src, &batch, msg);
    take_waiting(src, &batch, batch_size);
    open = emit(src, &batch);
  }
  if (open) drain(src, batch_size);
  if (batch) {
    sl_event_list_destroy(batch);
    free(batch);
  }
  sl_source_end(src->port);
  return NULL;
}

/* ---- the connector ----------------------------------------------------------------- */

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const nats_source_config *cfg = config;
  sl_status st = sl__nats_conn_check(&cfg->conn, err);
  if (st != SL_OK) return st;
  if (!sl__nats_subject_valid(cfg->subject, true))
    return sl_error_set(err, SL_CONFIG,
                        "subject: \"%s\" is not a NATS subject (tokens separated by dots, no "
                        "spaces; * matches one token, > the rest)",
                        cfg->subject ? cfg->subject : "");
  if (cfg->queue && (!*cfg->queue || strpbrk(cfg->queue, " \t\r\n")))
    return sl_error_set(err, SL_CONFIG, "queue: \"%s\" must be a non-empty name without spaces",
                        cfg->queue);
  if (cfg->max_pending < 1)
    return sl_error_set(err, SL_CONFIG, "max_pending: must be at least 1, got %lld",
                        (long long)cfg->max_pending);
  nats_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  atomic_init(&src->stopping, false);
  sl__nats_log_limit_init(&src->failures);
  *state = src;
  return SL_OK;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  nats_source *src = state;
  const nats_source_config *cfg = src->config;
  src->port = port;
  sl_status st = sl__nats_conn_open(&src->conn, src->node, &cfg->conn, "nats source", err);
  if (st != SL_OK) return st;
  src->connected = true;
  natsStatus s = cfg->queue ? natsConnection_QueueSubscribeSync(&src->sub, src->conn.nc,
                                                                cfg->subject, cfg->queue)
                            : natsConnection_SubscribeSync(&src->sub, src->conn.nc, cfg->subject);
  if (s == NATS_OK)
    s = natsSubscription_SetPendingLimits(
        src->sub, (int)(cfg->max_pending > INT32_MAX ? INT32_MAX : cfg->max_pending), -1);
  /* A round trip, so the server knows the subscription before the node counts as started. */
  if (s == NATS_OK) s = natsConnection_FlushTimeout(src->conn.nc, 5000);
  if (s != NATS_OK) {
    char why[512];
    return sl_error_set(err, SL_IO, "cannot subscribe to %s on %s: %s", cfg->subject,
                        src->conn.shown_url, sl__nats_status_text(s, why, sizeof why));
  }
  if (cfg->queue)
    sl_node_log(src->node, SL_LOG_INFO, "nats source: subscribed to %s in queue group %s on %s",
                cfg->subject, cfg->queue, src->conn.shown_url);
  else
    sl_node_log(src->node, SL_LOG_INFO, "nats source: subscribed to %s on %s", cfg->subject,
                src->conn.shown_url);
  int rc = pthread_create(&src->thread, NULL, run, src);
  if (rc != 0) return sl_error_set(err, SL_IO, "cannot start its thread: %s", strerror(rc));
  src->thread_started = true;
  return SL_OK;
}

static void stop(void *state) {
  nats_source *src = state;
  atomic_store(&src->stopping, true);
}

static void destroy(void *state) {
  nats_source *src = state;
  atomic_store(&src->stopping, true);
  if (src->thread_started) pthread_join(src->thread, NULL);
  natsSubscription_Destroy(src->sub);
  if (src->connected) sl__nats_conn_close(&src->conn, 0);
  sl__nats_log_limit_destroy(&src->failures);
  free(src);
}

static const sl_conf_field fields[] = {
    {"subject", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(nats_source_config, subject),
     "Subject to subscribe to; * matches one token and > the rest (orders.>).", NULL},
    {"queue", SL_CONF_STRING, 0, NULL, offsetof(nats_source_config, queue),
     "Queue group: subscribers in the same group share the messages, each going to one of them.",
     NULL},
    {"max_pending", SL_CONF_INT, 0, "65536", offsetof(nats_source_config, max_pending),
     "Messages the client holds while the pipeline is busy; beyond that NATS drops them.", NULL},
    SL_NATS_CONN_FIELDS(nats_source_config),
    {NULL},
};

const sl_connector sl_nats_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "nats",
    .kind = SL_NODE_SOURCE,
    .summary = "Core NATS messages on a subject (optionally in a queue group); at most once.",
    .fields = fields,
    .config_size = sizeof(nats_source_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
    .shareable = true,
};
