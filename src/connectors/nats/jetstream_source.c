/*
 * jetstream_source.c - `type: jetstream` without inputs: reads a JetStream stream
 * through a durable pull consumer, and acknowledges each message only once every sink
 * downstream accepted what was made of it.
 *
 * Events: the payload; one metadata pair per header value; `subject`, `stream`,
 * `stream_seq` (the message's sequence in the stream) and `deliveries` (1 the first time
 * the consumer hands it out, 2 on the first redelivery...).
 *
 * Setup (start): the stream must exist, unless `create_stream` lists the subjects to
 * create it with; a missing stream is a configuration error naming it. The durable
 * consumer (`durable`, by default sluice_<pipeline>_<node>) is created when missing:
 * pull, ack policy explicit, `ack_wait`, `max_ack_pending`, filter `subject`, start at
 * `deliver`; an existing one must be a pull consumer with explicit acks. The server's
 * own MaxDeliver is left unlimited: this source counts deliveries itself (below).
 *
 * Threads:
 *   fetcher  natsSubscription_Fetch of up to batch_size messages (waiting up to
 *            FETCH_WAIT_MS), one event batch of them, sl_source_emit: it blocks while
 *            the pipeline is out of credits, so no more is fetched then. Also emits the
 *            batches the acker queued for the errors output.
 *   acker    takes the batches whose fate is known (on_ack only queues them and wakes
 *            it) and settles each message:
 *              delivered              natsMsg_Ack (natsMsg_Term for the errors output)
 *              failed, deliveries < max_deliver
 *                                     natsMsg_NakWithDelay: backoff * 2^(deliveries-1),
 *                                     capped at max_backoff
 *              failed, deliveries >= max_deliver
 *                                     a batch for ID.errors (sl_source_emit_errors) with
 *                                     an `error` pair; the message is terminated once
 *                                     that batch is delivered, or NAKed if it fails
 *            and every ack_wait/2 tells the server that messages still in the pipeline
 *            are in progress, so a slow sink does not cause redeliveries.
 *   A message that arrives with more than max_deliver deliveries (the host died while
 *   it was in flight, again and again) goes to ID.errors at once.
 *
 * Delivery is at least once: a message is acknowledged after delivery, so if the host
 * dies first, the server delivers it again after ack_wait. Acks are fire-and-forget: one
 * lost with the connection means one more delivery.
 *
 * Stopping: stop() sets the flag; the fetcher finishes its fetch (at most FETCH_WAIT_MS),
 * emits what it holds, NAKs the errors batches not yet emitted and ends the source. The
 * acker keeps settling acknowledgements until destroy(), which NAKs (without delay) what
 * never got one, flushes and closes.
 *
 * Sections: tickets - events - the acker - setup - the fetcher - the connector.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/nats/nats_conn.h"
#include "connectors/nats/nats_msg.h"

/* How long one fetch waits for the first message; also how soon the fetcher sees stop. */
#define FETCH_WAIT_MS 500

/* While fetches keep coming back empty, how often to check that the consumer exists. */
#define QUIET_CHECK_MS 5000

/* How long destroy waits for acks and NAKs to reach the server. */
#define CLOSE_FLUSH_MS 2000

typedef struct js_source_config {
  nats_conn_config conn;
  char *stream;
  char *durable;
  char *subject;
  char *deliver;
  uint64_t ack_wait;
  int64_t max_deliver;
  int64_t max_ack_pending;
  sl_conf_list create_stream; /* subjects; empty: a missing stream is an error */
} js_source_config;

typedef struct jetstream_source jetstream_source;

/*
 * One emitted batch's messages, kept until its acknowledgement says what to do with
 * them. Once a ticket is registered (in `outstanding`), only the acker touches its
 * messages and only the acker (or destroy, after joining it) frees it.
 */
typedef struct js_ticket {
  jetstream_source *src;
  struct js_ticket *prev, *next; /* in `outstanding` while its fate is unknown */
  struct js_ticket *queue_next;  /* in the done queue, or the errors queue */
  natsMsg **msgs;
  uint64_t *deliveries;
  size_t count;
  bool errors;          /* emitted (or to be emitted) on ID.errors */
  sl_status status;     /* from on_ack */
  uint64_t touched_ms;  /* fetched, or last told "in progress" */
  sl_event_list *batch; /* an errors batch the fetcher is still to emit */
} js_ticket;

struct jetstream_source {
  const sl_node_ctx *node;
  const js_source_config *config;
  sl_source_port *port;
  char *durable;
  nats_conn conn;
  bool connected;
  jsCtx *js;
  natsSubscription *sub;
  /* Subscriptions replaced after the consumer disappeared: messages from them may still
   * be outstanding and need them to be acknowledged, so they are freed last. */
  natsSubscription **retired;
  size_t retired_count;

  pthread_t fetcher, acker;
  bool fetcher_started, acker_started;
  nats_stopper stopper; /* stop(): the fetcher ends */

