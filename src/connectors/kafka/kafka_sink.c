/*
 * kafka_sink.c - `type: kafka` with inputs: produces each event as one message with the
 * idempotent producer (enable.idempotence=true, acks=all) and returns from `write` only
 * when every message of the batch has a successful delivery report.
 *
 * One message per event:
 *   value    the payload (an empty payload is an empty value, not a tombstone)
 *   topic    the `topic` template, e.g. "events-{{meta.region}}" (meta_template.h); an
 *            event without a metadata key the topic names fails the batch, naming the
 *            event and the key (there is no silent default topic)
 *   key      the `key` template, by default "{{meta.key}}" (so a Kafka source's keys
 *            pass through); missing metadata expands to nothing, and an empty key is
 *            no key: the default partitioner then spreads such messages
 *   headers  with `forward_headers`, metadata `header.NAME` becomes header NAME (and
 *            `header_base64.NAME` is decoded), then each `headers` entry NAME: template;
 *            an entry whose template names metadata the event lacks is left out
 *
 * Delivery: the batch is produced, then the sink thread polls the producer until every
 * message has its delivery report. librdkafka retries transient broker errors inside
 * `delivery_timeout` by itself; the messages still failed after that are produced again
 * after `backoff` (doubling up to `max_backoff`) until they are delivered or the sink is
 * stopped. Messages that can never be accepted (too large, an invalid topic name, not
 * authorised) fail the batch at once. A message produced again may be stored twice
 * (idempotence holds within one attempt): at-least-once. A fatal producer error (such
 * as an idempotence sequence failure) replaces the producer before the next attempt.
 *
 * Stopping: `stop` (any thread) makes a write that waits for reports purge the
 * producer's queues, collect the (purged) reports and return SL_CLOSED, and cuts a
 * backoff short. The runtime calls `stop` before joining the sink thread and `destroy`
 * after, so destroy never meets a running write.
 */
#include "connectors/kafka/kafka_sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/meta_template.h"

/* How long one producer poll may block while delivery reports are awaited. */
#define POLL_MS 100

/* The delivery report of one message of the batch being written. */
typedef struct delivery {
  bool delivered;
  rd_kafka_resp_err_t err; /* of the last report; NO_ERROR before any */
} delivery;

typedef struct kafka_sink {
  kafka_log log; /* first: librdkafka's callbacks get this struct as their opaque */
  const sl_node_ctx *node;
  const kafka_sink_config *config;
  rd_kafka_conf_t *conf; /* a copy goes to each producer made (again after a fatal error) */
  rd_kafka_t *rk;        /* NULL after a fatal error, until the next attempt */
  sl_meta_template topic, key;
  sl_meta_template *header_values; /* config->headers.count of them */
  sl_meta_template_buf topic_buf, key_buf, header_buf;
  delivery *slots;
  size_t slot_cap;
  size_t outstanding; /* messages produced and not yet reported; sink thread only */

  atomic_bool stopping;
  pthread_mutex_t lock;
  pthread_cond_t wake; /* signalled by stop(), to cut a backoff short */
} kafka_sink;

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Errors that producing again cannot cure. */
static bool permanent(rd_kafka_resp_err_t err) {
  switch (err) {
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_RECORD:
  case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
  case RD_KAFKA_RESP_ERR__INVALID_ARG:
    return true;
  default:
    return false;
  }
}

/* Called by rd_kafka_poll on the sink thread, once per produced message. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  kafka_sink *sink = opaque;
  delivery *slot = m->_private;
  slot->err = m->err;
  slot->delivered = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
  sink->outstanding--;
}

static sl_status open_producer(kafka_sink *sink, sl_error *err) {
  char why[512];
  sink->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_dup(sink->conf), why, sizeof why);
  if (!sink->rk)
    return sl_error_set(err, SL_CONFIG, "kafka sink: cannot create the producer: %s", why);
  return SL_OK;
}

/* --- one message ------------------------------------------------------------------ */

