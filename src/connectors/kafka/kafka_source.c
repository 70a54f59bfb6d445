/*
 * kafka_source.c - `type: kafka` without inputs: a consumer in a consumer group whose
 * offsets are committed only once the events are delivered.
 *
 * A thread of the source's own polls the consumer (rd_kafka_consumer_poll), turns
 * messages into events and emits batches with sl_source_emit, which blocks while the
 * pipeline is full. librdkafka fetches, reconnects and keeps the group membership on
 * threads of its own; its rebalance callback runs on this thread, inside the poll.
 *
 * Offsets (at-least-once):
 *   - enable.auto.offset.store=false: librdkafka commits only what this source stores,
 *     and it stores an offset (rd_kafka_offsets_store) only once the batch holding the
 *     message and every earlier batch of that partition were delivered
 *     (kafka_offsets.h). enable.auto.commit=true commits the stored offsets every
 *     `commit_interval`, when partitions are revoked, and destroy() commits once more.
 *   - A batch that a sink failed: its partitions are paused at once (messages of a
 *     paused partition that were already fetched are dropped). When the failed span
 *     reaches the front of its partition, whatever was delivered before it is stored,
 *     and after `backoff` (doubling per failure up to `max_backoff`, reset by the next
 *     delivery) the partition is sought back to the span's first offset and resumed:
 *     the failed messages and every later one of that partition are read and emitted
 *     again. A message that always fails is therefore retried for ever and holds its
 *     partition back; other partitions go on.
 *   - A batch not delivered because the pipeline stopped (SL_CLOSED) is not stored
 *     either; the next run (or the next owner of the partition) reads it again.
 *   - Revocation (a rebalance): the batch being built is emitted, then the source waits
 *     up to REVOKE_WAIT_MS for the acks of the revoked partitions and stores what they
 *     allow, so librdkafka commits it as it unassigns them. Acks that come later are
 *     ignored; the next owner reads those messages again. Lost partitions (the session
 *     expired) store nothing.
 *   - After a kill -9, messages delivered after the last commit are read again:
 *     duplicates, never losses.
 *   - The spans of a partition must stay in offset order: on every reset (seek back,
 *     assignment, revocation) its messages in the batch being built stop being tracked,
 *     and a message at or below the highest offset tracked (librdkafka moved the
 *     partition back by itself) is emitted untracked, as the copy it is.
 *
 * Sections: state - acks and offsets - rebalancing - messages to events - the thread -
 * the connector.
 */
#include "connectors/kafka/kafka_source.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/kafka/kafka_offsets.h"
#include "core/utf8.h"

/* How long one consumer poll may block while no batch is being built. */
#define POLL_MS 100

/* How long a revocation waits for the acks of the partitions it takes away. */
#define REVOKE_WAIT_MS 10000

/* destroy(): how long the final commit, and then leaving the group, may take. */
#define COMMIT_WAIT_MS 10000
#define CLOSE_WAIT_MS 10000

/* How long a seek back may take before it is tried again later. */
#define SEEK_WAIT_MS 5000

/* --- state ------------------------------------------------------------------------ */

/* One partition this source has been assigned at some point. Source thread only. */
typedef struct part {
  char *topic;
  int32_t partition;
  bool assigned;
  bool paused;       /* a batch failed: fetching stopped, polled messages dropped */
  int64_t reread_at; /* >= 0: seek here at reread_at_ms, then resume */
  sl_status failure; /* why the batch to read again failed, for the log */
  uint64_t reread_at_ms;
  uint64_t backoff_ms; /* the next re-read delay */
  int64_t last_taken;  /* the highest offset tracked since the last reset; -1: none */
  kafka_offsets offsets;
} part;

typedef struct kafka_source kafka_source;

/* One emitted batch, for its ack: the partitions it holds messages of. */
typedef struct ticket {
  struct ticket *next; /* in kafka_source.acks */
  kafka_source *src;
  uint64_t batch;
  sl_status status;
  size_t count;
  part *parts[];
} ticket;

/* Where one partition's messages start and end in the batch being built. */
typedef struct batch_span {
  part *part;
  int64_t first, last;
} batch_span;

struct kafka_source {
  kafka_log log;          /* first: librdkafka's callbacks get this struct as their opaque */
  kafka_log delivery_log; /* failures and re-reads, rate-limited apart from the client's */
  const sl_node_ctx *node;
  const kafka_source_config *config;
  rd_kafka_conf_t *conf; /* a copy goes to each consumer made (again after a fatal error) */
  rd_kafka_topic_partition_list_t *topics;
  rd_kafka_t *rk; /* NULL only while replacing a consumer that failed for good */
  sl_source_port *port;
  size_t batch_size;
  pthread_t thread;
  bool thread_started;
  bool closed; /* the pipeline refused a batch (it stops hard): emit nothing more */
  bool ended;  /* sl_source_end was called: emit nothing more */
  atomic_bool stopping;
  atomic_bool destroying; /* stop waiting for acks */