  /* Shared between the fetcher, the acker and on_ack. */
  pthread_mutex_t lock;
  pthread_cond_t acker_wake; /* CLOCK_MONOTONIC */
  js_ticket outstanding;     /* list head */
  js_ticket *done_head, *done_tail;
  js_ticket *errors_head, *errors_tail;
  bool ended;         /* the fetcher ended the source: no more errors batches */
  bool shutting_down; /* destroy: the acker finishes the done queue and leaves */

  nats_log_limit fetch_log;
  nats_log_limit ack_log;
};

/* ---- tickets ----------------------------------------------------------------------- */

static js_ticket *ticket_new(jetstream_source *src, size_t capacity, bool errors) {
  js_ticket *t = calloc(1, sizeof *t);
  if (!t) abort(); /* host out of memory */
  t->src = src;
  t->errors = errors;
  t->msgs = malloc((capacity ? capacity : 1) * sizeof *t->msgs);
  t->deliveries = malloc((capacity ? capacity : 1) * sizeof *t->deliveries);
  if (!t->msgs || !t->deliveries) abort();
  return t;
}

static void ticket_free(js_ticket *t) {
  for (size_t i = 0; i < t->count; i++) natsMsg_Destroy(t->msgs[i]);
  if (t->batch) {
    sl_event_list_destroy(t->batch);
    free(t->batch);
  }
  free(t->msgs);
  free(t->deliveries);
  free(t);
}

/* Under the lock. */
static void outstanding_add(jetstream_source *src, js_ticket *t) {
  t->touched_ms = sl__nats_now_ms();
  t->next = src->outstanding.next;
  t->prev = &src->outstanding;
  src->outstanding.next->prev = t;
  src->outstanding.next = t;
}

/* Under the lock. */
static void outstanding_remove(js_ticket *t) {
  t->prev->next = t->next;
  t->next->prev = t->prev;
  t->prev = t->next = NULL;
}

/* Under the lock: the ticket's fate is known; the acker settles it. */
static void queue_done(jetstream_source *src, js_ticket *t, sl_status status) {
  if (t->prev) outstanding_remove(t);
  t->status = status;
  t->queue_next = NULL;
  if (src->done_tail)
    src->done_tail->queue_next = t;
  else
    src->done_head = t;
  src->done_tail = t;
  pthread_cond_signal(&src->acker_wake);
}

/* A runtime thread: every sink accepted the batch (SL_OK), or one failed. */
static void on_ack(void *cookie, sl_status delivered) {
  js_ticket *t = cookie;
  jetstream_source *src = t->src;
  pthread_mutex_lock(&src->lock);
  queue_done(src, t, delivered);
  pthread_mutex_unlock(&src->lock);
}

/* ---- events ------------------------------------------------------------------------ */

/* What a JetStream message's reply subject says about its delivery. */
typedef struct js_delivery {
  const char *stream; /* not NUL-terminated: stream_len bytes */
  size_t stream_len;
  uint64_t deliveries;
  uint64_t seq; /* in the stream */
} js_delivery;

static bool parse_number(const char *token, size_t len, uint64_t *out) {
  if (len == 0 || len > 19) return false;
  uint64_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (token[i] < '0' || token[i] > '9') return false;
    n = n * 10 + (uint64_t)(token[i] - '0');
  }
  *out = n;
  return true;
}

/*
 * Reads the delivery from the message's reply subject without allocating (this runs for
 * every message; natsMsg_GetMetaData copies strings). The two forms the server uses:
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
 *   $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>... (12)
 * Anything else: the configured stream, a first delivery, sequence 0.
 */
static js_delivery delivery_of(const jetstream_source *src, natsMsg *msg) {
  js_delivery d = {src->config->stream, strlen(src->config->stream), 1, 0};
  const char *reply = natsMsg_GetReply(msg);
  if (!reply || strncmp(reply, "$JS.ACK.", 8) != 0) return d;
  const char *tokens[13];
  size_t lens[13], count = 0;
  for (const char *at = reply + 8; count < 13;) {
    const char *dot = strchr(at, '.');
    tokens[count] = at;
    lens[count++] = dot ? (size_t)(dot - at) : strlen(at);
    if (!dot) break;
    at = dot + 1;
  }
  size_t first; /* index of <stream> */
  if (count == 7)
    first = 0;
  else if (count >= 9 && count <= 10)
    first = 2;
  else
    return d;
  js_delivery parsed = {tokens[first], lens[first], 0, 0};
  if (!parse_number(tokens[first + 2], lens[first + 2], &parsed.deliveries) ||
      !parse_number(tokens[first + 3], lens[first + 3], &parsed.seq) || parsed.stream_len == 0)
    return d;
  return parsed;
}

