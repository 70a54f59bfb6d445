/*
 * mqtt_sink.c - `type: mqtt` with inputs: publishes each event's payload to `topic`
 * (a template: "out/{{meta.topic}}"), with `qos` 0 or 1 and `retain`.
 *
 * When a batch is accepted:
 *   - qos 1: `write` returns once the broker acknowledged (PUBACK) every message of the
 *     batch. A connection lost on the way is made again after the backoff and every
 *     message not yet acknowledged is published again, so a message may reach the broker
 *     twice (at least once).
 *   - qos 0: once every message is written to the connection's socket. Nothing comes back
 *     from the broker, so a message written just before the connection broke is lost
 *     (at most once from there on).
 * A batch is refused at once, publishing nothing, when one of its events cannot be given
 * a topic (a missing metadata key, a + or # in a value); it fails with SL_INVALID.
 *
 * Threads: the connection needs service between batches too (keepalive pings, noticing
 * a broker that went away), so a thread of the sink's own runs it, started by the first
 * write. `write` (the runtime's sink thread) prepares the batch's topics, hands the batch
 * over as the current job and waits for the I/O thread to finish it. `stop` (any thread)
 * makes the I/O thread give up the job with SL_CLOSED, disconnect and end.
 *
 * Sections: state - the I/O thread - write - the connector.
 */
#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connectors/meta_template.h"
#include "connectors/mqtt/mqtt.h"

/* Messages published on the connection and not yet done, at most. Well under the 65535
 * message ids of a connection, so ids never wrap onto a message still in flight. */
#define WINDOW 1000

/* At shutdown, how long the DISCONNECT may take to leave. */
#define CLOSE_TIMEOUT_MS 2000

/* MQTT topics are at most 65535 bytes of UTF-8. */
#define TOPIC_MAX 65535

/* ---- state -------------------------------------------------------------------------- */

/* One event of the batch being written. */
typedef struct outgoing {
  const uint8_t *payload; /* borrowed from the batch while write waits */
  size_t len;
  size_t topic;   /* offset into mqtt_sink.topics */
  bool published; /* on the current connection */
  bool done;      /* qos 1: acknowledged; qos 0: written */
} outgoing;

typedef struct mqtt_sink {
  const sl_node_ctx *node;
  const mqtt_sink_config *config;
  mqtt_conn conn;
  sl_meta_template topic; /* `topic`, see meta_template.h */
  int wake_fd;            /* eventfd: a new job and stop wake the I/O thread */
  atomic_bool stopping;

  /* The writer's own: the batch's topics, NUL-separated, and one expansion. */
  char *topics;
  size_t topics_len, topics_cap;
  sl_meta_template_buf expanded;
  outgoing *messages;
  size_t messages_cap;

  /* Shared under `lock`. */
  pthread_mutex_t lock;
  pthread_cond_t changed; /* a job finished, or write returned */
  bool thread_started;
  pthread_t thread;
  bool writing; /* a write is running: destroy waits for it */
  bool job;     /* messages[0..count) are to be published */
  size_t count;
  sl_status job_status;
  char job_error[512];

  /* The I/O thread's own. It touches messages[] only while `active`: from taking a job
   * to finishing it, the span in which the writer leaves them alone. */
  bool active;
  size_t next; /* the first message not yet looked at on this connection */
  size_t done_count;
  size_t outstanding;        /* published on this connection, not yet done */
  uint32_t mid_index[65536]; /* message id -> message index + 1; 0: none */
} mqtt_sink;

/* ---- the I/O thread ----------------------------------------------------------------- */

/* A new connection: whatever was published on the old one and not done goes again. */
static void on_connected(void *user, bool session_present) {
  mqtt_sink *sink = user;
  if (!sink->active) return;
  memset(sink->mid_index, 0, sizeof sink->mid_index);
  sink->next = 0;
  sink->outstanding = 0;
  for (size_t i = 0; i < sink->count; i++) sink->messages[i].published = false;
}

static void on_published(void *user, int mid) {
  mqtt_sink *sink = user;
  if (mid < 0 || mid > 65535 || sink->mid_index[mid] == 0) return;
  outgoing *msg = &sink->messages[sink->mid_index[mid] - 1];
  sink->mid_index[mid] = 0;
  if (msg->done) return;
  msg->done = true;
  sink->done_count++;
  sink->outstanding--;
}

