/*
 * redis_source.c - `type: redis` without inputs: reads a stream through a consumer group
 * and XACKs each entry only once every sink downstream accepted it.
 *
 * One thread of the source's own drives a hiredis connection (redis_conn.h). It reads in
 * three phases, going back to the first after every (re)connection and after a batch
 * failed downstream:
 *
 *   pending   XREADGROUP ... STREAMS s 0, then onwards from the last id: this consumer's
 *             own pending entries (read before a crash, never acknowledged)
 *   claim     XAUTOCLAIM s group consumer claim_idle: entries other consumers (or an
 *             earlier name of this one) left pending longer than `claim_idle`; again every
 *             `claim_idle` while running. Skipped with claim_idle: 0.
 *   new       XREADGROUP ... BLOCK 200 STREAMS s >: entries nobody has read
 *
 * Each emitted batch is tracked (ids, outcome) until it is settled:
 *   - delivered (SL_OK): XACK, one command per batch, all settled batches pipelined;
 *   - failed downstream: the entries stay pending; reading pauses for the backoff (doubling
 *     while failures go on), then the pending phase reads them again;
 *   - SL_CLOSED (the pipeline stopped before delivering): left pending for the next run.
 * A tracked entry is never emitted twice by this instance: the pending and claim phases
 * skip ids still tracked (XAUTOCLAIM may hand back our own slow entries).
 *
 * XACK waits for the thread: after a read returns, or at the latest when a BLOCK read
 * times out (200 ms). An entry delivered but not yet XACKed when the host dies is read
 * again by the pending phase of the next run: at-least-once, with a few duplicates.
 *
 * Stopping: stop() sets `stopping` and writes the eventfd; a read in progress is
 * abandoned (its entries, if any, stay pending). The thread calls sl_source_end, then
 * keeps settling until every tracked batch was acknowledged, reconnecting if needed,
 * or until destroy() says to stop waiting; it then XACKs what is delivered one last time.
 *
 * Sections: state - stream ids - events - settling - reading - the thread - connector.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connectors/redis/redis_conn.h"
#include "core/utf8.h"

/* How long one XREADGROUP waits for new entries; also the longest an XACK waits. */
#define READ_BLOCK_MS 200

/* A failed batch or an error reply is logged at most this often. */
#define LOG_INTERVAL_MS 1000

typedef struct redis_source_config {
  char *stream;
  char *group;
  char *consumer; /* NULL: PIPELINE:NODE@HOSTNAME */
  char *start_id; /* where a new group starts */
  char *payload_field;
  int64_t batch_size; /* COUNT; 0: the pipeline's batch_size */
  uint64_t claim_idle;
  sl_redis_settings redis;
} redis_source_config;

typedef struct stream_id {
  uint64_t ms, seq;
} stream_id;

typedef struct redis_source redis_source;

/* One emitted batch, until it is settled. Only the source thread links and frees it;
 * on_ack (a runtime thread) only stores `outcome`. */
typedef struct tracked_batch {
  struct tracked_batch *next;
  redis_source *src;
  stream_id *ids; /* ascending */
  size_t count;
  atomic_int outcome; /* OUTCOME_PENDING until acked, then an sl_status */
  bool xack_sent;     /* settle() is waiting for this batch's XACK reply */
} tracked_batch;

#define OUTCOME_PENDING (-1)

typedef enum read_phase { PHASE_PENDING, PHASE_CLAIM, PHASE_NEW } read_phase;

struct redis_source {
  const sl_node_ctx *node;
  const redis_source_config *config;
  sl_source_port *port;
  pthread_t thread;
  bool thread_started;
  int wake_fd; /* stop, destroy and on_ack write here */
  atomic_bool stopping;
  atomic_bool destroying;

  sl_redis_target target;
  sl_redis_conn conn;
  char *consumer;
  char count_text[24];      /* COUNT */
  char claim_idle_text[24]; /* XAUTOCLAIM min-idle-time */

  /* The rest belongs to the source thread. */
  tracked_batch *tracked, **tracked_tail;
  read_phase phase;
  char cursor[48]; /* pending: the last id read; claim: XAUTOCLAIM's next start */
  bool group_ready;
  bool claim_supported;
  uint64_t next_claim_ms;
  uint64_t retry_at_ms; /* after a failed batch: read again from here; 0: none */
  sl_redis_backoff reconnect;
  sl_redis_backoff redeliver;
  uint64_t last_failure_log_ms;
  unsigned long failures_unlogged;
  uint64_t last_error_log_ms;
  char *ack_args_text; /* XACK's ids as text */
  size_t ack_args_cap;
};