  /* Acks arrive on runtime threads: they only queue the ticket and wake the thread. */
  pthread_mutex_t lock;
  pthread_cond_t wake; /* an ack came, or stop/destroy */
  ticket *acks, **acks_tail;
  size_t unacked; /* tickets emitted and not acknowledged yet */

  /* The source thread's (and the destroying thread's once the source thread is gone). */
  part **parts;
  size_t part_count, part_cap;
  part *last_part;
  uint64_t next_reread_ms; /* the earliest reread_at_ms scheduled; UINT64_MAX: none */
  uint64_t next_batch;
  sl_event_list *batch;
  batch_span *spans;
  size_t span_count, span_cap;
};

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static part *find_part(kafka_source *src, const char *topic, int32_t partition, bool create) {
  part *p = src->last_part;
  if (p && p->partition == partition && strcmp(p->topic, topic) == 0) return p;
  for (size_t i = 0; i < src->part_count; i++) {
    p = src->parts[i];
    if (p->partition == partition && strcmp(p->topic, topic) == 0) return src->last_part = p;
  }
  if (!create) return NULL;
  if (src->part_count == src->part_cap) {
    size_t cap = src->part_cap ? src->part_cap * 2 : 8;
    part **grown = realloc(src->parts, cap * sizeof *grown);
    if (!grown) abort(); /* host out of memory */
    src->parts = grown;
    src->part_cap = cap;
  }
  p = calloc(1, sizeof *p);
  if (!p) abort();
  p->topic = strdup(topic);
  if (!p->topic) abort();
  p->partition = partition;
  p->reread_at = -1;
  p->last_taken = -1;
  p->backoff_ms = src->config->client.backoff;
  sl__kafka_offsets_init(&p->offsets);
  src->parts[src->part_count++] = p;
  return src->last_part = p;
}

/* A one-partition list for the librdkafka calls below; the caller destroys it. */
static rd_kafka_topic_partition_list_t *one_partition(const part *p, int64_t offset) {
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = offset;
  return list;
}

/* --- acks and offsets ------------------------------------------------------------- */

static void on_ack(void *cookie, sl_status delivered) {
  ticket *t = cookie;
  kafka_source *src = t->src;
  t->status = delivered;
  t->next = NULL;
  pthread_mutex_lock(&src->lock);
  *src->acks_tail = t;
  src->acks_tail = &t->next;
  src->unacked--;
  pthread_cond_broadcast(&src->wake);
  pthread_mutex_unlock(&src->lock);
}

