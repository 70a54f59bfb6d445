/*
 * nats_conn.h - what the four NATS connectors (`nats` and `jetstream`, source and sink)
 * share: the connection settings (url, credentials, TLS, reconnect backoff), one
 * connection with its callbacks logging through the node, and small helpers (backoff
 * delays, a log limiter, interruptible waits).
 *
 * A connection reconnects by itself for ever (nats.c's reconnect thread), waiting
 * `backoff`, doubling up to `max_backoff` between rounds. Only the first connection is
 * synchronous: when it fails, the node fails to start with a message naming the server.
 */
#ifndef SL_CONNECTORS_NATS_CONN_H
#define SL_CONNECTORS_NATS_CONN_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/connector.h"

/* The settings every NATS connector has; each connector's config struct embeds this as
 * its member `conn` and lists SL_NATS_CONN_FIELDS(its struct) in its settings table. */
typedef struct nats_conn_config {
  char *url;            /* nats://host:port or tls://host:port, comma-separated for a cluster */
  char *username;       /* with password */
  char *password;       /* usually ${secret:NAME} */
  char *token;          /* instead of username/password */
  char *creds;          /* a .creds file (JWT + NKey seed) */
  bool tls;             /* TLS although the URL says nats:// */
  char *tls_ca;         /* PEM file of the CAs that sign the server's certificate */
  char *tls_cert;       /* client certificate (PEM), with tls_key */
  char *tls_key;        /* its private key (PEM) */
  uint64_t backoff;     /* ms: the first reconnect / retry delay */
  uint64_t max_backoff; /* ms: the cap the delay doubles up to */
} nats_conn_config;

/* Settings-table entries for nats_conn_config, at member `conn` of `type`. */
#define SL_NATS_CONN_FIELDS(type)                                                                  \
  {"url",                                                                                          \
   SL_CONF_STRING,                                                                                 \
   0,                                                                                              \
   "nats://127.0.0.1:4222",                                                                        \
   offsetof(type, conn.url),                                                                       \
   "Server URL: nats://host:port, or tls://host:port for TLS; several servers of one cluster are " \
   "separated by commas.",                                                                         \
   NULL},                                                                                          \
      {"username",                                                                                 \
       SL_CONF_STRING,                                                                             \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, conn.username),                                                              \
       "User name to log in with (with password).",                                                \
       NULL},                                                                                      \
      {"password",                                                                                 \
       SL_CONF_STRING,                                                                             \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, conn.password),                                                              \
       "Password for username; write it as ${secret:NAME}.",                                       \
       NULL},                                                                                      \
      {"token",                                                                                    \
       SL_CONF_STRING,                                                                             \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, conn.token),                                                                 \
       "Authentication token (instead of username and password); write it as ${secret:NAME}.",     \
       NULL},                                                                                      \
      {"creds",                                                                                    \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, conn.creds),                                                                 \
       "A .creds file holding the user JWT and NKey seed (decentralised authentication).",         \
       NULL},                                                                                      \
      {"tls",                                                                                      \
       SL_CONF_BOOL,                                                                               \
       0,                                                                                          \
       "false",                                                                                    \
       offsetof(type, conn.tls),                                                                   \
       "Require TLS even though the URL starts with nats:// (tls:// always uses TLS).",            \
       NULL},                                                                                      \
      {"tls_ca",                                                                                   \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, conn.tls_ca),                                                                \
       "PEM file of the certificate authorities that sign the server's certificate.",              \
       NULL},                                                                                      \
      {"tls_cert",                                                                                 \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, conn.tls_cert),                                                              \
       "PEM client certificate for servers that verify clients (with tls_key).",                   \
       NULL},                                                                                      \
      {"tls_key",                                                                                  \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, conn.tls_key),                                                               \
       "PEM private key of tls_cert.",                                                             \
       NULL},                                                                                      \
      {"backoff",                                                                                  \
       SL_CONF_DURATION,                                                                           \
       0,                                                                                          \
       "100ms",                                                                                    \
       offsetof(type, conn.backoff),                                                               \
       "First delay before reconnecting or retrying; it doubles on each failure up to "            \
       "max_backoff.",                                                                             \
       NULL},                                                                                      \
  {                                                                                                \
    "max_backoff", SL_CONF_DURATION, 0, "10s", offsetof(type, conn.max_backoff),                   \
        "Longest delay between reconnect attempts or retries.", NULL                               \
  }