/* Ends the current job with `status` and wakes the writer. Under no lock. */
static void finish_job(mqtt_sink *sink, sl_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish_job(mqtt_sink *sink, sl_status status, const char *fmt, ...) {
  sink->active = false;
  pthread_mutex_lock(&sink->lock);
  sink->job = false;
  sink->job_status = status;
  sink->job_error[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sink->job_error, sizeof sink->job_error, fmt, ap);
    va_end(ap);
  }
  pthread_cond_broadcast(&sink->changed);
  pthread_mutex_unlock(&sink->lock);
}

/* Publishes what the window allows. False when the job failed for good. */
static bool publish_more(mqtt_sink *sink) {
  struct mosquitto *mosq = sl__mqtt_conn_ready(&sink->conn);
  const mqtt_sink_config *cfg = sink->config;
  while (mosq && sink->next < sink->count && sink->outstanding < WINDOW) {
    outgoing *msg = &sink->messages[sink->next];
    if (msg->done || msg->published) {
      sink->next++;
      continue;
    }
    int mid = 0;
    int rc = mosquitto_publish(mosq, &mid, sink->topics + msg->topic, (int)msg->len, msg->payload,
                               (int)cfg->qos, cfg->retain);
    if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
      sl__mqtt_conn_drop(&sink->conn, sl__mqtt_strerror(rc, 0));
      return true;
    }
    if (rc != MOSQ_ERR_SUCCESS) {
      finish_job(
          sink, SL_IO, "mqtt sink: cannot publish event %zu of %zu (%zu bytes) to \"%s\": %s",
          sink->next + 1, sink->count, msg->len, sink->topics + msg->topic, mosquitto_strerror(rc));
      return false;
    }
    msg->published = true;
    sink->mid_index[mid & 0xffff] = (uint32_t)sink->next + 1;
    sink->outstanding++;
    sink->next++;
  }
  return true;
}

static void *run(void *arg) {
  mqtt_sink *sink = arg;
  while (!atomic_load(&sink->stopping)) {
    if (!sink->active) {
      pthread_mutex_lock(&sink->lock);
      sink->active = sink->job;
      pthread_mutex_unlock(&sink->lock);
      if (sink->active) { /* a new batch: nothing of it is published yet */
        memset(sink->mid_index, 0, sizeof sink->mid_index);
        sink->next = sink->done_count = sink->outstanding = 0;
      }
    }
    if (sink->active && !publish_more(sink)) continue;
    sl__mqtt_conn_poll(&sink->conn, sink->wake_fd, 1000, true, true, 64);
    if (sink->active && sink->done_count == sink->count) finish_job(sink, SL_OK, NULL);
  }
  /* A job handed over but not yet taken is given up as well. */
  pthread_mutex_lock(&sink->lock);
  bool pending = sink->job;
  pthread_mutex_unlock(&sink->lock);
  if (pending)
    finish_job(sink, SL_CLOSED, "mqtt sink: stopped before %s accepted %zu of %zu messages",
               sink->conn.shown_url, sink->count - (sink->active ? sink->done_count : 0),
               sink->count);
  sl__mqtt_conn_close(&sink->conn, CLOSE_TIMEOUT_MS);
  return NULL;
}

/* ---- write -------------------------------------------------------------------------- */

static void wake(mqtt_sink *sink) {
  uint64_t one = 1;
  ssize_t ignored = write(sink->wake_fd, &one, sizeof one);
  (void)ignored;
}

/* Why `topic` (len bytes) cannot be published to ("is empty"), or NULL when it can. */
static const char *topic_problem(const char *topic, size_t len) {
  if (len == 0) return "is empty";
  if (len > TOPIC_MAX) return "is longer than 65535 bytes";
  if (memchr(topic, '\0', len)) return "holds a NUL byte";
  if (mosquitto_validate_utf8(topic, (int)len) != MOSQ_ERR_SUCCESS) return "is not UTF-8";
  if (mosquitto_pub_topic_check2(topic, len) != MOSQ_ERR_SUCCESS)
    return "holds + or #, which only subscriptions may use";
  return NULL;
}