/* Stops fetching a partition whose batch failed, so little is read twice for nothing. */
static void pause_part(kafka_source *src, part *p) {
  if (p->paused || !p->assigned || !src->rk) return;
  rd_kafka_topic_partition_list_t *list = one_partition(p, RD_KAFKA_OFFSET_INVALID);
  rd_kafka_pause_partitions(src->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  p->paused = true;
}

/*
 * Stops tracking `p` in the batch being built. Needed whenever a partition's tracker is reset:
 * messages of it already in that batch precede the reset, so once emitted they would open a span
 * that a later, earlier offset could never close in order, and storing past them could skip
 * messages read again. They are still emitted (duplicates), just never stored.
 */
static void forget_building(kafka_source *src, const part *p) {
  size_t kept = 0;
  for (size_t i = 0; i < src->span_count; i++)
    if (src->spans[i].part != p) src->spans[kept++] = src->spans[i];
  src->span_count = kept;
}

/* Forgets what is tracked of `p`: after a seek back, an assignment or a revocation. */
static void reset_part(kafka_source *src, part *p) {
  sl__kafka_offsets_reset(&p->offsets);
  p->last_taken = -1;
  forget_building(src, p);
}

/* After acks: store what every partition's front allows, schedule re-reads. */
static void advance_parts(kafka_source *src) {
  rd_kafka_topic_partition_list_t *store = NULL;
  uint64_t now = sl__kafka_now_ms();
  uint64_t max_backoff = src->config->client.max_backoff;
  for (size_t i = 0; i < src->part_count; i++) {
    part *p = src->parts[i];
    kafka_advance next = sl__kafka_offsets_advance(&p->offsets);
    if (next.store >= 0 && p->assigned) {
      if (!store) store = rd_kafka_topic_partition_list_new((int)src->part_count);
      rd_kafka_topic_partition_list_add(store, p->topic, p->partition)->offset = next.store;
      p->backoff_ms = src->config->client.backoff;
    }
    if (next.reread_at < 0) continue;
    reset_part(src, p);
    if (atomic_load(&src->stopping) || !p->assigned) {
      sl__kafka_log(&src->delivery_log, SL_LOG_WARN,
                    "%s [%" PRId32 "]: messages from offset %" PRId64
                    " were not delivered; they are not committed, so the next run (or the "
                    "partition's next owner) reads them again",
                    p->topic, p->partition, next.reread_at);
      continue;
    }
    p->reread_at = next.reread_at;
    p->reread_at_ms = now + p->backoff_ms;
    if (p->reread_at_ms < src->next_reread_ms) src->next_reread_ms = p->reread_at_ms;
    sl__kafka_log(&src->delivery_log, SL_LOG_WARN,
                  "%s [%" PRId32 "]: messages from offset %" PRId64
                  " were not delivered (%s); reading again from offset %" PRId64 " in %" PRIu64
                  " ms",
                  p->topic, p->partition, p->reread_at, sl_status_str(p->failure), p->reread_at,
                  p->backoff_ms);
    p->backoff_ms =
        min_u64(p->backoff_ms > UINT64_MAX / 2 ? UINT64_MAX : p->backoff_ms * 2, max_backoff);
  }
  if (!store) return;
  if (src->rk) {
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(src->rk, store);
    for (int i = 0; i < store->cnt && err == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
      if (store->elems[i].err) err = store->elems[i].err;
    if (err)
      sl__kafka_log(&src->log, SL_LOG_WARN,
                    "storing delivered offsets failed: %s; those messages may be read again",
                    rd_kafka_err2str(err));
  }
  rd_kafka_topic_partition_list_destroy(store);
}

/* Settles the spans of every ack that came in, then advances the partitions. */
static void handle_acks(kafka_source *src) {
  pthread_mutex_lock(&src->lock);
  ticket *list = src->acks;
  src->acks = NULL;
  src->acks_tail = &src->acks;
  pthread_mutex_unlock(&src->lock);
  if (!list) return;
  while (list) {
    ticket *t = list;
    list = t->next;
    kafka_span_state state = t->status == SL_OK       ? KAFKA_SPAN_DELIVERED
                             : t->status == SL_CLOSED ? KAFKA_SPAN_ABANDONED
                                                      : KAFKA_SPAN_FAILED;
    for (size_t i = 0; i < t->count; i++) {
      part *p = t->parts[i];
      if (!sl__kafka_offsets_settle(&p->offsets, t->batch, state)) continue; /* stale */
      if (state != KAFKA_SPAN_FAILED) continue;
      p->failure = t->status;
      if (!atomic_load(&src->stopping)) pause_part(src, p);
    }
    free(t);
  }
  advance_parts(src);
}

/* Seeks paused partitions back once their re-read delay passed, and resumes them. */
static void reread_due(kafka_source *src) {
  uint64_t now = sl__kafka_now_ms();
  if (now < src->next_reread_ms) return;
  src->next_reread_ms = UINT64_MAX;
  for (size_t i = 0; i < src->part_count; i++) {
    part *p = src->parts[i];
    if (p->reread_at < 0) continue;
    if (now < p->reread_at_ms) {
      if (p->reread_at_ms < src->next_reread_ms) src->next_reread_ms = p->reread_at_ms;
      continue;
    }
    if (!p->assigned) {
      p->reread_at = -1;
      continue;
    }
    rd_kafka_topic_partition_list_t *list = one_partition(p, p->reread_at);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(src->rk, list, SEEK_WAIT_MS);
    rd_kafka_resp_err_t err = error ? rd_kafka_error_code(error) : list->elems[0].err;
    if (err) {
      sl__kafka_log(&src->log, SL_LOG_WARN,
                    "%s [%" PRId32 "]: seeking back to offset %" PRId64
                    " failed: %s; trying again in %" PRIu64 " ms",
                    p->topic, p->partition, p->reread_at,
                    error ? rd_kafka_error_string(error) : rd_kafka_err2str(err), p->backoff_ms);
      p->reread_at_ms = now + p->backoff_ms;
      if (p->reread_at_ms < src->next_reread_ms) src->next_reread_ms = p->reread_at_ms;
    } else {
      rd_kafka_resume_partitions(src->rk, list);
      p->paused = false;
      p->reread_at = -1;
    }
    if (error) rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(list);
  }
}

/*
 * Emits the batch being built, recording each partition's span first (the ack may come
 * before sl_source_emit returns). SL_CLOSED: the pipeline stops hard; no ack will come,
 * so the ticket is settled here as abandoned.
 */
static sl_status emit_batch(kafka_source *src) {
  if (src->closed || src->ended) return SL_CLOSED;
  if (!src->batch || src->batch->count == 0) return SL_OK;
  ticket *t = malloc(sizeof *t + src->span_count * sizeof t->parts[0]);
  if (!t) abort(); /* host out of memory */
  t->src = src;
  t->batch = ++src->next_batch;
  t->count = 0;
  for (size_t i = 0; i < src->span_count; i++) {
    batch_span *span = &src->spans[i];
    sl__kafka_offsets_add(&span->part->offsets, t->batch, span->first, span->last);
    t->parts[t->count++] = span->part;
  }
  src->span_count = 0;
  pthread_mutex_lock(&src->lock);
  src->unacked++;
  pthread_mutex_unlock(&src->lock);
  sl_status st = sl_source_emit(src->port, &src->batch, on_ack, t);
  if (st != SL_OK) {
    on_ack(t, SL_CLOSED);
    src->closed = true;
  }
  return st;
}

/* Waits until no partition of `list` (every partition when NULL) has a batch waiting for
 * its ack, handling acks as they come; gives up at `deadline_ms` or on destroy. */
static void wait_for_acks(kafka_source *src, const rd_kafka_topic_partition_list_t *list,
                          uint64_t deadline_ms) {
  for (;;) {
    handle_acks(src);
    size_t pending = 0;
    for (int i = 0; list && i < list->cnt; i++) {
      part *p = find_part(src, list->elems[i].topic, list->elems[i].partition, false);
      if (p) pending += sl__kafka_offsets_pending(&p->offsets);
    }
    pthread_mutex_lock(&src->lock);
    if (!list) pending = src->unacked;
    bool done = pending == 0 || atomic_load(&src->destroying);
    uint64_t now = sl__kafka_now_ms();
    if (!done && now >= deadline_ms) {
      pthread_mutex_unlock(&src->lock);
      sl__kafka_log(&src->log, SL_LOG_WARN,
                    "%zu batches still wait for delivery; their messages will be read again",
                    pending);
      return;
    }
    if (!done && !src->acks) {
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until);
      uint64_t wait_ms = min_u64(deadline_ms - now, POLL_MS);
      until.tv_sec += (time_t)(wait_ms / 1000);
      until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&src->wake, &src->lock, &until);
    }
    pthread_mutex_unlock(&src->lock);
    if (done) {
      handle_acks(src);
      return;
    }
  }
}

