/*
 * mqtt_conn.h - one MQTT connection driven by hand, shared by the `mqtt` source and sink.
 *
 * libmosquitto runs in "external thread" mode (mosquitto_threaded_set(true)): nothing is
 * read or written unless the owner calls mosquitto_loop_read / mosquitto_loop_write. The
 * source depends on that: a QoS 1 message's PUBACK is only queued when the message is
 * read, and reaches the broker only when the source lets the next write happen (after
 * the pipeline delivered the message). See mqtt_source.c.
 *
 * An mqtt_conn belongs to one thread (the connector's own): it connects without blocking
 * (mosquitto_connect_async; only the name lookup blocks), reconnects after a failure
 * with exponential backoff, and uses a new libmosquitto handle for every connection so
 * nothing queued on a lost connection (a PUBACK, a half-sent PUBLISH) is ever sent on
 * the next one.
 */
#ifndef SL_CONNECTORS_MQTT_CONN_H
#define SL_CONNECTORS_MQTT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/connector.h"

struct mosquitto;
struct mosquitto_message;

/* The settings the source and the sink share; the first member of both configs. */
typedef struct mqtt_settings {
  char *url;            /* mqtt://HOST[:PORT] or mqtts://HOST[:PORT] */
  char *client_id;      /* NULL or empty: "sluice-<pipeline>-<node>" */
  char *username;       /* NULL: none */
  char *password;       /* NULL: none; usually ${secret:NAME} */
  char *tls_ca;         /* mqtts: CA file; NULL: the system's CAs */
  char *tls_cert;       /* mqtts: client certificate, with tls_key */
  char *tls_key;        /* mqtts: the certificate's private key */
  uint64_t keepalive;   /* ms, whole seconds on the wire */
  uint64_t backoff;     /* ms before the first reconnect; doubles each time */
  uint64_t max_backoff; /* ms, the cap */
} mqtt_settings;

/* What the owner hears. All run on the owner's thread, inside mqtt_conn_poll. */
typedef struct mqtt_conn_events {
  /* The broker accepted the connection; `session_present` as CONNACK says. */
  void (*on_connected)(void *user, bool session_present);
  /* A PUBLISH arrived (borrowed until the call returns). For QoS 1 its PUBACK is now
   * queued on this connection. */
  void (*on_message)(void *user, const struct mosquitto_message *message);
  /* The broker answered a SUBSCRIBE: the QoS granted to each filter, 0x80 for refused. */
  void (*on_subscribed)(void *user, int count, const int *granted);
  /* A message this connection published is done: QoS 0 written to the socket, QoS 1
   * acknowledged by the broker. */
  void (*on_published)(void *user, int mid);
} mqtt_conn_events;

typedef struct mqtt_conn {
  const sl_node_ctx *node;
  const mqtt_settings *settings;
  const char *what; /* "mqtt source" or "mqtt sink", to start messages */
  char *host;       /* from the url */
  int port;
  bool tls;        /* mqtts:// */
  char *shown_url; /* mqtts://host:port, for messages */
  char *client_id; /* the one used: settings->client_id or the default */
  bool clean_session;
  mqtt_conn_events events;
  void *user;

  struct mosquitto *mosq; /* NULL between connections */
  bool up;                /* CONNACK accepted on this handle */
  uint64_t attempt_ms;    /* when the current connection attempt began */
  uint64_t up_since_ms;
  uint64_t next_attempt_ms;
  uint64_t delay_ms; /* the wait after the next failure */
  unsigned failures; /* connection attempts that failed since the last CONNACK */
  bool ever_up;
  char failure[256];   /* why the connection ended, set where it was noticed */
  char lib_error[200]; /* libmosquitto's last error line on this handle (TLS reasons) */
  char logged[256];    /* the last failure logged, so repeats are held back */
  uint64_t logged_ms;
} mqtt_conn;

/*
 * Checks `settings` and fills `conn` (zeroed by the caller). Nothing connects yet.
 * Statuses: SL_OK; SL_CONFIG with a message naming the setting (a bad url, TLS files
 * that cannot be read, a password without a username...).
 */
sl_status sl__mqtt_conn_init(mqtt_conn *conn, const sl_node_ctx *node,
                             const mqtt_settings *settings, const char *what, bool clean_session,
                             const mqtt_conn_events *events, void *user, sl_error *err);