/* ---- stream ids ------------------------------------------------------------------ */

static bool parse_id(const char *text, size_t len, stream_id *id) {
  uint64_t parts[2] = {0, 0};
  size_t part = 0, digits = 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (c == '-' && part == 0 && digits > 0) {
      part = 1;
      digits = 0;
    } else if (c >= '0' && c <= '9' && parts[part] <= (UINT64_MAX - 9) / 10) {
      parts[part] = parts[part] * 10 + (uint64_t)(c - '0');
      digits++;
    } else {
      return false;
    }
  }
  if (digits == 0) return false;
  id->ms = parts[0];
  id->seq = parts[1];
  return true;
}

static int compare_id(stream_id a, stream_id b) {
  if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

static bool batch_holds(const tracked_batch *batch, stream_id id) {
  size_t lo = 0, hi = batch->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = compare_id(batch->ids[mid], id);
    if (c == 0) return true;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

static bool is_tracked(const redis_source *src, stream_id id) {
  for (const tracked_batch *batch = src->tracked; batch; batch = batch->next)
    if (batch_holds(batch, id)) return true;
  return false;
}

/* ---- events ---------------------------------------------------------------------- */


/*
 * Copies a Redis string into the batch as metadata text. Metadata is UTF-8 (event.h)
 * while Redis strings are bytes: a byte that is not part of valid UTF-8 becomes U+FFFD.
 */
static sl_bytes meta_text(sl_event_list *batch, const char *str, size_t len) {
  sl_bytes out = {NULL, 0};
  const uint8_t *s = (const uint8_t *)(str ? str : "");
  size_t bad_at;
  if (sl__utf8_valid(s, len, &bad_at)) {
    if (sl_event_list_copy(batch, s, len, &out) != SL_OK) abort(); /* host out of memory */
    return out;
  }
  uint8_t *fixed = malloc(len * 3 + 1);
  if (!fixed) abort();
  size_t at = 0, i = 0;
  while (i < len) {
    size_t rel;
    if (sl__utf8_valid(s + i, len - i, &rel)) rel = len - i;
    memcpy(fixed + at, s + i, rel);
    at += rel;
    i += rel;
    if (i < len) {
      memcpy(fixed + at, "\xef\xbf\xbd", 3);
      at += 3;
      i++;
    }
  }
  if (sl_event_list_copy(batch, fixed, at, &out) != SL_OK) abort();
  free(fixed);
  return out;
}

static bool bytes_equal(const redisReply *reply, const char *text) {
  size_t n = strlen(text);
  return reply->type == REDIS_REPLY_STRING && reply->len == n && memcmp(reply->str, text, n) == 0;
}

/* The entry's metadata keeps one of these; fields with the same names are left out. */
static bool reserved_field(const redisReply *name) {
  return bytes_equal(name, "stream") || bytes_equal(name, "id");
}

/* Appends the event for one entry ([id, [field, value, ...]]) to the batch. */
static void push_entry(redis_source *src, sl_event_list *batch, const redisReply *id,
                       const redisReply *fields) {
  const char *payload_field = src->config->payload_field;
  const redisReply *payload = NULL;
  size_t meta_count = 2;
  for (size_t f = 0; f + 1 < fields->elements; f += 2) {
    const redisReply *name = fields->element[f];
    if (!payload && bytes_equal(name, payload_field))
      payload = fields->element[f + 1];
    else if (!reserved_field(name))
      meta_count++;
  }
  size_t payload_len = payload && payload->type == REDIS_REPLY_STRING ? payload->len : 0;
  uint8_t *payload_bytes = NULL;
  sl_meta *meta = NULL;
  if (sl_event_list_push(batch, payload_len, meta_count, &payload_bytes, &meta) != SL_OK) abort();
  if (payload_len) memcpy(payload_bytes, payload->str, payload_len);
  size_t m = 0;
  const char *stream = src->config->stream;
  meta[m].key = meta_text(batch, "stream", 6);
  meta[m++].value = meta_text(batch, stream, strlen(stream));
  meta[m].key = meta_text(batch, "id", 2);
  meta[m++].value = meta_text(batch, id->str, id->len);
  for (size_t f = 0; f + 1 < fields->elements; f += 2) {
    const redisReply *name = fields->element[f], *value = fields->element[f + 1];
    if (fields->element[f + 1] == payload || reserved_field(name)) continue;
    meta[m].key = meta_text(batch, name->str, name->type == REDIS_REPLY_STRING ? name->len : 0);
    meta[m++].value =
        meta_text(batch, value->str, value->type == REDIS_REPLY_STRING ? value->len : 0);
  }
}

/* An entry is [id, fields]; fields is nil for an entry deleted while pending. */
static bool entry_shape(const redisReply *entry, stream_id *id, bool *deleted) {
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) return false;
  const redisReply *id_reply = entry->element[0], *fields = entry->element[1];
  if (id_reply->type != REDIS_REPLY_STRING || !parse_id(id_reply->str, id_reply->len, id))
    return false;
  *deleted = fields->type == REDIS_REPLY_NIL;
  return *deleted || fields->type == REDIS_REPLY_ARRAY;
}

static void format_id(stream_id id, char *out, size_t size) {
  snprintf(out, size, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
}

static void on_ack(void *cookie, sl_status delivered) {
  tracked_batch *batch = cookie;
  redis_source *src = batch->src;
  atomic_store(&batch->outcome, (int)delivered);
  uint64_t one = 1;
  ssize_t ignored = write(src->wake_fd, &one, sizeof one);
  (void)ignored;
}

static void free_batch(tracked_batch *batch) {
  free(batch->ids);
  free(batch);
}

/* ---- settling -------------------------------------------------------------------- */

/* Sends XACK for `count` ids (borrowed) and reads nothing; the caller reads one reply. */
static void append_xack(redis_source *src, const stream_id *ids, size_t count) {
  size_t argc = 3 + count;
  const char **argv = malloc(argc * sizeof *argv);
  size_t *lens = malloc(argc * sizeof *lens);
  if (!argv || !lens) abort();
  if (src->ack_args_cap < count * 42) {
    free(src->ack_args_text);
    src->ack_args_cap = count * 42;
    src->ack_args_text = malloc(src->ack_args_cap);
    if (!src->ack_args_text) abort();
  }
  argv[0] = "XACK";
  argv[1] = src->config->stream;
  argv[2] = src->config->group;
  for (size_t i = 0; i < count; i++) {
    char *text = src->ack_args_text + i * 42;
    format_id(ids[i], text, 42);
    argv[3 + i] = text;
  }
  for (size_t i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  sl__redis_append(&src->conn, (int)argc, argv, lens);
  free(argv);
  free(lens);
}

static bool log_allowed(uint64_t *last_ms) {
  uint64_t now = sl__redis_now_ms();
  if (*last_ms && now - *last_ms < LOG_INTERVAL_MS) return false;
  *last_ms = now;
  return true;
}

/* A batch failed downstream: its entries stay pending and are read again later. */
static void schedule_redelivery(redis_source *src, const tracked_batch *batch, sl_status outcome) {
  if (atomic_load(&src->stopping)) return; /* the next run reads them */
  uint64_t pause = sl__redis_backoff_fail(&src->redeliver);
  uint64_t at = sl__redis_now_ms() + pause;
  if (src->retry_at_ms == 0 || at > src->retry_at_ms) src->retry_at_ms = at;
  if (!log_allowed(&src->last_failure_log_ms)) {
    src->failures_unlogged++;
    return;
  }
  char first[48], last[48], more[80] = "";
  format_id(batch->ids[0], first, sizeof first);
  format_id(batch->ids[batch->count - 1], last, sizeof last);
  if (src->failures_unlogged)
    snprintf(more, sizeof more, " (and %lu more failed batches since the last message)",
             src->failures_unlogged);
  src->failures_unlogged = 0;
  sl_node_log(src->node, SL_LOG_WARN,
              "%zu entries of stream '%s' (%s .. %s) were not delivered: %s%s; they stay "
              "pending and are read again in %llu ms",
              batch->count, src->config->stream, first, last, sl_status_str(outcome), more,
              (unsigned long long)pause);
}

/* The list's tail, after links were removed. */
static void find_tail(redis_source *src) {
  src->tracked_tail = &src->tracked;
  while (*src->tracked_tail) src->tracked_tail = &(*src->tracked_tail)->next;
}

/*
 * Settles every acknowledged batch: XACKs the delivered ones (pipelined, one command per
 * batch) and forgets the rest. Needs a connection. SL_OK, or SL_IO/SL_CLOSED from the
 * connection, in which case the batches not XACKed stay tracked for the next call.
 */
static sl_status settle(redis_source *src, sl_error *err) {
  size_t sent = 0;
  for (tracked_batch **link = &src->tracked; *link;) {
    tracked_batch *batch = *link;
    int outcome = atomic_load(&batch->outcome);
    batch->xack_sent = outcome == SL_OK;
    if (outcome == OUTCOME_PENDING || outcome == SL_OK) {
      if (outcome == SL_OK) {
        append_xack(src, batch->ids, batch->count);
        sent++;
      }
      link = &batch->next;
      continue;
    }
    if (outcome != SL_CLOSED) schedule_redelivery(src, batch, (sl_status)outcome);
    *link = batch->next;
    free_batch(batch);
  }
  /* The replies come in list order. */
  sl_status st = SL_OK;
  for (tracked_batch **link = &src->tracked; *link && sent > 0;) {
    tracked_batch *batch = *link;
    if (!batch->xack_sent) {
      link = &batch->next;
      continue;
    }
    redisReply *reply = NULL;
    st = sl__redis_reply(&src->conn, src->target.timeout_ms, &reply, err);
    if (st != SL_OK) break; /* the rest is sent again next time */
    sent--;
    if (reply->type == REDIS_REPLY_ERROR && log_allowed(&src->last_error_log_ms))
      sl_node_log(src->node, SL_LOG_WARN,
                  "XACK on stream '%s' answered %.*s; the entries count as settled",
                  src->config->stream, (int)reply->len, reply->str);
    freeReplyObject(reply);
    sl__redis_backoff_reset(&src->redeliver);
    *link = batch->next;
    free_batch(batch);
  }
  find_tail(src);
  return st;
}

/* ---- reading --------------------------------------------------------------------- */

/*
 * Emits the entries of `entries` (an array of [id, fields]) as one batch, leaving out
 * those already tracked when `skip_tracked`. Deleted entries (nil fields) are XACKed:
 * there is nothing left to deliver. *last gets the last id seen. SL_CLOSED when the
 * pipeline no longer takes batches.
 */
static sl_status emit_entries(redis_source *src, const redisReply *entries, bool skip_tracked,
                              stream_id *last, sl_error *err) {
  sl_event_list *batch = malloc(sizeof *batch);
  tracked_batch *ticket = calloc(1, sizeof *ticket);
  stream_id *deleted = NULL;
  size_t deleted_count = 0, malformed = 0;
  if (!batch || !ticket) abort();
  sl_event_list_init(batch);
  ticket->src = src;
  ticket->ids = malloc((entries->elements ? entries->elements : 1) * sizeof *ticket->ids);
  if (!ticket->ids) abort();
  atomic_init(&ticket->outcome, OUTCOME_PENDING);
  for (size_t i = 0; i < entries->elements; i++) {
    const redisReply *entry = entries->element[i];
    stream_id id;
    bool gone = false;
    if (!entry_shape(entry, &id, &gone)) {
      malformed++;
      continue;
    }
    *last = id;
    if (skip_tracked && is_tracked(src, id)) continue;
    if (gone) {
      if (!deleted) deleted = malloc(entries->elements * sizeof *deleted);
      if (!deleted) abort();
      deleted[deleted_count++] = id;
      continue;
    }
    push_entry(src, batch, entry->element[0], entry->element[1]);
    ticket->ids[ticket->count++] = id;
  }
  if (malformed && log_allowed(&src->last_error_log_ms))
    sl_node_log(src->node, SL_LOG_WARN, "ignored %zu entries of stream '%s' in an unexpected shape",
                malformed, src->config->stream);
  sl_status st = SL_OK;
  if (deleted_count) {
    sl_node_log(src->node, SL_LOG_WARN,
                "%zu pending entries of stream '%s' were deleted (XDEL or trimming) before they "
                "were delivered; acknowledging them",
                deleted_count, src->config->stream);
    append_xack(src, deleted, deleted_count);
    redisReply *reply = NULL;
    st = sl__redis_reply(&src->conn, src->target.timeout_ms, &reply, err);
    freeReplyObject(reply);
    free(deleted);
  }
  if (ticket->count == 0 || st != SL_OK) {
    sl_event_list_destroy(batch);
    free(batch);
    free_batch(ticket);
    return st;
  }
  /* Tracked before the emit: the ack may come before sl_source_emit returns. */
  *src->tracked_tail = ticket;
  src->tracked_tail = &ticket->next;
  if (sl_source_emit(src->port, &batch, on_ack, ticket) == SL_OK) return SL_OK;
  /* Not taken, and no ack will come: forget the batch; its entries stay pending. */
  for (tracked_batch **link = &src->tracked; *link; link = &(*link)->next) {
    if (*link != ticket) continue;
    *link = ticket->next;
    break;
  }
  find_tail(src);
  free_batch(ticket);
  return sl_error_set(err, SL_CLOSED, "the pipeline is stopping");
}

/* An error reply to a read: logged (at most once a second), then a pause. */
static sl_status read_refused(redis_source *src, const char *command, const redisReply *reply,
                              sl_error *err) {
  if (reply->len >= 7 && strncmp(reply->str, "NOGROUP", 7) == 0) {
    sl_node_log(src->node, SL_LOG_WARN,
                "consumer group '%s' of stream '%s' is gone (the stream was deleted, or Redis "
                "restarted without its data); creating it again",
                src->config->group, src->config->stream);
    src->group_ready = false;
    return sl_error_set(err, SL_AGAIN, "NOGROUP");
  }
  return sl_error_set(err, SL_AGAIN, "%s on stream '%s' answered %.*s", command,
                      src->config->stream, (int)(reply->len > 300 ? 300 : reply->len), reply->str);
}

/* XGROUP CREATE ... MKSTREAM; an existing group is fine. */
static sl_status create_group(redis_source *src, sl_error *err) {
  const char *argv[] = {
      "XGROUP",  "CREATE", src->config->stream, src->config->group, src->config->start_id,
      "MKSTREAM"};
  sl__redis_append(&src->conn, 6, argv, NULL);
  redisReply *reply = NULL;
  sl_status st = sl__redis_reply(&src->conn, src->target.timeout_ms, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
    st = sl_error_set(err, SL_AGAIN, "cannot create consumer group '%s' on stream '%s': %.*s",
                      src->config->group, src->config->stream,
                      (int)(reply->len > 300 ? 300 : reply->len), reply->str);
  } else {
    if (reply->type != REDIS_REPLY_ERROR)
      sl_node_log(src->node, SL_LOG_INFO, "created consumer group '%s' on stream '%s' at %s",
                  src->config->group, src->config->stream, src->config->start_id);
    src->group_ready = true;
  }
  freeReplyObject(reply);
  return st;
}

/* The one stream of an XREADGROUP reply ([[name, entries]]), or NULL when none. */
static const redisReply *read_entries(const redisReply *reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) return NULL;
  const redisReply *stream = reply->element[0];
  if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) return NULL;
  const redisReply *entries = stream->element[1];
  return entries->type == REDIS_REPLY_ARRAY ? entries : NULL;
}

/* XREADGROUP from `from` ("0"-based cursor or ">"), blocking `block_ms` when > 0. */
static sl_status read_group(redis_source *src, const char *from, uint64_t block_ms,
                            redisReply **reply, sl_error *err) {
  char block[24];
  snprintf(block, sizeof block, "%" PRIu64, block_ms);
  const char *argv[] = {
      "XREADGROUP", "GROUP", src->config->group, src->consumer,       "COUNT", src->count_text,
      "BLOCK",      block,   "STREAMS",          src->config->stream, from};
  const char **args = argv;
  int argc = 11;
  const char *no_block[] = {"XREADGROUP",    "GROUP",   src->config->group,  src->consumer, "COUNT",
                            src->count_text, "STREAMS", src->config->stream, from};
  if (block_ms == 0) {
    args = no_block;
    argc = 9;
  }
  sl__redis_append(&src->conn, argc, args, NULL);
  sl_status st = sl__redis_reply(&src->conn, src->target.timeout_ms + block_ms, reply, err);
  if (st != SL_OK) return st;
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    st = read_refused(src, "XREADGROUP", *reply, err);
    freeReplyObject(*reply);
    *reply = NULL;
  }
  return st;
}