/* Appends the event for `msg` (with an `error` pair when `error` is not NULL). */
static void add_event(sl_event_list *batch, natsMsg *msg, const js_delivery *d, const char *error) {
  char seq_text[24], deliveries_text[24];
  snprintf(seq_text, sizeof seq_text, "%" PRIu64, d->seq);
  snprintf(deliveries_text, sizeof deliveries_text, "%" PRIu64, d->deliveries);
  const char *subject = natsMsg_GetSubject(msg);
  sl_meta extra[5] = {
      sl__nats_meta("subject", subject, strlen(subject)),
      {{(const uint8_t *)"stream", 6}, {(const uint8_t *)d->stream, d->stream_len}},
      sl__nats_meta("stream_seq", seq_text, strlen(seq_text)),
      sl__nats_meta("deliveries", deliveries_text, strlen(deliveries_text)),
      sl__nats_meta("error", error ? error : "", error ? strlen(error) : 0),
  };
  if (sl__nats_event_from_msg(batch, msg, extra, error ? 5 : 4) != SL_OK)
    abort(); /* host out of memory */
}

static sl_event_list *batch_new(void) {
  sl_event_list *batch = malloc(sizeof *batch);
  if (!batch) abort(); /* host out of memory */
  sl_event_list_init(batch);
  return batch;
}

/* ---- the acker --------------------------------------------------------------------- */

static void nak_all(jetstream_source *src, js_ticket *t, bool delayed) {
  for (size_t i = 0; i < t->count; i++) {
    int64_t delay =
        delayed ? (int64_t)sl__nats_backoff_ms(&src->config->conn, (unsigned)t->deliveries[i]) : 0;
    natsStatus s = natsMsg_NakWithDelay(t->msgs[i], delay, NULL);
    if (s != NATS_OK) {
      char why[256];
      sl__nats_log_limited(&src->ack_log, src->node, SL_LOG_WARN,
                           "jetstream source: cannot NAK a message (%s); the server redelivers "
                           "it after ack_wait",
                           sl__nats_status_text(s, why, sizeof why));
    }
  }
}

static void ack_all(jetstream_source *src, js_ticket *t) {
  for (size_t i = 0; i < t->count; i++) {
    natsStatus s = t->errors ? natsMsg_Term(t->msgs[i], NULL) : natsMsg_Ack(t->msgs[i], NULL);
    if (s != NATS_OK) {
      char why[256];
      sl__nats_log_limited(&src->ack_log, src->node, SL_LOG_WARN,
                           "jetstream source: cannot acknowledge a delivered message (%s); the "
                           "server will deliver it again after ack_wait",
                           sl__nats_status_text(s, why, sizeof why));
    }
  }
}

/*
 * A normal batch failed: messages with deliveries to spare are NAKed with a delay; the
 * others move to an errors ticket the fetcher emits (or, once the source ended, are
 * NAKed too and come back to the errors output on their next delivery).
 */
static void settle_failure(jetstream_source *src, js_ticket *t) {
  const js_source_config *cfg = src->config;
  js_ticket *errors = NULL;
  for (size_t i = 0; i < t->count; i++) {
    natsMsg *msg = t->msgs[i];
    if (t->status != SL_CLOSED && t->deliveries[i] >= (uint64_t)cfg->max_deliver) {
      if (!errors) {
        errors = ticket_new(src, t->count, true);
        errors->batch = batch_new();
      }
      char why[320];
      snprintf(why, sizeof why,
               "not delivered after %llu attempts (max_deliver %lld); the last one failed: %s",
               (unsigned long long)t->deliveries[i], (long long)cfg->max_deliver,
               sl_status_str(t->status));
      js_delivery d = delivery_of(src, msg);
      add_event(errors->batch, msg, &d, why);
      errors->deliveries[errors->count] = t->deliveries[i];
      errors->msgs[errors->count++] = msg;
      t->msgs[i] = NULL;
      continue;
    }
    /* SL_CLOSED: the pipeline stopped; another instance may take the message at once. */
    int64_t delay = t->status == SL_CLOSED
                        ? 0
                        : (int64_t)sl__nats_backoff_ms(&cfg->conn, (unsigned)t->deliveries[i]);
    natsStatus s = natsMsg_NakWithDelay(msg, delay, NULL);
    if (s != NATS_OK) {
      char why[256];
      sl__nats_log_limited(&src->ack_log, src->node, SL_LOG_WARN,
                           "jetstream source: cannot NAK a message (%s); the server redelivers "
                           "it after ack_wait",
                           sl__nats_status_text(s, why, sizeof why));
    }
  }
  if (!errors) return;
  pthread_mutex_lock(&src->lock);
  bool ended = src->ended;
  if (!ended) {
    outstanding_add(src, errors);
    errors->queue_next = NULL;
    if (src->errors_tail)
      src->errors_tail->queue_next = errors;
    else
      src->errors_head = errors;
    src->errors_tail = errors;
  }
  pthread_mutex_unlock(&src->lock);
  if (ended) {
    nak_all(src, errors, true);
    ticket_free(errors);
  }
}

static void settle(jetstream_source *src, js_ticket *t) {
  if (t->status == SL_OK)
    ack_all(src, t);
  else if (t->errors)
    nak_all(src, t, t->status != SL_CLOSED);
  else
    settle_failure(src, t);
  ticket_free(t);
}