/* Closes the connection without a DISCONNECT and frees what init allocated. */
void sl__mqtt_conn_destroy(mqtt_conn *conn);

/*
 * One round of I/O: starts a connection attempt when one is due, waits up to
 * `timeout_ms` for the socket or `wake_fd` (an eventfd, drained here), then writes what
 * is queued when `may_write`, then reads when `may_read` (at most `max_reads` packets),
 * then runs libmosquitto's keepalive. Writing comes first so that a PUBACK queued by a
 * message read in this round waits for the caller's next decision. While the connection
 * is being set up (CONNECT, CONNACK) it is read and written regardless. A lost
 * connection is logged and the next attempt scheduled after the backoff. Returns true
 * when `wake_fd` fired.
 */
bool sl__mqtt_conn_poll(mqtt_conn *conn, int wake_fd, int timeout_ms, bool may_read, bool may_write,
                        unsigned max_reads);

/* Ends the connection at once, sending nothing more (queued packets are dropped),
 * logs `why` and schedules the next attempt after the backoff. No-op when down. */
void sl__mqtt_conn_drop(mqtt_conn *conn, const char *why);

/* Ends the connection politely: writes what is queued plus a DISCONNECT, waiting at
 * most `timeout_ms` for the socket, then closes it. No-op when down. */
void sl__mqtt_conn_close(mqtt_conn *conn, int timeout_ms);

/* The handle of the current connection once the broker accepted it, else NULL. */
struct mosquitto *sl__mqtt_conn_ready(const mqtt_conn *conn);

uint64_t sl__mqtt_now_ms(void);

/* "Connection refused", "not authorised"...: libmosquitto's words for `rc`, with errno
 * read for MOSQ_ERR_ERRNO. */
const char *sl__mqtt_strerror(int rc, int saved_errno);

/*
 * The settings every mqtt connector has: MQTT_URL_FIELD first in its table, then its own,
 * then MQTT_SETTINGS_FIELDS. `common` is the first member of both configs, so these
 * offsets fit either.
 */
// clang-format off
#define MQTT_URL_FIELD                                                                             \
  {"url", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(mqtt_settings, url),                    \
   "The broker: mqtt://HOST[:PORT] (default port 1883) or mqtts://HOST[:PORT] for TLS (8883).",    \
   NULL}
#define MQTT_SETTINGS_FIELDS                                                                       \
  {"client_id", SL_CONF_STRING, 0, NULL, offsetof(mqtt_settings, client_id),                       \
   "The MQTT client id; default sluice-PIPELINE-NODE. Two connections with one id push each "      \
   "other off the broker.", NULL},                                                                 \
  {"username", SL_CONF_STRING, 0, NULL, offsetof(mqtt_settings, username),                         \
   "The user name to log in with.", NULL},                                                         \
  {"password", SL_CONF_STRING, 0, NULL, offsetof(mqtt_settings, password),                         \
   "The password, usually ${secret:NAME}; needs username.", NULL},                                 \
  {"tls_ca", SL_CONF_PATH, 0, NULL, offsetof(mqtt_settings, tls_ca),                               \
   "With mqtts://: the CA certificates (PEM) to verify the broker with; default the system's.",    \
   NULL},                                                                                          \
  {"tls_cert", SL_CONF_PATH, 0, NULL, offsetof(mqtt_settings, tls_cert),                           \
   "With mqtts://: a client certificate (PEM) to log in with; needs tls_key.", NULL},              \
  {"tls_key", SL_CONF_PATH, 0, NULL, offsetof(mqtt_settings, tls_key),                             \
   "With mqtts://: the private key (PEM, unencrypted) of tls_cert.", NULL},                        \
  {"keepalive", SL_CONF_DURATION, 0, "30s", offsetof(mqtt_settings, keepalive),                    \
   "How often an idle connection is checked (whole seconds, 5s to 18h); a broker that does not "   \
   "answer within it is taken for gone.", NULL},                                                   \
  {"backoff", SL_CONF_DURATION, 0, "100ms", offsetof(mqtt_settings, backoff),                      \
   "The wait before reconnecting after a failure; it doubles on each failure in a row.", NULL},    \
  {"max_backoff", SL_CONF_DURATION, 0, "10s", offsetof(mqtt_settings, max_backoff),                \
   "The longest wait between reconnection attempts.", NULL}
// clang-format on

#endif
