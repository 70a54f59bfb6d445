/*
 * mqtt_source.c - `type: mqtt` without inputs: subscribes to topic filters and emits one
 * event per message, with metadata `topic`, `qos` ("0"/"1") and `retain`
 * ("true"/"false").
 *
 * QoS 1 is acknowledged after delivery. libmosquitto 2.0 has no API to acknowledge a
 * message later: reading a QoS 1 PUBLISH queues its PUBACK at once. But in external
 * thread mode (mqtt_conn.h) queued packets reach the broker only when this source calls
 * mosquitto_loop_write, so the source thread holds every write back while any QoS 1
 * message read on the connection is not yet delivered (`unacked` > 0):
 *
 *   read a burst -> emit it as one batch -> ... -> its ack (every sink accepted it)
 *   -> unacked reaches 0 -> loop_write sends the queued PUBACKs (and anything else queued)
 *
 * A message whose PUBACK never left is sent again by the broker: after a restart (even
 * kill -9) thanks to the persistent session (clean_session: false, a stable client id),
 * and after a failed delivery because the source then drops the connection without
 * writing and reconnects. So QoS 1 is at least once; duplicates are the price. QoS 0 is
 * at most once: the broker forgets a message once it sent it.
 *
 * Flow control: the broker sends at most its `max_inflight_messages` (mosquitto: 20)
 * unacknowledged QoS 1 messages, so throughput is bounded by that many per round trip
 * through the pipeline. Should a broker allow more, the source stops reading once a
 * batch's worth (`batch_size`) waits for delivery, so the write gate always opens again
 * (keepalive pings wait behind it too).
 *
 * Threads: one of the source's own runs the connection (mqtt_conn) and emits; on_ack runs
 * on runtime threads and only updates counters under `lock`, then wakes the thread.
 *
 * Sections: state - events from the connection - acks - the source thread - the
 * connector.
 */
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connectors/mqtt/mqtt.h"

/* At shutdown, how long the last PUBACKs and the DISCONNECT may take to leave. */
#define CLOSE_TIMEOUT_MS 2000

/* ---- state -------------------------------------------------------------------------- */

typedef struct mqtt_source {
  const sl_node_ctx *node;
  const mqtt_source_config *config;
  mqtt_conn conn;
  char *filters_text; /* `topics` joined with ", ", for messages */
  sl_source_port *port;
  size_t batch_size;
  pthread_t thread;
  bool thread_started;
  int wake_fd;            /* eventfd: acks, stop and destroy wake the thread */
  atomic_bool stopping;   /* stop(): read no more, hand back what was delivered, end */
  atomic_bool destroying; /* destroy(): stop waiting for acks */

  /* The source thread's own. */
  sl_event_list *batch; /* messages read in this round */
  size_t batch_qos1;    /* how many of them are QoS 1 */
  bool subscribe_failed;

  /*
   * Shared with on_ack. `generation` counts connections: a batch's ack counts only
   * against the connection its messages were read on (after a reconnect the broker sends
   * them again anyway, and their PUBACKs died with the old connection).
   */
  pthread_mutex_t lock;
  uint64_t generation;
  uint64_t unacked; /* QoS 1 messages read on this connection, not yet delivered */
  sl_status failed; /* the first failed delivery on this connection, else SL_OK */
} mqtt_source;

/* One emitted batch holding QoS 1 messages; freed by on_ack (or by the emitter when the
 * emit failed, in which case on_ack is never called). */
typedef struct batch_ticket {
  mqtt_source *src;
  uint64_t generation;
  size_t qos1;
} batch_ticket;

static void wake(mqtt_source *src) {
  uint64_t one = 1;
  ssize_t ignored = write(src->wake_fd, &one, sizeof one);
  (void)ignored;
}

/* ---- events from the connection ------------------------------------------------------ */