/* --- rebalancing ------------------------------------------------------------------ */

/* "WHAT: t [0], t [1]" (with " at OFFSET" after each when `offsets`), at INFO. */
static void log_partitions(kafka_source *src, const char *what,
                           const rd_kafka_topic_partition_list_t *list, bool offsets) {
  char text[512], at[32] = "";
  size_t used = 0;
  for (int i = 0; i < list->cnt && used < sizeof text - 32; i++) {
    if (offsets) snprintf(at, sizeof at, " at %" PRId64, list->elems[i].offset);
    int n = snprintf(text + used, sizeof text - used, "%s%s [%" PRId32 "]%s", i ? ", " : "",
                     list->elems[i].topic, list->elems[i].partition, at);
    if (n < 0) break;
    used = min_u64(used + (size_t)n, sizeof text - 1);
  }
  if (list->cnt == 0) snprintf(text, sizeof text, "none");
  sl__kafka_log(&src->log, SL_LOG_INFO, "%s: %s", what, text);
}

static void revoke(kafka_source *src, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list,
                   bool lost) {
  if (!lost) {
    /* What was read of these partitions goes out now, so its offsets can be stored
     * before librdkafka commits them on unassign. */
    emit_batch(src);
    wait_for_acks(src, list, sl__kafka_now_ms() + REVOKE_WAIT_MS);
  } else {
    handle_acks(src);
  }
  for (int i = 0; i < list->cnt; i++) {
    part *p = find_part(src, list->elems[i].topic, list->elems[i].partition, false);
    if (!p) continue;
    if (p->paused) {
      rd_kafka_topic_partition_list_t *one = one_partition(p, RD_KAFKA_OFFSET_INVALID);
      rd_kafka_resume_partitions(rk, one);
      rd_kafka_topic_partition_list_destroy(one);
    }
    p->assigned = false;
    p->paused = false;
    p->reread_at = -1;
    /* Messages of it still in the batch being built (lost partitions, or when the batch
     * could not go out) are emitted later, but never stored: it is no longer ours. */
    reset_part(src, p);
  }
  log_partitions(src, lost ? "partitions lost" : "partitions revoked", list, false);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *list, void *opaque) {
  kafka_source *src = opaque;
  bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  rd_kafka_error_t *error = NULL;
  rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < list->cnt; i++) {
      part *p = find_part(src, list->elems[i].topic, list->elems[i].partition, true);
      p->assigned = true;
      p->paused = false;
      p->reread_at = -1;
      p->backoff_ms = src->config->client.backoff;
      reset_part(src, p);
    }
    if (cooperative)
      error = rd_kafka_incremental_assign(rk, list);
    else
      assign_err = rd_kafka_assign(rk, list);
    log_partitions(src, "partitions assigned", list, false);
  } else {
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
      sl__kafka_log(&src->log, SL_LOG_ERROR, "rebalance failed: %s", rd_kafka_err2str(err));
    revoke(src, rk, list, rd_kafka_assignment_lost(rk) != 0);
    if (cooperative)
      error = rd_kafka_incremental_unassign(rk, list);
    else
      assign_err = rd_kafka_assign(rk, NULL);
  }
  if (error) {
    sl__kafka_log(&src->log, SL_LOG_ERROR, "changing the assignment failed: %s",
                  rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else if (assign_err) {
    sl__kafka_log(&src->log, SL_LOG_ERROR, "changing the assignment failed: %s",
                  rd_kafka_err2str(assign_err));
  }
}

/* --- messages to events ----------------------------------------------------------- */

static sl_bytes keep(sl_event_list *batch, const void *bytes, size_t len) {
  sl_bytes out;
  if (sl_event_list_copy(batch, bytes, len, &out) != SL_OK) abort(); /* host out of memory */
  return out;
}

static sl_bytes keep_str(sl_event_list *batch, const char *s) { return keep(batch, s, strlen(s)); }

/* A value as metadata: `name` when it is UTF-8, else `name_base64` (or `prefix_base64.rest`
 * for a header) with its base64 form. */
static sl_meta meta_bytes(sl_event_list *batch, const char *prefix, const char *name,
                          const void *value, size_t len) {
  char key[512];
  if (!value) value = "";
  if (sl__utf8_valid(value, len, NULL)) {
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return (sl_meta){keep_str(batch, key), keep(batch, value, len)};
  }
  if (*prefix)
    snprintf(key, sizeof key, "%.*s_base64.%s", (int)strlen(prefix) - 1, prefix, name);
  else
    snprintf(key, sizeof key, "%s_base64", name);
  char *encoded = malloc(4 * ((len + 2) / 3) + 1);
  if (!encoded) abort();
  size_t n = sl__kafka_base64(value, len, encoded);
  sl_meta meta = {keep_str(batch, key), keep(batch, encoded, n)};
  free(encoded);
  return meta;
}

static void add_event(kafka_source *src, part *p, const rd_kafka_message_t *m) {
  if (!src->batch) {
    src->batch = malloc(sizeof *src->batch);
    if (!src->batch) abort(); /* host out of memory */
    sl_event_list_init(src->batch);
  }
  sl_event_list *batch = src->batch;
  rd_kafka_headers_t *headers = NULL;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) headers = NULL;
  size_t header_count = headers ? rd_kafka_header_cnt(headers) : 0;
  rd_kafka_timestamp_type_t ts_type;
  int64_t timestamp = rd_kafka_message_timestamp(m, &ts_type);
  size_t count = 3 + (timestamp >= 0) + (m->key != NULL) + header_count;

  uint8_t *payload;
  sl_meta *meta;
  if (sl_event_list_push(batch, m->len, count, &payload, &meta) != SL_OK) abort();
  if (m->len) memcpy(payload, m->payload, m->len);
  size_t n = 0;
  char number[32];
  meta[n++] = (sl_meta){keep_str(batch, "topic"), keep_str(batch, p->topic)};
  snprintf(number, sizeof number, "%" PRId32, m->partition);
  meta[n++] = (sl_meta){keep_str(batch, "partition"), keep_str(batch, number)};
  snprintf(number, sizeof number, "%" PRId64, m->offset);
  meta[n++] = (sl_meta){keep_str(batch, "offset"), keep_str(batch, number)};
  if (timestamp >= 0) {
    snprintf(number, sizeof number, "%" PRId64, timestamp);
    meta[n++] = (sl_meta){keep_str(batch, "timestamp"), keep_str(batch, number)};
  }
  if (m->key) meta[n++] = meta_bytes(batch, "", "key", m->key, m->key_len);
  for (size_t i = 0; i < header_count; i++) {
    const char *name;
    const void *value;
    size_t len;
    if (rd_kafka_header_get_all(headers, i, &name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
      continue;
    if (!sl__utf8_valid(name, strlen(name), NULL)) continue; /* documented: skipped */
    meta[n++] = meta_bytes(batch, "header.", name, value, value ? len : 0);
  }
  /* Skipped headers leave room at the end: the event simply has fewer pairs. */
  batch->items[batch->count - 1].meta_count = n;

  /* librdkafka may move a partition back by itself (an offset reset, a truncated log
   * after a leader change): a message at or below what is tracked already is a copy
   * of one tracked before. It is emitted but not tracked, so the spans of a partition
   * stay in offset order, which storing relies on. */
  if (m->offset <= p->last_taken) return;
  p->last_taken = m->offset;
  batch_span *span = src->span_count ? &src->spans[src->span_count - 1] : NULL;
  if (!span || span->part != p) {
    span = NULL;
    for (size_t i = 0; i < src->span_count && !span; i++)
      if (src->spans[i].part == p) span = &src->spans[i];
  }
  if (span) {
    span->last = m->offset;
    return;
  }
  if (src->span_count == src->span_cap) {
    size_t cap = src->span_cap ? src->span_cap * 2 : 8;
    batch_span *grown = realloc(src->spans, cap * sizeof *grown);
    if (!grown) abort();
    src->spans = grown;
    src->span_cap = cap;
  }
  src->spans[src->span_count++] = (batch_span){p, m->offset, m->offset};
}

static void take_message(kafka_source *src, const rd_kafka_message_t *m) {
  if (m->err) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->err == RD_KAFKA_RESP_ERR__FATAL) return;
    if (m->rkt)
      sl__kafka_log(&src->log, SL_LOG_WARN, "%s [%" PRId32 "]: %s", rd_kafka_topic_name(m->rkt),
                    m->partition, rd_kafka_message_errstr(m));
    else
      sl__kafka_log(&src->log, SL_LOG_WARN, "%s", rd_kafka_message_errstr(m));
    return;
  }
  part *p = find_part(src, rd_kafka_topic_name(m->rkt), m->partition, false);
  /* Not ours (any more), or paused after a failure: it will be read again. */
  if (!p || !p->assigned || p->paused) return;
  add_event(src, p, m);
}