/* Phase pending: this consumer's own unacknowledged entries, from `cursor` on. */
static sl_status read_pending(redis_source *src, sl_error *err) {
  redisReply *reply = NULL;
  sl_status st = read_group(src, src->cursor, 0, &reply, err);
  if (st != SL_OK) return st;
  const redisReply *entries = read_entries(reply);
  if (!entries || entries->elements == 0) {
    src->phase = src->claim_supported && src->config->claim_idle > 0 ? PHASE_CLAIM : PHASE_NEW;
    snprintf(src->cursor, sizeof src->cursor, "0-0");
    freeReplyObject(reply);
    return SL_OK;
  }
  stream_id last = {0, 0};
  st = emit_entries(src, entries, true, &last, err);
  format_id(last, src->cursor, sizeof src->cursor);
  freeReplyObject(reply);
  return st;
}

/* Phase claim: XAUTOCLAIM entries idle longer than claim_idle, from `cursor` on. */
static sl_status claim(redis_source *src, sl_error *err) {
  const char *argv[] = {"XAUTOCLAIM",  src->config->stream,  src->config->group,
                        src->consumer, src->claim_idle_text, src->cursor,
                        "COUNT",       src->count_text};
  sl__redis_append(&src->conn, 8, argv, NULL);
  redisReply *reply = NULL;
  sl_status st = sl__redis_reply(&src->conn, src->target.timeout_ms, &reply, err);
  if (st != SL_OK) return st;
  bool done = true;
  if (reply->type == REDIS_REPLY_ERROR) {
    if (strncasecmp(reply->str, "ERR unknown command", 19) == 0) {
      sl_node_log(src->node, SL_LOG_WARN,
                  "this Redis has no XAUTOCLAIM (Redis 6.2 or later has it): entries other "
                  "consumers leave pending are not claimed");
      src->claim_supported = false;
    } else {
      st = read_refused(src, "XAUTOCLAIM", reply, err);
      done = false;
    }
  } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
             reply->element[0]->type == REDIS_REPLY_STRING &&
             reply->element[1]->type == REDIS_REPLY_ARRAY) {
    stream_id last = {0, 0}, next = {0, 0};
    st = emit_entries(src, reply->element[1], true, &last, err);
    const redisReply *cursor = reply->element[0];
    if (parse_id(cursor->str, cursor->len, &next) && (next.ms || next.seq)) {
      format_id(next, src->cursor, sizeof src->cursor);
      done = false;
    }
  }
  freeReplyObject(reply);
  if (done) {
    src->phase = PHASE_NEW;
    src->next_claim_ms = sl__redis_now_ms() + src->config->claim_idle;
  }
  return st;
}