/* Tells the server that messages held longer than ack_wait/2 are still being worked on. */
static void refresh_in_progress(jetstream_source *src) {
  uint64_t now = sl__nats_now_ms(), half = src->config->ack_wait / 2;
  js_ticket **due = NULL;
  size_t count = 0, cap = 0;
  pthread_mutex_lock(&src->lock);
  for (js_ticket *t = src->outstanding.next; t != &src->outstanding; t = t->next) {
    if (now - t->touched_ms < half) continue;
    if (count == cap) {
      cap = cap ? cap * 2 : 16;
      js_ticket **grown = realloc(due, cap * sizeof *grown);
      if (!grown) abort(); /* host out of memory */
      due = grown;
    }
    t->touched_ms = now;
    due[count++] = t;
  }
  pthread_mutex_unlock(&src->lock);
  /* Only this thread frees tickets, so those listed stay valid although their acks may
   * arrive meanwhile (they wait in the done queue). */
  for (size_t i = 0; i < count; i++)
    for (size_t m = 0; m < due[i]->count; m++) natsMsg_InProgress(due[i]->msgs[m], NULL);
  free(due);
}

static void *run_acker(void *arg) {
  jetstream_source *src = arg;
  /* Often enough that a ticket is refreshed well before ack_wait runs out. */
  uint64_t interval = src->config->ack_wait / 4 ? src->config->ack_wait / 4 : 1;
  if (interval > 1000) interval = 1000;
  uint64_t refreshed = sl__nats_now_ms();
  pthread_mutex_lock(&src->lock);
  for (;;) {
    if (!src->done_head && !src->shutting_down) {
      struct timespec deadline = sl__nats_deadline(interval);
      pthread_cond_timedwait(&src->acker_wake, &src->lock, &deadline);
    }
    js_ticket *t = src->done_head;
    src->done_head = src->done_tail = NULL;
    if (!t && src->shutting_down) break;
    pthread_mutex_unlock(&src->lock);
    while (t) {
      js_ticket *next = t->queue_next;
      settle(src, t);
      t = next;
    }
    /* Also while acknowledgements keep the thread busy. */
    if (sl__nats_now_ms() - refreshed >= interval) {
      refresh_in_progress(src);
      refreshed = sl__nats_now_ms();
    }
    pthread_mutex_lock(&src->lock);
  }
  pthread_mutex_unlock(&src->lock);
  return NULL;
}

/* ---- setup ------------------------------------------------------------------------- */

/* "a.>, b.>": the subjects of `create_stream`, for messages. */
static void subjects_text(const sl_conf_list *list, char *buf, size_t size) {
  size_t at = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < list->count && at < size; i++)
    at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? ", " : "", list->items[i]);
}

/* Creates the stream capturing the subjects of `create_stream`. */
static sl_status create_stream(jetstream_source *src, sl_error *err) {
  const js_source_config *cfg = src->config;
  char subjects[512];
  subjects_text(&cfg->create_stream, subjects, sizeof subjects);
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = cfg->stream;
  sc.Subjects = (const char **)cfg->create_stream.items;
  sc.SubjectsLen = (int)cfg->create_stream.count;
  sc.Storage = js_FileStorage;
  jsErrCode code = 0;
  natsStatus s = js_AddStream(NULL, src->js, &sc, NULL, &code);
  if (s != NATS_OK) {
    char why[512];
    return sl_error_set(err, s == NATS_ERR ? SL_CONFIG : SL_IO,
                        "cannot create stream %s with subjects %s: %s", cfg->stream, subjects,
                        sl__nats_status_text(s, why, sizeof why));
  }
  sl_node_log(src->node, SL_LOG_INFO, "jetstream source: created stream %s capturing %s",
              cfg->stream, subjects);
  return SL_OK;
}

static sl_status ensure_stream(jetstream_source *src, sl_error *err) {
  const js_source_config *cfg = src->config;
  jsStreamInfo *info = NULL;
  jsErrCode code = 0;
  natsStatus s = js_GetStreamInfo(&info, src->js, cfg->stream, NULL, &code);
  jsStreamInfo_Destroy(info);
  if (s == NATS_OK) return SL_OK;
  char why[512];
  sl__nats_status_text(s, why, sizeof why);
  if (s == NATS_NOT_FOUND) {
    if (cfg->create_stream.count) return create_stream(src, err);
    return sl_error_set(err, SL_CONFIG,
                        "stream %s does not exist on %s; create it (for example: nats stream add "
                        "%s --subjects 'SUBJECT.>'), or set create_stream to the subjects it "
                        "should capture",
                        cfg->stream, src->conn.shown_url, cfg->stream);
  }
  if (s == NATS_NO_RESPONDERS)
    return sl_error_set(err, SL_IO,
                        "JetStream does not answer on %s (is the server running with JetStream "
                        "enabled, nats-server -js?)",
                        src->conn.shown_url);
  return sl_error_set(err, SL_IO, "cannot look up stream %s on %s: %s", cfg->stream,
                      src->conn.shown_url, why);
}