/* --- the thread ------------------------------------------------------------------- */

static sl_status open_consumer(kafka_source *src, sl_error *err) {
  char why[512];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, rd_kafka_conf_dup(src->conf), why, sizeof why);
  if (!rk) return sl_error_set(err, SL_CONFIG, "kafka source: cannot create the consumer: %s", why);
  rd_kafka_poll_set_consumer(rk);
  src->rk = rk;
  return SL_OK;
}

static sl_status subscribe(kafka_source *src, sl_error *err) {
  rd_kafka_resp_err_t code = rd_kafka_subscribe(src->rk, src->topics);
  if (code)
    return sl_error_set(err, SL_CONFIG, "topics: subscribing failed: %s", rd_kafka_err2str(code));
  return SL_OK;
}

/* Waits `ms` unless stop() or destroy() comes first; false when it did. */
static bool pause_unless_stopping(kafka_source *src, uint64_t ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&src->lock);
  while (!atomic_load(&src->stopping))
    if (pthread_cond_timedwait(&src->wake, &src->lock, &until) == ETIMEDOUT) break;
  pthread_mutex_unlock(&src->lock);
  return !atomic_load(&src->stopping);
}

/*
 * The consumer raised a fatal error (it cannot go on: a fenced static member, say).
 * What was read is emitted, the handle is dropped without committing, and a new one
 * joins the group after a backoff; the group then reads from the committed offsets, so
 * batches delivered since the last commit arrive twice.
 */