static int base64_digit(uint8_t c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes base64 (padding optional) into buf; false when it is not base64. */
static bool base64_decode(const sl_bytes *text, sl_meta_template_buf *buf) {
  size_t len = text->len;
  while (len > 0 && text->ptr[len - 1] == '=') len--;
  if (buf->cap < len + 1) {
    char *grown = realloc(buf->bytes, len + 1);
    if (!grown) abort(); /* host out of memory */
    buf->bytes = grown;
    buf->cap = len + 1;
  }
  uint32_t acc = 0;
  int bits = 0;
  buf->len = 0;
  for (size_t i = 0; i < len; i++) {
    int digit = base64_digit(text->ptr[i]);
    if (digit < 0) return false;
    acc = (acc << 6) | (uint32_t)digit;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf->bytes[buf->len++] = (char)((acc >> bits) & 0xff);
    }
  }
  return true;
}

static bool has_prefix(const sl_bytes *key, const char *prefix, size_t len) {
  return key->len > len && memcmp(key->ptr, prefix, len) == 0;
}

/* The headers of one message: forwarded metadata, then the configured ones. NULL when
 * there are none. The caller owns the result until rd_kafka_producev takes it. */
static rd_kafka_headers_t *make_headers(kafka_sink *sink, const sl_event *ev) {
  const kafka_sink_config *cfg = sink->config;
  rd_kafka_headers_t *headers = NULL;
  char name[512];
  for (size_t i = 0; cfg->forward_headers && i < ev->meta_count; i++) {
    const sl_meta *meta = &ev->meta[i];
    const void *value = meta->value.ptr;
    size_t value_len = meta->value.len, skip;
    if (has_prefix(&meta->key, "header.", 7)) {
      skip = 7;
    } else if (has_prefix(&meta->key, "header_base64.", 14)) {
      skip = 14;
      if (!base64_decode(&meta->value, &sink->header_buf)) continue;
      value = sink->header_buf.bytes;
      value_len = sink->header_buf.len;
    } else {
      continue;
    }
    snprintf(name, sizeof name, "%.*s", (int)(meta->key.len - skip), meta->key.ptr + skip);
    if (!headers) headers = rd_kafka_headers_new(8);
    rd_kafka_header_add(headers, name, -1, value, (ssize_t)value_len);
  }
  for (size_t i = 0; i < cfg->headers.count; i++) {
    if (sl_meta_template_expand(&sink->header_values[i], ev, &sink->header_buf)) continue;
    if (!headers) headers = rd_kafka_headers_new(8);
    rd_kafka_header_add(headers, cfg->headers.keys[i], -1, sink->header_buf.bytes,
                        (ssize_t)sink->header_buf.len);
  }
  return headers;
}

/*
 * Produces event `index`; its report will land in `slot`. Waits (polling for reports)
 * while the producer's queue is full. Returns the produce error, NO_ERROR when queued;
 * SL-level problems (an empty topic) are reported through *why and ERR__INVALID_ARG.
 */
static rd_kafka_resp_err_t produce(kafka_sink *sink, const sl_event *ev, size_t index,
                                   delivery *slot, char *why, size_t why_size) {
  const char *missing = sl_meta_template_expand(&sink->topic, ev, &sink->topic_buf);
  if (missing) {
    snprintf(why, why_size, "event %zu has no metadata '%s', which topic \"%s\" needs", index,
             missing, sink->config->topic);
    return RD_KAFKA_RESP_ERR__INVALID_ARG;
  }
  if (sink->topic_buf.len == 0) {
    snprintf(why, why_size, "event %zu: topic \"%s\" expands to an empty name", index,
             sink->config->topic);
    return RD_KAFKA_RESP_ERR__INVALID_ARG;
  }
  sl_meta_template_expand(&sink->key, ev, &sink->key_buf); /* missing: expands to nothing */
  rd_kafka_headers_t *headers = make_headers(sink, ev);
  rd_kafka_resp_err_t err;
  for (;;) {
    err = rd_kafka_producev(
        sink->rk, RD_KAFKA_V_TOPIC(sink->topic_buf.bytes),
        RD_KAFKA_V_VALUE((void *)ev->payload.ptr, ev->payload.len),
        RD_KAFKA_V_KEY(sink->key_buf.len ? sink->key_buf.bytes : NULL, sink->key_buf.len),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(&sink->stopping)) break;
    rd_kafka_poll(sink->rk, POLL_MS); /* reports free room in the queue */
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    sink->outstanding++;
    slot->err = RD_KAFKA_RESP_ERR_NO_ERROR;
  } else {
    if (headers) rd_kafka_headers_destroy(headers); /* not taken when producev fails */
    slot->err = err;
    snprintf(why, why_size, "event %zu to topic %s: %s", index, sink->topic_buf.bytes,
             rd_kafka_err2str(err));
  }
  return err;
}