static sl_status check_consumer(jetstream_source *src, const jsConsumerInfo *info, sl_error *err) {
  const jsConsumerConfig *cc = info->Config;
  const js_source_config *cfg = src->config;
  if (cc->DeliverSubject && *cc->DeliverSubject)
    return sl_error_set(err, SL_CONFIG,
                        "consumer %s on stream %s is a push consumer; this source needs a pull "
                        "consumer (choose another durable)",
                        src->durable, cfg->stream);
  if (cc->AckPolicy != js_AckExplicit)
    return sl_error_set(err, SL_CONFIG,
                        "consumer %s on stream %s does not use explicit acks; this source needs "
                        "them (choose another durable)",
                        src->durable, cfg->stream);
  const char *filter = cc->FilterSubject ? cc->FilterSubject : "";
  if (cfg->subject && strcmp(cfg->subject, filter) != 0)
    return sl_error_set(err, SL_CONFIG,
                        "consumer %s on stream %s filters \"%s\", not subject \"%s\" (delete "
                        "the consumer or choose another durable)",
                        src->durable, cfg->stream, filter, cfg->subject);
  return SL_OK;
}

static sl_status ensure_consumer(jetstream_source *src, sl_error *err) {
  const js_source_config *cfg = src->config;
  jsConsumerInfo *info = NULL;
  jsErrCode code = 0;
  char why[512];
  natsStatus s = js_GetConsumerInfo(&info, src->js, cfg->stream, src->durable, NULL, &code);
  if (s == NATS_NOT_FOUND) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = src->durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)cfg->ack_wait * 1000000;
    cc.MaxDeliver = -1; /* counted here: see the file comment */
    cc.MaxAckPending = cfg->max_ack_pending;
    cc.FilterSubject = cfg->subject;
    cc.DeliverPolicy = strcmp(cfg->deliver, "new") == 0    ? js_DeliverNew
                       : strcmp(cfg->deliver, "last") == 0 ? js_DeliverLast
                                                           : js_DeliverAll;
    s = js_AddConsumer(&info, src->js, cfg->stream, &cc, NULL, &code);
    if (s == NATS_OK) {
      sl_node_log(src->node, SL_LOG_INFO,
                  "jetstream source: created durable consumer %s on stream %s", src->durable,
                  cfg->stream);
    } else {
      /* Another instance may have created it meanwhile: look once more. */
      sl__nats_status_text(s, why, sizeof why);
      s = js_GetConsumerInfo(&info, src->js, cfg->stream, src->durable, NULL, &code);
      if (s != NATS_OK)
        return sl_error_set(err, SL_CONFIG, "cannot create consumer %s on stream %s: %s",
                            src->durable, cfg->stream, why);
    }
  }
  if (s != NATS_OK)
    return sl_error_set(err, SL_IO, "cannot look up consumer %s on stream %s: %s", src->durable,
                        cfg->stream, sl__nats_status_text(s, why, sizeof why));
  sl_status st = check_consumer(src, info, err);
  jsConsumerInfo_Destroy(info);
  return st;
}

/* Stream, consumer, and a pull subscription bound to them (replacing any older one). */
static sl_status bind(jetstream_source *src, sl_error *err) {
  sl_status st = ensure_stream(src, err);
  if (st == SL_OK) st = ensure_consumer(src, err);
  if (st != SL_OK) return st;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = src->config->stream;
  so.Consumer = src->durable;
  natsSubscription *sub = NULL;
  jsErrCode code = 0;
  natsStatus s =
      js_PullSubscribe(&sub, src->js, src->config->subject, src->durable, NULL, &so, &code);
  if (s != NATS_OK) {
    char why[512];
    return sl_error_set(err, SL_IO, "cannot subscribe to consumer %s on stream %s: %s",
                        src->durable, src->config->stream,
                        sl__nats_status_text(s, why, sizeof why));
  }
  if (src->sub) {
    natsSubscription_Unsubscribe(src->sub);
    natsSubscription **grown = realloc(src->retired, (src->retired_count + 1) * sizeof *grown);
    if (!grown) abort();
    src->retired = grown;
    src->retired[src->retired_count++] = src->sub;
  }
  src->sub = sub;
  return SL_OK;
}

/* ---- the fetcher ------------------------------------------------------------------- */

/*
 * After a failed fetch, and every QUIET_CHECK_MS while fetches come back empty: when the
 * consumer (or its stream) was deleted, set both up again as start() did. A consumer
 * that is there, or a JetStream that does not answer, is left alone: fetching goes on.
 */
static void recover_consumer(jetstream_source *src) {
  jsConsumerInfo *info = NULL;
  jsErrCode code = 0;
  natsStatus s = js_GetConsumerInfo(&info, src->js, src->config->stream, src->durable, NULL, &code);
  jsConsumerInfo_Destroy(info);
  if (s != NATS_NOT_FOUND && code != JSStreamNotFoundErr && code != JSConsumerNotFoundErr) return;
  sl_error err = {{0}};
  if (bind(src, &err) == SL_OK)
    sl_node_log(src->node, SL_LOG_WARN,
                "jetstream source: consumer %s on stream %s had disappeared; it was set up again",
                src->durable, src->config->stream);
  else
    sl__nats_log_limited(&src->fetch_log, src->node, SL_LOG_ERROR,
                         "jetstream source: consumer %s on stream %s has disappeared and cannot "
                         "be set up again: %s",
                         src->durable, src->config->stream, err.message);
}