/* At most one log line a second for a repeating condition; the rest are counted. */
typedef struct nats_log_limit {
  pthread_mutex_t lock;
  uint64_t last_ms;
  unsigned long suppressed;
  bool logged;
} nats_log_limit;

/* One connection and what its callbacks need. Zero-initialise, then sl__nats_conn_open. */
typedef struct nats_conn {
  const sl_node_ctx *node;
  const nats_conn_config *config;
  const char *what; /* "nats source", "jetstream sink"...: starts every message */
  char *shown_url;  /* config->url with passwords replaced by ***, for messages */
  natsConnection *nc;
  atomic_bool closing; /* our own close: the disconnect it causes is not worth a warning */
  pthread_mutex_t lock;
  pthread_cond_t closed_cond; /* signalled by on_closed */
  bool closed;
  nats_log_limit async_errors; /* slow consumer and other asynchronous errors */
} nats_conn;

/* Checks the shared settings; SL_CONFIG with "key: what is wrong" otherwise. */
sl_status sl__nats_conn_check(const nats_conn_config *config, sl_error *err);

/*
 * Connects (blocking, bounded by nats.c's 2 s connect timeout per server). `what` names
 * the connector in messages and must outlive the connection. Statuses: SL_OK; SL_IO
 * (no server answered, authentication failed, TLS failed) with the reason in `err`;
 * SL_CONFIG for settings nats.c refuses (an unreadable certificate, say). On failure
 * nothing is left to close.
 */
sl_status sl__nats_conn_open(nats_conn *conn, const sl_node_ctx *node,
                             const nats_conn_config *config, const char *what, sl_error *err);

/* Flushes what is buffered (up to `flush_ms`), closes, waits for the closed callback
 * and frees. Safe on a connection that never opened. */
void sl__nats_conn_close(nats_conn *conn, int64_t flush_ms);

/* True while the connection is up (not reconnecting, not closed). */
bool sl__nats_conn_up(const nats_conn *conn);

/* The delay before retry number `attempt` (1 for the first): backoff doubling per
 * attempt, capped at max_backoff. */
uint64_t sl__nats_backoff_ms(const nats_conn_config *config, unsigned attempt);

/* "Timeout (the last error nats.c recorded on this thread)", into buf; returns buf. */
const char *sl__nats_status_text(natsStatus status, char *buf, size_t size);

/* `url` with any password in its userinfo replaced by "***"; malloc'd, caller frees. */
char *sl__nats_redact_url(const char *url);

void sl__nats_log_limit_init(nats_log_limit *limit);
void sl__nats_log_limit_destroy(nats_log_limit *limit);

/* Logs through the node unless a line went out less than a second ago (then counts it). */
void sl__nats_log_limited(nats_log_limit *limit, const sl_node_ctx *node, sl_log_level level,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A stop flag with a condition variable, so a stop can cut a wait short. */
typedef struct nats_stopper {
  pthread_mutex_t lock;
  pthread_cond_t wake; /* CLOCK_MONOTONIC */
  atomic_bool stopping;
} nats_stopper;

void sl__nats_stopper_init(nats_stopper *stopper);
void sl__nats_stopper_destroy(nats_stopper *stopper);

/* Sets the flag and wakes every wait. Any thread; does not block for long. */
void sl__nats_stopper_stop(nats_stopper *stopper);

/* Waits `ms` unless stopped meanwhile; false when stopped. */
bool sl__nats_stopper_sleep(nats_stopper *stopper, uint64_t ms);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t sl__nats_now_ms(void);

/* An absolute CLOCK_MONOTONIC deadline `ms` from now, for pthread_cond_timedwait on a
 * condition variable made with sl__nats_cond_init. */
struct timespec sl__nats_deadline(uint64_t ms);
void sl__nats_cond_init(pthread_cond_t *cond);

#endif