/* --- write ------------------------------------------------------------------------ */

/* Waits for every outstanding report; purges the queues once stop() is called. */
static void await_reports(kafka_sink *sink) {
  bool purged = false;
  while (sink->outstanding > 0) {
    if (atomic_load(&sink->stopping) && !purged) {
      rd_kafka_purge(sink->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      purged = true;
    }
    rd_kafka_poll(sink->rk, POLL_MS);
  }
}

/*
 * One attempt: produces every message not delivered yet and waits for the reports.
 * *failed counts those still not delivered; *first_error says why for the first of
 * them (in `why`); *hopeless is set when one of them can never be delivered.
 */
static void attempt(kafka_sink *sink, const sl_event_list *batch, size_t *failed, bool *hopeless,
                    char *why, size_t why_size) {
  *failed = 0;
  *hopeless = false;
  why[0] = '\0';
  for (size_t i = 0; i < batch->count && !atomic_load(&sink->stopping); i++) {
    if (sink->slots[i].delivered) continue;
    char produce_why[512];
    rd_kafka_resp_err_t err =
        produce(sink, &batch->items[i], i, &sink->slots[i], produce_why, sizeof produce_why);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    if (!why[0]) snprintf(why, why_size, "%s", produce_why);
    if (permanent(err)) {
      *hopeless = true;
      break;
    }
  }
  await_reports(sink);
  for (size_t i = 0; i < batch->count; i++) {
    if (sink->slots[i].delivered) continue;
    (*failed)++;
    rd_kafka_resp_err_t err = sink->slots[i].err;
    if (err && permanent(err)) *hopeless = true;
    if (!why[0] && err)
      snprintf(why, why_size, "event %zu: %s (%s)", i, rd_kafka_err2str(err),
               rd_kafka_err2name(err));
  }
  if (*failed && !why[0]) snprintf(why, why_size, "no delivery report");
}

/* Waits `ms` unless stop() comes first; false when it did. */
static bool pause_unless_stopping(kafka_sink *sink, uint64_t ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&sink->lock);
  while (!atomic_load(&sink->stopping))
    if (pthread_cond_timedwait(&sink->wake, &sink->lock, &until) == ETIMEDOUT) break;
  pthread_mutex_unlock(&sink->lock);
  return !atomic_load(&sink->stopping);
}