/* Phase new: entries nobody has read yet. */
static sl_status read_new(redis_source *src, sl_error *err) {
  if (src->claim_supported && src->config->claim_idle > 0 &&
      sl__redis_now_ms() >= src->next_claim_ms) {
    src->phase = PHASE_CLAIM;
    snprintf(src->cursor, sizeof src->cursor, "0-0");
    return SL_OK;
  }
  redisReply *reply = NULL;
  sl_status st = read_group(src, ">", READ_BLOCK_MS, &reply, err);
  if (st != SL_OK) return st;
  const redisReply *entries = read_entries(reply);
  stream_id last;
  if (entries && entries->elements) st = emit_entries(src, entries, false, &last, err);
  freeReplyObject(reply);
  return st;
}

/* ---- the thread ------------------------------------------------------------------ */

/* Connects and makes sure the group exists. SL_OK, SL_IO, SL_AGAIN or SL_CLOSED. */
static sl_status prepare(redis_source *src, sl_error *err) {
  if (!src->conn.ctx) {
    sl_status st = sl__redis_connect(&src->conn, err);
    if (st != SL_OK) return st;
    if (src->reconnect.failures)
      sl_node_log(src->node, SL_LOG_INFO, "connected to %s again after %u failed attempts",
                  src->target.shown_url, src->reconnect.failures);
    /* Whatever a lost read delivered is pending now: read it first. */
    src->phase = PHASE_PENDING;
    snprintf(src->cursor, sizeof src->cursor, "0");
  }
  if (!src->group_ready) {
    sl_status st = create_group(src, err);
    if (st != SL_OK) return st;
    src->phase = PHASE_PENDING;
    snprintf(src->cursor, sizeof src->cursor, "0");
  }
  return SL_OK;
}