/*
 * Fills sink->messages and sink->topics from `batch`. An event without a metadata key the
 * topic names, or whose topic is not one to publish to, fails the whole batch with
 * SL_INVALID (naming the event) before anything is published: a topic is an address, so
 * a wrong one is worse than none.
 */
static sl_status prepare(mqtt_sink *sink, const sl_event_list *batch, sl_error *err) {
  if (batch->count > sink->messages_cap) {
    outgoing *grown = realloc(sink->messages, batch->count * sizeof *grown);
    if (!grown) abort(); /* host out of memory */
    sink->messages = grown;
    sink->messages_cap = batch->count;
  }
  sink->topics_len = 0;
  for (size_t i = 0; i < batch->count; i++) {
    const sl_event *event = &batch->items[i];
    const char *missing = sl_meta_template_expand(&sink->topic, event, &sink->expanded);
    if (missing)
      return sl_error_set(err, SL_INVALID,
                          "mqtt sink: event %zu of %zu has no metadata '%s' for the topic "
                          "\"%s\"; nothing of this batch was published",
                          i + 1, batch->count, missing, sink->topic.text);
    const char *problem = topic_problem(sink->expanded.bytes, sink->expanded.len);
    if (problem)
      return sl_error_set(err, SL_INVALID,
                          "mqtt sink: event %zu of %zu: the topic \"%s\" gave \"%.200s\", which "
                          "%s; nothing of this batch was published",
                          i + 1, batch->count, sink->topic.text,
                          sink->expanded.bytes ? sink->expanded.bytes : "", problem);
    if (event->payload.len > 268435455)
      return sl_error_set(err, SL_INVALID,
                          "mqtt sink: event %zu of %zu is %zu bytes, more than MQTT allows "
                          "(256 MiB); nothing of this batch was published",
                          i + 1, batch->count, event->payload.len);
    size_t len = sink->expanded.len + 1;
    if (sink->topics_len + len > sink->topics_cap) {
      size_t want = (sink->topics_len + len) * 2;
      char *grown = realloc(sink->topics, want);
      if (!grown) abort(); /* host out of memory */
      sink->topics = grown;
      sink->topics_cap = want;
    }
    memcpy(sink->topics + sink->topics_len, sink->expanded.bytes, len);
    sink->messages[i] = (outgoing){
        .payload = event->payload.ptr, .len = event->payload.len, .topic = sink->topics_len};
    sink->topics_len += len;
  }
  return SL_OK;
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  mqtt_sink *sink = state;
  pthread_mutex_lock(&sink->lock);
  bool stopped = atomic_load(&sink->stopping);
  sink->writing = !stopped;
  pthread_mutex_unlock(&sink->lock);
  if (stopped) return sl_error_set(err, SL_CLOSED, "mqtt sink: stopped");
  sl_status st = batch->count ? prepare(sink, batch, err) : SL_OK;
  if (st != SL_OK || batch->count == 0) goto done;

  pthread_mutex_lock(&sink->lock);
  /* Checked again under the lock: the I/O thread looks for a last job under it after
   * seeing `stopping`, so a job is either seen there or refused here. */
  if (atomic_load(&sink->stopping)) {
    pthread_mutex_unlock(&sink->lock);
    st = sl_error_set(err, SL_CLOSED, "mqtt sink: stopped");
    goto done;
  }
  if (!sink->thread_started) {
    int rc = pthread_create(&sink->thread, NULL, run, sink);
    if (rc != 0) {
      pthread_mutex_unlock(&sink->lock);
      st = sl_error_set(err, SL_IO, "mqtt sink: cannot start its thread: %s", strerror(rc));
      goto done;
    }
    sink->thread_started = true;
  }
  sink->count = batch->count;
  sink->job = true;
  wake(sink);
  while (sink->job) pthread_cond_wait(&sink->changed, &sink->lock);
  st = sink->job_status;
  if (st != SL_OK) sl_error_set(err, st, "%s", sink->job_error);
  pthread_mutex_unlock(&sink->lock);

done:
  /* Once `writing` is false destroy may free the sink: touch nothing after the unlock. */
  pthread_mutex_lock(&sink->lock);
  sink->writing = false;
  pthread_cond_broadcast(&sink->changed);
  pthread_mutex_unlock(&sink->lock);
  return st;
}

/* ---- the connector -------------------------------------------------------------------- */