/* A producer with a fatal error cannot produce again: drop it for a new one. */
static void drop_if_fatal(kafka_sink *sink) {
  char reason[512];
  rd_kafka_resp_err_t code = rd_kafka_fatal_error(sink->rk, reason, sizeof reason);
  if (!code) return;
  sl__kafka_log(&sink->log, SL_LOG_ERROR,
                "the producer failed for good (%s: %s); starting a new one",
                rd_kafka_err2name(code), reason);
  rd_kafka_purge(sink->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  await_reports(sink);
  rd_kafka_destroy(sink->rk);
  sink->rk = NULL;
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  kafka_sink *sink = state;
  const kafka_sink_config *cfg = sink->config;
  if (batch->count > sink->slot_cap) {
    delivery *grown = realloc(sink->slots, batch->count * sizeof *grown);
    if (!grown) abort(); /* host out of memory */
    sink->slots = grown;
    sink->slot_cap = batch->count;
  }
  memset(sink->slots, 0, batch->count * sizeof *sink->slots);
  uint64_t backoff = min_u64(cfg->client.backoff, cfg->client.max_backoff);
  char why[768];
  for (unsigned tries = 1;; tries++) {
    if (atomic_load(&sink->stopping))
      return sl_error_set(err, SL_CLOSED, "kafka sink: stopped before every message was confirmed");
    size_t failed = batch->count;
    bool hopeless = false;
    sl_error open_err;
    if (!sink->rk && open_producer(sink, &open_err) != SL_OK) {
      snprintf(why, sizeof why, "%.700s", open_err.message);
    } else {
      attempt(sink, batch, &failed, &hopeless, why, sizeof why);
      drop_if_fatal(sink);
    }
    if (failed == 0) return SL_OK;
    if (atomic_load(&sink->stopping))
      return sl_error_set(err, SL_CLOSED,
                          "kafka sink: stopped with %zu of %zu messages not confirmed", failed,
                          batch->count);
    if (hopeless)
      return sl_error_set(err, SL_IO, "kafka sink: %zu of %zu messages not delivered: %s", failed,
                          batch->count, why);
    sl__kafka_log(&sink->log, SL_LOG_WARN,
                  "%zu of %zu messages not delivered (%s); producing them again in %llu ms "
                  "(attempt %u)",
                  failed, batch->count, why, (unsigned long long)backoff, tries + 1);
    if (!pause_unless_stopping(sink, backoff))
      return sl_error_set(err, SL_CLOSED,
                          "kafka sink: stopped with %zu of %zu messages not confirmed", failed,
                          batch->count);
    backoff = min_u64(backoff > UINT64_MAX / 2 ? UINT64_MAX : backoff * 2, cfg->client.max_backoff);
  }
}

/* --- the connector ---------------------------------------------------------------- */

static void stop(void *state) {
  kafka_sink *sink = state;
  pthread_mutex_lock(&sink->lock);
  atomic_store(&sink->stopping, true);
  pthread_cond_broadcast(&sink->wake);
  pthread_mutex_unlock(&sink->lock);
}

static void destroy(void *state) {
  kafka_sink *sink = state;
  if (!sink) return;
  if (sink->rk) rd_kafka_destroy(sink->rk); /* no write runs: nothing is outstanding */
  if (sink->conf) rd_kafka_conf_destroy(sink->conf);
  sl_meta_template_destroy(&sink->topic);
  sl_meta_template_destroy(&sink->key);
  for (size_t i = 0; sink->header_values && i < sink->config->headers.count; i++)
    sl_meta_template_destroy(&sink->header_values[i]);
  free(sink->header_values);
  sl_meta_template_buf_destroy(&sink->topic_buf);
  sl_meta_template_buf_destroy(&sink->key_buf);
  sl_meta_template_buf_destroy(&sink->header_buf);
  free(sink->slots);
  pthread_cond_destroy(&sink->wake);
  pthread_mutex_destroy(&sink->lock);
  sl__kafka_log_destroy(&sink->log);
  free(sink);
}

static const kafka_reserved reserved[] = {
    {"enable.idempotence", "the kafka sink always uses the idempotent producer"},
    {"acks", "the kafka sink always waits for every in-sync replica (acks=all)"},
    {"request.required.acks", "the kafka sink always waits for every in-sync replica (acks=all)"},
    {"message.timeout.ms", "set `delivery_timeout` instead"},
    {"delivery.timeout.ms", "set `delivery_timeout` instead"},
    {"transactional.id", "the kafka sink does not use transactions"},
    {NULL, NULL},
};

static sl_status parse_templates(kafka_sink *sink, sl_error *err) {
  const kafka_sink_config *cfg = sink->config;
  sl_status st = sl_meta_template_parse("topic", cfg->topic, 0, &sink->topic, err);
  if (st == SL_OK && sl_meta_template_constant(&sink->topic) && !(cfg->topic && cfg->topic[0]))
    st = sl_error_set(err, SL_CONFIG, "topic: must not be empty");
  if (st == SL_OK) st = sl_meta_template_parse("key", cfg->key, 0, &sink->key, err);
  if (st != SL_OK) return st;
  sink->header_values =
      calloc(cfg->headers.count ? cfg->headers.count : 1, sizeof *sink->header_values);
  if (!sink->header_values) abort();
  for (size_t i = 0; i < cfg->headers.count && st == SL_OK; i++) {
    char field[300];
    snprintf(field, sizeof field, "headers: %s", cfg->headers.keys[i]);
    if (!cfg->headers.keys[i] || !cfg->headers.keys[i][0])
      return sl_error_set(err, SL_CONFIG, "headers: a header name must not be empty");
    st = sl_meta_template_parse(field, cfg->headers.values[i], 0, &sink->header_values[i], err);
  }
  return st;
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const kafka_sink_config *cfg = config;
  if (cfg->delivery_timeout == 0 || cfg->delivery_timeout > 2147483647u)
    return sl_error_set(err, SL_CONFIG, "delivery_timeout: must be from 1ms to 24 days");
  kafka_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = cfg;
  sl__kafka_log_init(&sink->log, node, "kafka sink");
  atomic_init(&sink->stopping, false);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&sink->lock, NULL);
  pthread_cond_init(&sink->wake, &attr);
  pthread_condattr_destroy(&attr);

  char timeout[32], client_id[256];
  snprintf(timeout, sizeof timeout, "%llu", (unsigned long long)cfg->delivery_timeout);
  snprintf(client_id, sizeof client_id, "sluice-%s-%s", node->pipeline ? node->pipeline : "",
           node->id ? node->id : "");
  const kafka_property props[] = {
      {"enable.idempotence", "true", "options"},
      {"acks", "all", "options"},
      {"message.timeout.ms", timeout, "delivery_timeout"},
      {"client.id", client_id, "options"},
      {NULL, NULL, NULL},
  };
  sl_status st = parse_templates(sink, err);
  if (st == SL_OK)
    st = sl__kafka_conf_build(&cfg->client, props, reserved, &sink->log, &sink->conf, err);
  if (st == SL_OK) {
    rd_kafka_conf_set_dr_msg_cb(sink->conf, on_delivery);
    st = open_producer(sink, err);
  }
  if (st != SL_OK) {
    destroy(sink);
    return st;
  }
  *state = sink;
  return SL_OK;
}

