/*
 * kafka_client.h - what the Kafka source and sink share: the connection settings
 * (brokers, SASL, TLS, `options`, backoff), turning them into a librdkafka
 * configuration, and librdkafka's log and error callbacks routed to the node's log with
 * a rate limit.
 *
 * Both connectors put a kafka_client_config first in their settings struct and a
 * kafka_log first in their state struct: the settings table macros below name fields
 * as `client.NAME`, and the callbacks find the log through the handle's opaque pointer.
 */
#ifndef SL_CONNECTORS_KAFKA_CLIENT_H
#define SL_CONNECTORS_KAFKA_CLIENT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/connector.h"

/* Settings every Kafka node has; filled from the tables built by the macros below. */
typedef struct kafka_client_config {
  char *brokers;        /* bootstrap.servers: "host:port,host:port" */
  char *username;       /* SASL; NULL or empty: no SASL */
  char *password;       /* SASL; usually ${secret:NAME} */
  char *sasl_mechanism; /* PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 */
  bool tls;             /* connect with TLS (security.protocol SSL or SASL_SSL) */
  char *tls_ca;         /* ssl.ca.location */
  char *tls_cert;       /* ssl.certificate.location */
  char *tls_key;        /* ssl.key.location */
  sl_conf_map options;  /* librdkafka properties, set verbatim after ours */
  uint64_t backoff;     /* ms: first reconnect (and retry) delay */
  uint64_t max_backoff; /* ms: the longest one */
} kafka_client_config;

extern const char *const sl__kafka_sasl_choices[];

#define SL_KAFKA_BROKERS_FIELD(type)                                                               \
  {                                                                                                \
    "brokers", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(type, client.brokers),             \
        "Bootstrap brokers as host:port, comma-separated (librdkafka bootstrap.servers).", NULL    \
  }

#define SL_KAFKA_CLIENT_FIELDS(type)                                                               \
  {"username",                                                                                     \
   SL_CONF_STRING,                                                                                 \
   0,                                                                                              \
   NULL,                                                                                           \
   offsetof(type, client.username),                                                                \
   "SASL user name; setting it turns SASL on.",                                                    \
   NULL},                                                                                          \
      {"password",                                                                                 \
       SL_CONF_STRING,                                                                             \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, client.password),                                                            \
       "SASL password, usually ${secret:NAME}.",                                                   \
       NULL},                                                                                      \
      {"sasl_mechanism",                                                                           \
       SL_CONF_ENUM,                                                                               \
       0,                                                                                          \
       "PLAIN",                                                                                    \
       offsetof(type, client.sasl_mechanism),                                                      \
       "The SASL mechanism used with username and password.",                                      \
       sl__kafka_sasl_choices},                                                                    \
      {"tls",                                                                                      \
       SL_CONF_BOOL,                                                                               \
       0,                                                                                          \
       "false",                                                                                    \
       offsetof(type, client.tls),                                                                 \
       "Connect with TLS (security.protocol SSL, or SASL_SSL with a username).",                   \
       NULL},                                                                                      \
      {"tls_ca",                                                                                   \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, client.tls_ca),                                                              \
       "CA certificates (PEM) that verify the brokers; default: the system's.",                    \
       NULL},                                                                                      \
      {"tls_cert",                                                                                 \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, client.tls_cert),                                                            \
       "Client certificate (PEM) for TLS client authentication.",                                  \
       NULL},                                                                                      \
      {"tls_key",                                                                                  \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, client.tls_key),                                                             \
       "Private key (PEM) of tls_cert.",                                                           \
       NULL},                                                                                      \
      {"options",                                                                                  \
       SL_CONF_MAP,                                                                                \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, client.options),                                                             \
       "librdkafka properties set verbatim after Sluice's own, e.g. {client.id: etl}.",            \
       NULL},                                                                                      \
      {"backoff",                                                                                  \
       SL_CONF_DURATION,                                                                           \
       0,                                                                                          \
       "100ms",                                                                                    \
       offsetof(type, client.backoff),                                                             \
       "The first delay before reconnecting or trying again; it doubles each time.",               \
       NULL},                                                                                      \
  {                                                                                                \
    "max_backoff", SL_CONF_DURATION, 0, "10s", offsetof(type, client.max_backoff),                 \
        "The longest reconnect and retry delay.", NULL                                             \
  }

/* One property Sluice sets; `field` names the setting it came from, for messages. */
typedef struct kafka_property {
  const char *key;
  const char *value;
  const char *field;
} kafka_property;

/* A property `options` may not set, and why (shown in the error). */
typedef struct kafka_reserved {
  const char *key;
  const char *why;
} kafka_reserved;

/*
 * Rate-limited logging for librdkafka's callbacks, which run on its own threads: errors
 * and warnings at most once a second per node, with a count of the lines left out.
 */
typedef struct kafka_log {
  const sl_node_ctx *node;
  const char *what; /* "kafka source" or "kafka sink", the start of every line */
  pthread_mutex_t lock;
  uint64_t last_ms;
  bool logged;
  unsigned long suppressed;
} kafka_log;

void sl__kafka_log_init(kafka_log *log, const sl_node_ctx *node, const char *what);
void sl__kafka_log_destroy(kafka_log *log);

/* Logs one line ("WHAT: text"); ERROR and WARN lines go through the rate limit. */
void sl__kafka_log(kafka_log *log, sl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Builds a librdkafka configuration: the connection settings of `cfg`, then `props`
 * (ended by a {NULL} entry), then `cfg->options` verbatim, refusing the keys in
 * `reserved` (ended by {NULL}). The log and error callbacks are set with `log` as the
 * opaque pointer (so `log` must be the first member of the state passed as opaque).
 * SL_CONFIG names the setting or the option key at fault. The caller owns *out
 * (rd_kafka_conf_destroy, or hand it to rd_kafka_new).
 */
sl_status sl__kafka_conf_build(const kafka_client_config *cfg, const kafka_property *props,
                               const kafka_reserved *reserved, kafka_log *log,
                               rd_kafka_conf_t **out, sl_error *err);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t sl__kafka_now_ms(void);


/* Standard base64 with padding of `len` bytes into `out` (room for 4 * ((len + 2) / 3)
 * bytes); returns the length written. */
size_t sl__kafka_base64(const void *bytes, size_t len, char *out);

#endif