/* Registers the ticket and emits its batch. False when the pipeline refuses more (the
 * ticket then goes to the acker as SL_CLOSED: its messages are NAKed). */
static bool emit_ticket(jetstream_source *src, js_ticket *t, sl_event_list **batch) {
  pthread_mutex_lock(&src->lock);
  if (!t->prev) outstanding_add(src, t);
  pthread_mutex_unlock(&src->lock);
  sl_status st = t->errors ? sl_source_emit_errors(src->port, batch, on_ack, t)
                           : sl_source_emit(src->port, batch, on_ack, t);
  if (st == SL_OK) return true;
  /* No acknowledgement will come for it. */
  pthread_mutex_lock(&src->lock);
  queue_done(src, t, SL_CLOSED);
  pthread_mutex_unlock(&src->lock);
  return false;
}

/* Emits the errors batches the acker queued. */
static bool emit_queued_errors(jetstream_source *src) {
  pthread_mutex_lock(&src->lock);
  js_ticket *t = src->errors_head;
  src->errors_head = src->errors_tail = NULL;
  pthread_mutex_unlock(&src->lock);
  bool open = true;
  while (t) {
    js_ticket *next = t->queue_next;
    sl_event_list *batch = t->batch;
    t->batch = NULL;
    if (open) {
      open = emit_ticket(src, t, &batch);
    } else {
      sl_event_list_destroy(batch);
      free(batch);
      pthread_mutex_lock(&src->lock);
      queue_done(src, t, SL_CLOSED);
      pthread_mutex_unlock(&src->lock);
    }
    t = next;
  }
  return open;
}

/* Turns fetched messages into a batch (and an errors batch for messages past
 * max_deliver) and emits them. The list's messages now belong to the tickets. */
static bool emit_fetched(jetstream_source *src, natsMsgList *list) {
  js_ticket *normal = ticket_new(src, (size_t)list->Count, false);
  js_ticket *errors = NULL;
  sl_event_list *batch = batch_new(), *errors_batch = NULL;
  uint64_t max = (uint64_t)src->config->max_deliver;
  for (int i = 0; i < list->Count; i++) {
    natsMsg *msg = list->Msgs[i];
    list->Msgs[i] = NULL;
    js_delivery d = delivery_of(src, msg);
    uint64_t deliveries = d.deliveries;
    if (deliveries > max) {
      if (!errors) {
        errors = ticket_new(src, (size_t)list->Count, true);
        errors_batch = batch_new();
      }
      char why[256];
      snprintf(why, sizeof why,
               "delivered %llu times, more than max_deliver (%llu), without being "
               "acknowledged (earlier attempts failed, or the host stopped or crashed while "
               "they were in flight)",
               (unsigned long long)deliveries, (unsigned long long)max);
      add_event(errors_batch, msg, &d, why);
      errors->deliveries[errors->count] = deliveries;
      errors->msgs[errors->count++] = msg;
    } else {
      add_event(batch, msg, &d, NULL);
      normal->deliveries[normal->count] = deliveries;
      normal->msgs[normal->count++] = msg;
    }
  }
  bool open = true;
  if (normal->count > 0) {
    open = emit_ticket(src, normal, &batch);
  } else {
    ticket_free(normal);
  }
  if (errors) {
    if (open) {
      open = emit_ticket(src, errors, &errors_batch);
    } else {
      pthread_mutex_lock(&src->lock);
      queue_done(src, errors, SL_CLOSED);
      pthread_mutex_unlock(&src->lock);
    }
  }
  if (batch) {
    sl_event_list_destroy(batch);
    free(batch);
  }
  if (errors_batch) {
    sl_event_list_destroy(errors_batch);
    free(errors_batch);
  }
  return open;
}