static const sl_conf_field fields[] = {
    SL_KAFKA_BROKERS_FIELD(kafka_sink_config),
    {"topic", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(kafka_sink_config, topic),
     "The topic to produce to; {{meta.KEY}} takes a metadata value, e.g. logs-{{meta.app}}.", NULL},
    {"key", SL_CONF_STRING, 0, "{{meta.key}}", offsetof(kafka_sink_config, key),
     "The message key, as a template; when it expands to nothing the message has no key.", NULL},
    {"headers", SL_CONF_MAP, 0, NULL, offsetof(kafka_sink_config, headers),
     "Headers added to every message: name to value template.", NULL},
    {"forward_headers", SL_CONF_BOOL, 0, "true", offsetof(kafka_sink_config, forward_headers),
     "Send each metadata pair header.NAME as header NAME.", NULL},
    {"delivery_timeout", SL_CONF_DURATION, 0, "30s", offsetof(kafka_sink_config, delivery_timeout),
     "How long librdkafka tries one message (message.timeout.ms) before the sink produces it "
     "again after a backoff.",
     NULL},
    SL_KAFKA_CLIENT_FIELDS(kafka_sink_config),
    {NULL},
};

const sl_connector sl_kafka_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "kafka",
    .kind = SL_NODE_SINK,
    .summary = "Produces each event as a message (idempotent, acks=all); waits for delivery.",
    .fields = fields,
    .config_size = sizeof(kafka_sink_config),
    .init = init,
    .stop = stop,
    .write = write_batch,
    .destroy = destroy,
};