/* Waits `ms` unless `flag` is set meanwhile (acks wake it too: the caller loops). */
static void pause_for(redis_source *src, uint64_t ms, const atomic_bool *flag) {
  uint64_t deadline = sl__redis_now_ms() + ms;
  for (;;) {
    uint64_t now = sl__redis_now_ms();
    if (atomic_load(flag) || now >= deadline) return;
    sl__redis_wait(src->wake_fd, deadline - now);
  }
}

/* A failed step: log it and pause the backoff. */
static void failed_step(redis_source *src, sl_status st, const sl_error *err,
                        const atomic_bool *flag) {
  uint64_t pause = sl__redis_backoff_fail(&src->reconnect);
  if (st == SL_IO)
    sl_node_log(src->node, SL_LOG_WARN, "%s; reconnecting in %llu ms", err->message,
                (unsigned long long)pause);
  else if (strcmp(err->message, "NOGROUP") != 0 && log_allowed(&src->last_error_log_ms))
    sl_node_log(src->node, SL_LOG_ERROR, "%s; trying again in %llu ms", err->message,
                (unsigned long long)pause);
  pause_for(src, pause, flag);
}

static void read_loop(redis_source *src) {
  src->conn.abort = &src->stopping;
  while (!atomic_load(&src->stopping)) {
    sl_error err = {{0}};
    sl_status st = prepare(src, &err);
    if (st == SL_OK) st = settle(src, &err);
    if (st == SL_OK && src->retry_at_ms) {
      uint64_t now = sl__redis_now_ms();
      if (now < src->retry_at_ms) {
        pause_for(src, src->retry_at_ms - now, &src->stopping);
        continue;
      }
      src->retry_at_ms = 0;
      src->phase = PHASE_PENDING;
      snprintf(src->cursor, sizeof src->cursor, "0");
    }
    if (st == SL_OK) {
      switch (src->phase) {
      case PHASE_PENDING:
        st = read_pending(src, &err);
        break;
      case PHASE_CLAIM:
        st = claim(src, &err);
        break;
      case PHASE_NEW:
        st = read_new(src, &err);
        break;
      }
    }
    if (st == SL_CLOSED) break;
    if (st == SL_OK)
      sl__redis_backoff_reset(&src->reconnect);
    else
      failed_step(src, st, &err, &src->stopping);
  }
}