static void replace_consumer(kafka_source *src) {
  char reason[512] = "no consumer";
  rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR__FATAL;
  if (src->rk) {
    code = rd_kafka_fatal_error(src->rk, reason, sizeof reason);
    emit_batch(src);
    rd_kafka_destroy_flags(src->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    src->rk = NULL;
  }
  for (size_t i = 0; i < src->part_count; i++) {
    part *p = src->parts[i];
    p->assigned = p->paused = false;
    p->reread_at = -1;
    reset_part(src, p);
  }
  uint64_t delay = src->config->client.backoff;
  sl__kafka_log(&src->log, SL_LOG_ERROR,
                "the consumer failed for good (%s: %s); joining the group again in %" PRIu64
                " ms with a new one (messages delivered since the last commit are read again)",
                rd_kafka_err2name(code), reason, delay);
  while (pause_unless_stopping(src, delay)) {
    sl_error err;
    sl_status st = open_consumer(src, &err);
    if (st == SL_OK) st = subscribe(src, &err);
    if (st == SL_OK) return;
    if (src->rk) rd_kafka_destroy_flags(src->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    src->rk = NULL;
    delay = min_u64(delay * 2, src->config->client.max_backoff);
    sl__kafka_log(&src->log, SL_LOG_ERROR, "%s; trying again in %" PRIu64 " ms", err.message,
                  delay);
  }
}

static void *run(void *arg) {
  kafka_source *src = arg;
  while (!atomic_load(&src->stopping) && !src->closed) {
    handle_acks(src);
    if (!src->rk || rd_kafka_fatal_error(src->rk, NULL, 0)) {
      replace_consumer(src);
      continue;
    }
    reread_due(src);
    bool building = src->batch && src->batch->count > 0;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(src->rk, building ? 0 : POLL_MS);
    if (m) {
      take_message(src, m);
      rd_kafka_message_destroy(m);
    }
    size_t count = src->batch ? src->batch->count : 0;
    if (count > 0 && (!m || count >= src->batch_size)) emit_batch(src);
  }
  emit_batch(src);
  src->ended = true;
  sl_source_end(src->port);
  /* Acks keep coming after the end: store their offsets as they do, until the last one
   * or until destroy() says to stop waiting. */
  wait_for_acks(src, NULL, UINT64_MAX);
  return NULL;
}

/* --- the connector ---------------------------------------------------------------- */

/* Commits what was stored, waiting at most COMMIT_WAIT_MS. destroy() only. */
static void commit_final(kafka_source *src) {
  rd_kafka_queue_t *queue = rd_kafka_queue_new(src->rk);
  rd_kafka_resp_err_t err = rd_kafka_commit_queue(src->rk, NULL, queue, NULL, NULL);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, COMMIT_WAIT_MS);
    err = ev ? rd_kafka_event_error(ev) : RD_KAFKA_RESP_ERR__TIMED_OUT;
    const rd_kafka_topic_partition_list_t *done =
        ev ? rd_kafka_event_topic_partition_list(ev) : NULL;
    if (!err && done) log_partitions(src, "committed at stop", done, true);
    if (ev) rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(queue);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    sl__kafka_log(&src->log, SL_LOG_WARN,
                  "committing the delivered offsets at stop failed: %s; messages delivered since "
                  "the last commit will be read again",
                  rd_kafka_err2str(err));
}

/* Leaves the group (revoking the partitions through on_rebalance), waiting at most
 * CLOSE_WAIT_MS, then releases the consumer. destroy() only. */
static void close_consumer(kafka_source *src) {
  rd_kafka_queue_t *queue = rd_kafka_queue_new(src->rk);
  rd_kafka_error_t *error = rd_kafka_consumer_close_queue(src->rk, queue);
  bool closed = false;
  if (error) {
    sl__kafka_log(&src->log, SL_LOG_WARN, "leaving the group failed: %s",
                  rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else {
    uint64_t deadline = sl__kafka_now_ms() + CLOSE_WAIT_MS;
    while (!(closed = rd_kafka_consumer_closed(src->rk)) && sl__kafka_now_ms() < deadline)
      rd_kafka_queue_poll_callback(queue, POLL_MS);
    if (!closed)
      sl__kafka_log(&src->log, SL_LOG_WARN,
                    "leaving the group took more than %d ms; the group notices when the session "
                    "times out",
                    CLOSE_WAIT_MS);
  }
  rd_kafka_queue_destroy(queue);
  rd_kafka_destroy_flags(src->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  src->rk = NULL;
}

static void wake(kafka_source *src, bool destroying) {
  pthread_mutex_lock(&src->lock);
  atomic_store(&src->stopping, true);
  if (destroying) atomic_store(&src->destroying, true);
  pthread_cond_broadcast(&src->wake);
  pthread_mutex_unlock(&src->lock);
}

static void stop(void *state) { wake(state, false); }

static void destroy(void *state) {
  kafka_source *src = state;
  if (!src) return;
  wake(src, true);
  if (src->thread_started) pthread_join(src->thread, NULL);
  if (src->rk) {
    handle_acks(src);
    commit_final(src);
    close_consumer(src);
  }
  handle_acks(src); /* frees tickets acked during the close */
  if (src->batch) {
    sl_event_list_destroy(src->batch);
    free(src->batch);
  }
  for (size_t i = 0; i < src->part_count; i++) {
    sl__kafka_offsets_destroy(&src->parts[i]->offsets);
    free(src->parts[i]->topic);
    free(src->parts[i]);
  }
  free(src->parts);
  free(src->spans);
  if (src->topics) rd_kafka_topic_partition_list_destroy(src->topics);
  if (src->conf) rd_kafka_conf_destroy(src->conf);
  pthread_cond_destroy(&src->wake);
  pthread_mutex_destroy(&src->lock);
  sl__kafka_log_destroy(&src->log);
  sl__kafka_log_destroy(&src->delivery_log);
  free(src);
}

/* The `topics` list as a subscription; SL_CONFIG when it names none (the loader already
 * refuses empty names). */
static sl_status parse_topics(const sl_conf_list *topics, rd_kafka_topic_partition_list_t **out,
                              sl_error *err) {
  if (topics->count == 0)
    return sl_error_set(err, SL_CONFIG, "topics: name at least one topic, e.g. [orders]");
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)topics->count);
  for (size_t i = 0; i < topics->count; i++)
    rd_kafka_topic_partition_list_add(list, topics->items[i], RD_KAFKA_PARTITION_UA);
  *out = list;
  return SL_OK;
}

static const kafka_reserved reserved[] = {
    {"group.id", "set `group` instead"},
    {"auto.offset.reset", "set `start_at` instead"},
    {"auto.commit.interval.ms", "set `commit_interval` instead"},
    {"enable.auto.offset.store",
     "the kafka source stores offsets itself, only after delivery; it cannot be changed"},
    {"enable.auto.commit",
     "the kafka source relies on librdkafka committing the offsets it stores; it cannot be "
     "changed"},
    {"enable.partition.eof", "the kafka source never ends at the end of a partition"},
    {NULL, NULL},
};

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const kafka_source_config *cfg = config;
  if (!cfg->group || !cfg->group[0])
    return sl_error_set(err, SL_CONFIG, "group: must name the consumer group");
  if (cfg->batch_size < 0)
    return sl_error_set(err, SL_CONFIG,
                        "batch_size: must be 0 (the pipeline's batch_size) or more, got %lld",
                        (long long)cfg->batch_size);
  if (cfg->commit_interval == 0 || cfg->commit_interval > 86400000u)
    return sl_error_set(err, SL_CONFIG, "commit_interval: must be from 1ms to 24h");

  kafka_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  sl__kafka_log_init(&src->log, node, "kafka source");
  sl__kafka_log_init(&src->delivery_log, node, "kafka source");
  pthread_mutex_init(&src->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&src->wake, &attr);
  pthread_condattr_destroy(&attr);
  src->acks_tail = &src->acks;
  src->next_reread_ms = UINT64_MAX;
  atomic_init(&src->stopping, false);
  atomic_init(&src->destroying, false);

  char interval[32], client_id[256];
  snprintf(interval, sizeof interval, "%llu", (unsigned long long)cfg->commit_interval);
  snprintf(client_id, sizeof client_id, "sluice-%s-%s", node->pipeline ? node->pipeline : "",
           node->id ? node->id : "");
  const kafka_property props[] = {
      {"group.id", cfg->group, "group"},
      {"auto.offset.reset", cfg->start_at ? cfg->start_at : "earliest", "start_at"},
      {"enable.auto.offset.store", "false", "group"},
      {"enable.auto.commit", "true", "group"},
      {"auto.commit.interval.ms", interval, "commit_interval"},
      {"enable.partition.eof", "false", "group"},
      {"client.id", client_id, "options"},
      {NULL, NULL, NULL},
  };
  sl_status st = parse_topics(&cfg->topics, &src->topics, err);
  if (st == SL_OK)
    st = sl__kafka_conf_build(&cfg->client, props, reserved, &src->log, &src->conf, err);
  if (st == SL_OK) {
    rd_kafka_conf_set_rebalance_cb(src->conf, on_rebalance);
    st = open_consumer(src, err);
  }
  if (st != SL_OK) {
    destroy(src);
    return st;
  }
  *state = src;
  return SL_OK;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  kafka_source *src = state;
  src->port = port;
  src->batch_size =
      src->config->batch_size > 0 ? (size_t)src->config->batch_size : sl_source_batch_size(port);
  if (src->batch_size == 0) src->batch_size = 1;
  sl_status st = subscribe(src, err);
  if (st != SL_OK) return st;
  int rc = pthread_create(&src->thread, NULL, run, src);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "cannot start the kafka source thread: %s", strerror(rc));
  src->thread_started = true;
  return SL_OK;
}