static void *run_fetcher(void *arg) {
  jetstream_source *src = arg;
  const js_source_config *cfg = src->config;
  size_t batch_size = sl_source_batch_size(src->port);
  if (batch_size == 0) batch_size = 1;
  if (batch_size > INT32_MAX) batch_size = INT32_MAX;
  unsigned failures = 0;
  uint64_t quiet_since = sl__nats_now_ms();
  bool open = true;
  while (open && !atomic_load(&src->stopper.stopping)) {
    open = emit_queued_errors(src);
    if (!open) break;
    natsMsgList list = {0};
    jsErrCode code = 0;
    natsStatus s = natsSubscription_Fetch(&list, src->sub, (int)batch_size, FETCH_WAIT_MS, &code);
    if (s == NATS_TIMEOUT) {
      failures = 0;
      /* A deleted consumer answers nothing at all: look for it once in a while. */
      if (sl__nats_now_ms() - quiet_since >= QUIET_CHECK_MS) {
        if (sl__nats_conn_up(&src->conn)) recover_consumer(src);
        quiet_since = sl__nats_now_ms();
      }
      continue;
    }
    quiet_since = sl__nats_now_ms();
    if (s != NATS_OK) {
      char why[512];
      sl__nats_status_text(s, why, sizeof why);
      uint64_t delay = sl__nats_backoff_ms(&cfg->conn, ++failures);
      sl__nats_log_limited(&src->fetch_log, src->node, SL_LOG_WARN,
                           "jetstream source: fetching from consumer %s on stream %s failed: %s; "
                           "trying again in %llu ms",
                           src->durable, cfg->stream, why, (unsigned long long)delay);
      if (!sl__nats_stopper_sleep(&src->stopper, delay)) break;
      if (sl__nats_conn_up(&src->conn)) recover_consumer(src);
      continue;
    }
    failures = 0;
    open = emit_fetched(src, &list);
    natsMsgList_Destroy(&list);
  }
  /* Errors batches not emitted go back to the server; none is made from now on. */
  pthread_mutex_lock(&src->lock);
  src->ended = true;
  js_ticket *t = src->errors_head;
  src->errors_head = src->errors_tail = NULL;
  while (t) {
    js_ticket *next = t->queue_next;
    queue_done(src, t, SL_CLOSED);
    t = next;
  }
  pthread_mutex_unlock(&src->lock);
  sl_source_end(src->port);
  return NULL;
}

/* ---- the connector ----------------------------------------------------------------- */

/* sluice_<pipeline>_<node>, with what a durable name cannot hold replaced by '_'. */
static char *default_durable(const sl_node_ctx *node) {
  char *name = NULL;
  if (asprintf(&name, "sluice_%s_%s", node->pipeline ? node->pipeline : "",
               node->id ? node->id : "") < 0)
    abort();
  for (char *c = name; *c; c++)
    if (*c == '.' || *c == '*' || *c == '>' || *c == '/' || *c == '\\' || *c <= ' ' || *c == 127)
      *c = '_';
  return name;
}

static bool valid_name(const char *name) {
  if (!name || !*name) return false;
  for (const char *c = name; *c; c++)
    if (*c == '.' || *c == '*' || *c == '>' || *c == '/' || *c == '\\' || *c <= ' ' || *c == 127)
      return false;
  return true;
}

static sl_status check_config(const js_source_config *cfg, sl_error *err) {
  sl_status st = sl__nats_conn_check(&cfg->conn, err);
  if (st != SL_OK) return st;
  if (!valid_name(cfg->stream))
    return sl_error_set(err, SL_CONFIG,
                        "stream: \"%s\" is not a stream name (no spaces, dots, *, > or slashes)",
                        cfg->stream ? cfg->stream : "");
  if (cfg->durable && !valid_name(cfg->durable))
    return sl_error_set(err, SL_CONFIG,
                        "durable: \"%s\" is not a consumer name (no spaces, dots, *, > or "
                        "slashes)",
                        cfg->durable);
  if (cfg->subject && !sl__nats_subject_valid(cfg->subject, true))
    return sl_error_set(err, SL_CONFIG, "subject: \"%s\" is not a NATS subject", cfg->subject);
  if (cfg->ack_wait < 1000)
    return sl_error_set(err, SL_CONFIG, "ack_wait: must be at least 1s, got %llu ms",
                        (unsigned long long)cfg->ack_wait);
  if (cfg->max_deliver < 1)
    return sl_error_set(err, SL_CONFIG, "max_deliver: must be at least 1, got %lld",
                        (long long)cfg->max_deliver);
  if (cfg->max_ack_pending < 1)
    return sl_error_set(err, SL_CONFIG, "max_ack_pending: must be at least 1, got %lld",
                        (long long)cfg->max_ack_pending);
  for (size_t i = 0; i < cfg->create_stream.count && st == SL_OK; i++)
    if (!sl__nats_subject_valid(cfg->create_stream.items[i], true))
      st = sl_error_set(err, SL_CONFIG, "create_stream: \"%s\" is not a NATS subject",
                        cfg->create_stream.items[i]);
  return st;
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const js_source_config *cfg = config;
  sl_status st = check_config(cfg, err);
  if (st != SL_OK) return st;
  jetstream_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  src->durable = cfg->durable ? strdup(cfg->durable) : default_durable(node);
  if (!src->durable) abort();
  sl__nats_stopper_init(&src->stopper);
  pthread_mutex_init(&src->lock, NULL);
  sl__nats_cond_init(&src->acker_wake);
  src->outstanding.next = src->outstanding.prev = &src->outstanding;
  sl__nats_log_limit_init(&src->fetch_log);
  sl__nats_log_limit_init(&src->ack_log);
  *state = src;
  return SL_OK;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  jetstream_source *src = state;
  src->port = port;
  sl_status st =
      sl__nats_conn_open(&src->conn, src->node, &src->config->conn, "jetstream source", err);
  if (st != SL_OK) return st;
  src->connected = true;
  natsStatus s = natsConnection_JetStream(&src->js, src->conn.nc, NULL);
  if (s != NATS_OK) {
    char why[512];
    return sl_error_set(err, SL_IO, "cannot use JetStream: %s",
                        sl__nats_status_text(s, why, sizeof why));
  }
  st = bind(src, err);
  if (st != SL_OK) return st;
  sl_node_log(src->node, SL_LOG_INFO,
              "jetstream source: reading stream %s through durable consumer %s on %s",
              src->config->stream, src->durable, src->conn.shown_url);
  int rc = pthread_create(&src->acker, NULL, run_acker, src);
  if (rc != 0) return sl_error_set(err, SL_IO, "cannot start a thread: %s", strerror(rc));
  src->acker_started = true;
  rc = pthread_create(&src->fetcher, NULL, run_fetcher, src);
  if (rc != 0) return sl_error_set(err, SL_IO, "cannot start a thread: %s", strerror(rc));
  src->fetcher_started = true;
  return SL_OK;
}