/* After the end: XACK what is delivered until nothing is tracked or destroy begins. */
static void drain_loop(redis_source *src) {
  src->conn.abort = &src->destroying;
  while (src->tracked && !atomic_load(&src->destroying)) {
    sl_error err = {{0}};
    sl_status st = SL_OK;
    if (!src->conn.ctx) st = sl__redis_connect(&src->conn, &err);
    if (st == SL_OK) st = settle(src, &err);
    if (st == SL_CLOSED) break;
    if (st != SL_OK) {
      failed_step(src, st, &err, &src->destroying);
      continue;
    }
    sl__redis_backoff_reset(&src->reconnect);
    bool waiting = false;
    for (tracked_batch *batch = src->tracked; batch && !waiting; batch = batch->next)
      waiting = atomic_load(&batch->outcome) == OUTCOME_PENDING;
    if (waiting) sl__redis_wait(src->wake_fd, 1000);
  }
  if (src->tracked) {
    /* destroy() is waiting: one last XACK of what is delivered, bounded by `timeout`. */
    src->conn.abort = NULL;
    sl_error err = {{0}};
    sl_status st = src->conn.ctx ? SL_OK : sl__redis_connect(&src->conn, &err);
    if (st == SL_OK) st = settle(src, &err);
    if (st != SL_OK)
      sl_node_log(src->node, SL_LOG_WARN,
                  "could not acknowledge the last delivered entries (%s); they stay pending and "
                  "are delivered again by the next run",
                  err.message);
  }
}