static void on_connected(void *user, bool session_present) {
  mqtt_source *src = user;
  pthread_mutex_lock(&src->lock);
  src->generation++;
  src->unacked = 0;
  src->failed = SL_OK;
  pthread_mutex_unlock(&src->lock);
  /* Subscribing again is harmless when the session kept the subscriptions, and needed
   * when it did not (a broker restarted without persistence, a changed `topics`). MQTT
   * 3.1.1 has the broker send matching retained messages again for it. */
  const sl_conf_list *topics = &src->config->topics;
  int rc = mosquitto_subscribe_multiple(sl__mqtt_conn_ready(&src->conn), NULL, (int)topics->count,
                                        topics->items, (int)src->config->qos, 0, NULL);
  if (rc != MOSQ_ERR_SUCCESS) {
    /* Filters were checked at init, so only memory can be short here. */
    sl_node_log(src->node, SL_LOG_ERROR, "mqtt source: cannot subscribe: %s",
                mosquitto_strerror(rc));
    src->subscribe_failed = true; /* the thread drops the connection and tries again */
  }
}

static void on_subscribed(void *user, int count, const int *granted) {
  mqtt_source *src = user;
  const sl_conf_list *topics = &src->config->topics;
  for (int i = 0; i < count && (size_t)i < topics->count; i++) {
    if (granted[i] == 0x80)
      sl_node_log(src->node, SL_LOG_ERROR,
                  "mqtt source: the broker refused the subscription to \"%s\" (not allowed, "
                  "or not a filter it accepts); nothing from it will arrive",
                  topics->items[i]);
    else if (granted[i] < src->config->qos)
      sl_node_log(src->node, SL_LOG_WARN,
                  "mqtt source: the broker granted QoS %d instead of %d for \"%s\": its "
                  "messages arrive at most once",
                  granted[i], (int)src->config->qos, topics->items[i]);
  }
  /* Once per connection, like the connection's own lines. */
  sl_node_log(src->node, SL_LOG_INFO, "mqtt source: subscribed to %s at QoS %d", src->filters_text,
              (int)src->config->qos);
}

static sl_bytes keep(sl_event_list *batch, const void *bytes, size_t len) {
  sl_bytes copy;
  if (sl_event_list_copy(batch, bytes, len, &copy) != SL_OK) abort(); /* host out of memory */
  return copy;
}

static void on_message(void *user, const struct mosquitto_message *msg) {
  mqtt_source *src = user;
  if (!src->batch) {
    src->batch = malloc(sizeof *src->batch);
    if (!src->batch) abort(); /* host out of memory */
    sl_event_list_init(src->batch);
  }
  sl_event_list *batch = src->batch;
  size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
  uint8_t *payload;
  sl_meta *meta;
  if (sl_event_list_push(batch, len, 3, &payload, &meta) != SL_OK) abort();
  if (len) memcpy(payload, msg->payload, len);
  const char *qos = msg->qos > 0 ? "1" : "0", *retain = msg->retain ? "true" : "false";
  meta[0] = (sl_meta){keep(batch, "topic", 5), keep(batch, msg->topic, strlen(msg->topic))};
  meta[1] = (sl_meta){keep(batch, "qos", 3), keep(batch, qos, 1)};
  meta[2] = (sl_meta){keep(batch, "retain", 6), keep(batch, retain, strlen(retain))};
  if (msg->qos > 0) {
    /* Its PUBACK is queued from now on: the write gate closes until it is delivered. */
    src->batch_qos1++;
    pthread_mutex_lock(&src->lock);
    src->unacked++;
    pthread_mutex_unlock(&src->lock);
  }
}

/* ---- acks --------------------------------------------------------------------------- */

static void on_ack(void *cookie, sl_status delivered) {
  batch_ticket *ticket = cookie;
  mqtt_source *src = ticket->src;
  pthread_mutex_lock(&src->lock);
  if (ticket->generation == src->generation) {
    if (delivered == SL_OK)
      src->unacked -= ticket->qos1;
    else if (src->failed == SL_OK)
      src->failed = delivered;
  }
  pthread_mutex_unlock(&src->lock);
  free(ticket);
  wake(src);
}

/* Emits the messages read this round. False when the pipeline refused them (it is
 * closing): the source then stops. */