static void stop(void *state) {
  jetstream_source *src = state;
  sl__nats_stopper_stop(&src->stopper);
}

static void destroy(void *state) {
  jetstream_source *src = state;
  sl__nats_stopper_stop(&src->stopper);
  if (src->fetcher_started) pthread_join(src->fetcher, NULL);
  pthread_mutex_lock(&src->lock);
  src->shutting_down = true;
  pthread_cond_signal(&src->acker_wake);
  pthread_mutex_unlock(&src->lock);
  if (src->acker_started) pthread_join(src->acker, NULL);
  /* What never got an acknowledgement (the drain timed out, or the pipeline failed to
   * start) goes back to the server for another instance, or the next run. */
  size_t returned = 0;
  while (src->outstanding.next != &src->outstanding) {
    js_ticket *t = src->outstanding.next;
    outstanding_remove(t);
    nak_all(src, t, false);
    returned += t->count;
    ticket_free(t);
  }
  for (js_ticket *t = src->done_head; t;) {
    js_ticket *next = t->queue_next;
    settle(src, t);
    t = next;
  }
  if (returned)
    sl_node_log(src->node, SL_LOG_INFO,
                "jetstream source: %zu messages never acknowledged by the pipeline were returned "
                "to the server",
                returned);
  if (src->connected && sl__nats_conn_up(&src->conn))
    natsConnection_FlushTimeout(src->conn.nc, CLOSE_FLUSH_MS);
  natsSubscription_Destroy(src->sub);
  for (size_t i = 0; i < src->retired_count; i++) natsSubscription_Destroy(src->retired[i]);
  free(src->retired);
  jsCtx_Destroy(src->js);
  if (src->connected) sl__nats_conn_close(&src->conn, 0);
  sl__nats_log_limit_destroy(&src->fetch_log);
  sl__nats_log_limit_destroy(&src->ack_log);
  pthread_cond_destroy(&src->acker_wake);
  pthread_mutex_destroy(&src->lock);
  sl__nats_stopper_destroy(&src->stopper);
  free(src->durable);
  free(src);
}

static const char *const deliver_choices[] = {"all", "new", "last", NULL};

static const sl_conf_field fields[] = {
    {"stream", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(js_source_config, stream),
     "The stream to read; it must exist unless create_stream is set.", NULL},
    {"durable", SL_CONF_STRING, 0, NULL, offsetof(js_source_config, durable),
     "Durable consumer name (created when missing); default sluice_PIPELINE_NODE.", NULL},
    {"subject", SL_CONF_STRING, 0, NULL, offsetof(js_source_config, subject),
     "Only messages on this subject (the consumer's filter; wildcards allowed); default all.",
     NULL},
    {"deliver", SL_CONF_ENUM, 0, "all", offsetof(js_source_config, deliver),
     "Where a newly created consumer starts: all (the stream's first message), new or last.",
     deliver_choices},
    {"ack_wait", SL_CONF_DURATION, 0, "30s", offsetof(js_source_config, ack_wait),
     "How long the server waits for an acknowledgement before delivering a message again.", NULL},
    {"max_deliver", SL_CONF_INT, 0, "5", offsetof(js_source_config, max_deliver),
     "Deliveries a message gets before it goes to this node's errors output and is terminated.",
     NULL},
    {"max_ack_pending", SL_CONF_INT, 0, "20000", offsetof(js_source_config, max_ack_pending),
     "Messages a newly created consumer hands out before it waits for acknowledgements.", NULL},
    {"create_stream", SL_CONF_LIST, 0, NULL, offsetof(js_source_config, create_stream),
     "When the stream does not exist, create it capturing these subjects ([orders.>, returns.>]).",
     NULL},
    SL_NATS_CONN_FIELDS(js_source_config),
    {NULL},
};

const sl_connector sl_jetstream_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "jetstream",
    .kind = SL_NODE_SOURCE,
    .summary = "A JetStream stream through a durable pull consumer; acknowledged after delivery.",
    .fields = fields,
    .config_size = sizeof(js_source_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
    .shareable = true,
    .errors_output = true,
};