static void *run(void *arg) {
  redis_source *src = arg;
  read_loop(src);
  sl_source_end(src->port);
  drain_loop(src);
  while (src->tracked) {
    tracked_batch *batch = src->tracked;
    src->tracked = batch->next;
    free_batch(batch);
  }
  src->tracked_tail = &src->tracked;
  sl__redis_close(&src->conn);
  return NULL;
}

/* ---- the connector --------------------------------------------------------------- */

static bool valid_start_id(const char *text) {
  stream_id id;
  return strcmp(text, "$") == 0 || parse_id(text, strlen(text), &id);
}

static void wake(redis_source *src) {
  uint64_t one = 1;
  ssize_t ignored = write(src->wake_fd, &one, sizeof one);
  (void)ignored;
}

static void stop(void *state) {
  redis_source *src = state;
  atomic_store(&src->stopping, true);
  wake(src);
}

static void destroy(void *state) {
  redis_source *src = state;
  if (!src) return;
  atomic_store(&src->stopping, true);
  atomic_store(&src->destroying, true);
  if (src->wake_fd >= 0) wake(src);
  if (src->thread_started) pthread_join(src->thread, NULL);
  sl__redis_close(&src->conn);
  sl__redis_target_destroy(&src->target);
  if (src->wake_fd >= 0) close(src->wake_fd);
  free(src->consumer);
  free(src->ack_args_text);
  free(src);
}