static bool emit_batch(mqtt_source *src) {
  if (!src->batch || src->batch->count == 0) return true;
  batch_ticket *ticket = NULL;
  if (src->batch_qos1 > 0) {
    ticket = malloc(sizeof *ticket);
    if (!ticket) abort(); /* host out of memory */
    ticket->src = src;
    ticket->qos1 = src->batch_qos1;
    pthread_mutex_lock(&src->lock);
    ticket->generation = src->generation; /* messages are read only on the current one */
    pthread_mutex_unlock(&src->lock);
  }
  src->batch_qos1 = 0;
  sl_status st = sl_source_emit(src->port, &src->batch, ticket ? on_ack : NULL, ticket);
  if (st == SL_OK) return true;
  /* Not delivered and never acked: no PUBACK may leave for them. */
  free(ticket);
  pthread_mutex_lock(&src->lock);
  if (src->failed == SL_OK) src->failed = st;
  pthread_mutex_unlock(&src->lock);
  return false;
}

/* ---- the source thread ---------------------------------------------------------------- */

/* Reads, emits and lets PUBACKs out until stop(). */
static void consume(mqtt_source *src) {
  while (!atomic_load(&src->stopping)) {
    pthread_mutex_lock(&src->lock);
    uint64_t unacked = src->unacked;
    sl_status failed = src->failed;
    pthread_mutex_unlock(&src->lock);

    /* Only once the broker accepted this connection: on_connected then reset `failed`,
     * which an ack of the previous connection may have set meanwhile. */
    if (src->conn.up && (failed != SL_OK || src->subscribe_failed)) {
      char why[200];
      if (src->subscribe_failed)
        snprintf(why, sizeof why, "subscribing failed");
      else
        snprintf(why, sizeof why,
                 "messages were not delivered (%s), so they are not acknowledged and the "
                 "broker sends them again",
                 sl_status_str(failed));
      src->subscribe_failed = false;
      sl__mqtt_conn_drop(&src->conn, why);
      continue;
    }
    bool may_write = unacked == 0 && failed == SL_OK;
    bool may_read = unacked < src->batch_size;
    size_t room = src->batch_size - (src->batch ? src->batch->count : 0);
    sl__mqtt_conn_poll(&src->conn, src->wake_fd, 1000, may_read, may_write,
                       room > 0 ? (unsigned)(room < 65536 ? room : 65536) : 1);
    if (!emit_batch(src)) return;
  }
}

/*
 * After stop: waits for the acks of what was emitted, then lets the PUBACKs out and
 * disconnects. If a delivery failed, or destroy() gives up waiting, the connection is
 * closed without a word: those messages come again next time.
 */
static void hand_back(mqtt_source *src) {
  while (src->conn.up) {
    pthread_mutex_lock(&src->lock);
    uint64_t unacked = src->unacked;
    sl_status failed = src->failed;
    pthread_mutex_unlock(&src->lock);
    if (failed != SL_OK) return;
    if (unacked == 0) {
      sl__mqtt_conn_close(&src->conn, CLOSE_TIMEOUT_MS);
      return;
    }
    if (atomic_load(&src->destroying)) return;
    sl__mqtt_conn_poll(&src->conn, src->wake_fd, 1000, false, false, 0);
  }
}

static void *run(void *arg) {
  mqtt_source *src = arg;
  consume(src);
  if (src->batch) {
    sl_event_list_destroy(src->batch);
    free(src->batch);
    src->batch = NULL;
  }
  sl_source_end(src->port);
  hand_back(src);
  return NULL;
}

/* ---- the connector -------------------------------------------------------------------- */

/* Checks every filter of `topics` and joins them for messages. */
static sl_status check_filters(mqtt_source *src, const sl_conf_list *topics, sl_error *err) {
  if (topics->count == 0)
    return sl_error_set(err, SL_CONFIG,
                        "topics: needs at least one topic filter, e.g. [sensors/#, alerts/+]");
  size_t len = 1;
  for (size_t i = 0; i < topics->count; i++) {
    const char *filter = topics->items[i];
    if (mosquitto_sub_topic_check2(filter, strlen(filter)) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(filter, (int)strlen(filter)) != MOSQ_ERR_SUCCESS)
      return sl_error_set(err, SL_CONFIG,
                          "topics: \"%s\" is not a topic filter (+ and # stand for whole levels, "
                          "# only at the end: a/+/c, a/#)",
                          filter);
    len += strlen(filter) + 2;
  }
  src->filters_text = malloc(len);
  if (!src->filters_text) abort(); /* host out of memory */
  src->filters_text[0] = '\0';
  for (size_t i = 0; i < topics->count; i++) {
    if (i > 0) strcat(src->filters_text, ", ");
    strcat(src->filters_text, topics->items[i]);
  }
  return SL_OK;
}