static const char *const start_choices[] = {"earliest", "latest", NULL};

static const sl_conf_field fields[] = {
    SL_KAFKA_BROKERS_FIELD(kafka_source_config),
    {"topics", SL_CONF_LIST, SL_CONF_REQUIRED, NULL, offsetof(kafka_source_config, topics),
     "Topics to read, e.g. [orders, payments]; a name starting with ^ is a regular expression.",
     NULL},
    {"group", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(kafka_source_config, group),
     "The consumer group (group.id); instances in one group share the partitions.", NULL},
    {"start_at", SL_CONF_ENUM, 0, "earliest", offsetof(kafka_source_config, start_at),
     "Where a group without a committed offset starts (auto.offset.reset).", start_choices},
    {"batch_size", SL_CONF_INT, 0, "0", offsetof(kafka_source_config, batch_size),
     "Messages per batch at most; 0 uses the pipeline's batch_size.", NULL},
    {"commit_interval", SL_CONF_DURATION, 0, "5s", offsetof(kafka_source_config, commit_interval),
     "How often delivered offsets are committed (auto.commit.interval.ms); also at stop.", NULL},
    SL_KAFKA_CLIENT_FIELDS(kafka_source_config),
    {NULL},
};

const sl_connector sl_kafka_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "kafka",
    .kind = SL_NODE_SOURCE,
    .summary = "Reads topics in a consumer group; offsets are committed only after delivery.",
    .fields = fields,
    .config_size = sizeof(kafka_source_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
    .shareable = true,
};