/* Makes a running write give up with SL_CLOSED, and any later one. Any thread. */
static void stop(void *state) {
  mqtt_sink *sink = state;
  pthread_mutex_lock(&sink->lock);
  atomic_store(&sink->stopping, true);
  pthread_mutex_unlock(&sink->lock);
  wake(sink);
}

static void destroy(void *state) {
  mqtt_sink *sink = state;
  if (!sink) return;
  pthread_mutex_lock(&sink->lock);
  atomic_store(&sink->stopping, true);
  pthread_mutex_unlock(&sink->lock);
  if (sink->wake_fd >= 0) wake(sink);
  pthread_mutex_lock(&sink->lock);
  bool joinable = sink->thread_started;
  pthread_mutex_unlock(&sink->lock);
  if (joinable) pthread_join(sink->thread, NULL);
  pthread_mutex_lock(&sink->lock);
  while (sink->writing) pthread_cond_wait(&sink->changed, &sink->lock);
  pthread_mutex_unlock(&sink->lock);
  sl__mqtt_conn_destroy(&sink->conn);
  sl_meta_template_destroy(&sink->topic);
  sl_meta_template_buf_destroy(&sink->expanded);
  free(sink->topics);
  free(sink->messages);
  if (sink->wake_fd >= 0) close(sink->wake_fd);
  pthread_cond_destroy(&sink->changed);
  pthread_mutex_destroy(&sink->lock);
  free(sink);
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const mqtt_sink_config *cfg = config;
  mqtt_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = cfg;
  sink->wake_fd = -1;
  atomic_init(&sink->stopping, false);
  pthread_mutex_init(&sink->lock, NULL);
  pthread_cond_init(&sink->changed, NULL);
  static const mqtt_conn_events events = {
      .on_connected = on_connected,
      .on_published = on_published,
  };
  sl_status st =
      sl__mqtt_conn_init(&sink->conn, node, &cfg->common, "mqtt sink", true, &events, sink, err);
  if (st == SL_OK) st = sl_meta_template_parse("topic", cfg->topic, 0, &sink->topic, err);
  if (st == SL_OK && sl_meta_template_constant(&sink->topic)) {
    const char *topic = cfg->topic ? cfg->topic : "";
    const char *problem = topic_problem(topic, strlen(topic));
    if (problem)
      st = sl_error_set(err, SL_CONFIG, "topic: \"%s\" cannot be published to: it %s", topic,
                        problem);
  }
  if (st == SL_OK && cfg->qos != 0 && cfg->qos != 1)
    st = sl_error_set(err, SL_CONFIG,
                      "qos: must be 0 (at most once) or 1 (at least once), got %lld; QoS 2 "
                      "is not supported",
                      (long long)cfg->qos);
  if (st != SL_OK) goto fail;
  sink->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sink->wake_fd < 0) {
    st = sl_error_set(err, SL_IO, "mqtt sink: eventfd: %s", strerror(errno));
    goto fail;
  }
  *state = sink;
  return SL_OK;

fail:
  destroy(sink);
  return st;
}

static const sl_conf_field fields[] = {
    MQTT_URL_FIELD,
    {"topic", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(mqtt_sink_config, topic),
     "The topic to publish to; {{meta.KEY}} is replaced by the event's metadata KEY, e.g. "
     "out/{{meta.topic}}.",
     NULL},
    {"qos", SL_CONF_INT, 0, "1", offsetof(mqtt_sink_config, qos),
     "1: a batch is accepted once the broker acknowledged every message (at least once); 0: "
     "once written to the connection.",
     NULL},
    {"retain", SL_CONF_BOOL, 0, "false", offsetof(mqtt_sink_config, retain),
     "Publish with the retain flag: the broker keeps each topic's last message for later "
     "subscribers.",
     NULL},
    MQTT_SETTINGS_FIELDS,
    {NULL},
};

const sl_connector sl_mqtt_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "mqtt",
    .kind = SL_NODE_SINK,
    .summary = "Publishes events to an MQTT topic (a template); QoS 1 waits for every PUBACK.",
    .fields = fields,
    .config_size = sizeof(mqtt_sink_config),
    .init = init,
    .stop = stop,
    .write = write_batch,
    .destroy = destroy,
};