static void destroy(void *state);

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const mqtt_source_config *cfg = config;
  mqtt_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  src->wake_fd = -1;
  pthread_mutex_init(&src->lock, NULL);
  atomic_init(&src->stopping, false);
  atomic_init(&src->destroying, false);
  static const mqtt_conn_events events = {
      .on_connected = on_connected,
      .on_message = on_message,
      .on_subscribed = on_subscribed,
  };
  sl_status st = sl__mqtt_conn_init(&src->conn, node, &cfg->common, "mqtt source",
                                    cfg->clean_session, &events, src, err);
  if (st == SL_OK) st = check_filters(src, &cfg->topics, err);
  if (st == SL_OK && cfg->qos != 0 && cfg->qos != 1)
    st = sl_error_set(err, SL_CONFIG,
                      "qos: must be 0 (at most once) or 1 (at least once), got %lld; QoS 2 "
                      "is not supported",
                      (long long)cfg->qos);
  if (st != SL_OK) goto fail;
  src->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (src->wake_fd < 0) {
    st = sl_error_set(err, SL_IO, "mqtt source: eventfd: %s", strerror(errno));
    goto fail;
  }
  *state = src;
  return SL_OK;

fail:
  destroy(src);
  return st;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  mqtt_source *src = state;
  src->port = port;
  src->batch_size = sl_source_batch_size(port);
  if (src->batch_size == 0) src->batch_size = 1;
  int rc = pthread_create(&src->thread, NULL, run, src);
  if (rc != 0)
    return sl_error_set(err, SL_IO, "cannot start the mqtt source thread: %s", strerror(rc));
  src->thread_started = true;
  return SL_OK;
}

static void stop(void *state) {
  mqtt_source *src = state;
  atomic_store(&src->stopping, true);
  wake(src);
}

static void destroy(void *state) {
  mqtt_source *src = state;
  if (!src) return;
  atomic_store(&src->stopping, true);
  atomic_store(&src->destroying, true);
  if (src->wake_fd >= 0) wake(src);
  if (src->thread_started) pthread_join(src->thread, NULL);
  sl__mqtt_conn_destroy(&src->conn);
  free(src->filters_text);
  if (src->wake_fd >= 0) close(src->wake_fd);
  pthread_mutex_destroy(&src->lock);
  free(src);
}

static const sl_conf_field fields[] = {
    MQTT_URL_FIELD,
    {"topics", SL_CONF_LIST, SL_CONF_REQUIRED, NULL, offsetof(mqtt_source_config, topics),
     "Topic filters to subscribe to, e.g. [sensors/+/temp, alerts/#]; $share/GROUP/FILTER for "
     "a shared subscription.",
     NULL},
    {"qos", SL_CONF_INT, 0, "1", offsetof(mqtt_source_config, qos),
     "1: each message is acknowledged to the broker only once delivered (at least once); 0: "
     "at most once.",
     NULL},
    {"clean_session", SL_CONF_BOOL, 0, "false", offsetof(mqtt_source_config, clean_session),
     "Start a new session on each connection; the broker then forgets undelivered messages "
     "(at most once even with qos 1).",
     NULL},
    MQTT_SETTINGS_FIELDS,
    {NULL},
};

const sl_connector sl_mqtt_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "mqtt",
    .kind = SL_NODE_SOURCE,
    .summary = "Subscribes to MQTT topic filters; QoS 1 messages are acknowledged after delivery.",
    .fields = fields,
    .config_size = sizeof(mqtt_source_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
};