/* PIPELINE:NODE@HOSTNAME: stable across restarts on one host, distinct across hosts. */
static char *default_consumer(const sl_node_ctx *node) {
  char host[256] = "localhost";
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = '\0';
  size_t len = strlen(node->pipeline) + strlen(node->id) + strlen(host) + 3;
  char *name = malloc(len);
  if (!name) abort();
  snprintf(name, len, "%s:%s@%s", node->pipeline, node->id, host);
  return name;
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const redis_source_config *cfg = config;
  redis_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  src->wake_fd = -1;
  atomic_init(&src->stopping, false);
  atomic_init(&src->destroying, false);
  src->tracked_tail = &src->tracked;
  src->claim_supported = true;
  sl_status st = sl__redis_target_init(&src->target, &cfg->redis, node, err);
  if (st != SL_OK) goto fail;
  if (!cfg->stream || !cfg->stream[0]) {
    st = sl_error_set(err, SL_CONFIG, "stream: must not be empty");
    goto fail;
  }
  if (!cfg->group || !cfg->group[0]) {
    st = sl_error_set(err, SL_CONFIG, "group: must not be empty");
    goto fail;
  }
  if (!cfg->start_id || !valid_start_id(cfg->start_id)) {
    st = sl_error_set(err, SL_CONFIG,
                      "start_id: must be $ (new entries only), 0 (the whole stream) or an entry "
                      "id like 1700000000000-0, got \"%s\"",
                      cfg->start_id ? cfg->start_id : "");
    goto fail;
  }
  if (!cfg->payload_field || !cfg->payload_field[0]) {
    st = sl_error_set(err, SL_CONFIG, "payload_field: must not be empty");
    goto fail;
  }
  if (cfg->batch_size < 0) {
    st = sl_error_set(err, SL_CONFIG,
                      "batch_size: must be 0 (the pipeline's batch_size) or more, got %lld",
                      (long long)cfg->batch_size);
    goto fail;
  }
  src->consumer =
      cfg->consumer && cfg->consumer[0] ? strdup(cfg->consumer) : default_consumer(node);
  if (!src->consumer) abort();
  snprintf(src->claim_idle_text, sizeof src->claim_idle_text, "%" PRIu64, cfg->claim_idle);
  src->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (src->wake_fd < 0) {
    st = sl_error_set(err, SL_IO, "redis source: cannot make its wake-up eventfd");
    goto fail;
  }
  src->conn.target = &src->target;
  src->conn.wake_fd = src->wake_fd;
  src->conn.abort = &src->stopping;
  sl__redis_backoff_init(&src->reconnect, &cfg->redis);
  sl__redis_backoff_init(&src->redeliver, &cfg->redis);
  *state = src;
  return SL_OK;

fail:
  destroy(src);
  return st;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  redis_source *src = state;
  src->port = port;
  size_t count =
      src->config->batch_size > 0 ? (size_t)src->config->batch_size : sl_source_batch_size(port);
  snprintf(src->count_text, sizeof src->count_text, "%zu", count ? count : 1);
  int rc = pthread_create(&src->thread, NULL, run, src);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "cannot start the redis source thread: %s", strerror(rc));
  src->thread_started = true;
  return SL_OK;
}

static const sl_conf_field fields[] = {
    SL_REDIS_URL_FIELD(redis_source_config),
    {"stream", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(redis_source_config, stream),
     "The stream to read (its key).", NULL},
    {"group", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(redis_source_config, group),
     "The consumer group; created (with the stream, if missing) at start_id when absent.", NULL},
    {"consumer", SL_CONF_STRING, 0, NULL, offsetof(redis_source_config, consumer),
     "This reader's name in the group; default PIPELINE:NODE@HOSTNAME, stable across restarts.",
     NULL},
    {"start_id", SL_CONF_STRING, 0, "$", offsetof(redis_source_config, start_id),
     "Where a new group starts: $ (entries added from now on), 0 (the whole stream) or an id.",
     NULL},
    {"payload_field", SL_CONF_STRING, 0, "payload", offsetof(redis_source_config, payload_field),
     "The entry field that becomes the payload; the other fields become metadata.", NULL},
    {"batch_size", SL_CONF_INT, 0, "0", offsetof(redis_source_config, batch_size),
     "Entries per read (XREADGROUP COUNT); 0 uses the pipeline's batch_size.", NULL},
    {"claim_idle", SL_CONF_DURATION, 0, "1m", offsetof(redis_source_config, claim_idle),
     "Claim entries any consumer left pending longer than this (XAUTOCLAIM), at start and then "
     "as often; 0 never claims.",
     NULL},
    SL_REDIS_CONNECTION_FIELDS(redis_source_config),
    {NULL},
};

const sl_connector sl_redis_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "redis",
    .kind = SL_NODE_SOURCE,
    .summary = "Reads a Redis stream through a consumer group; XACKs entries once delivered.",
    .fields = fields,
    .config_size = sizeof(redis_source_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
    .shareable = true,
};
