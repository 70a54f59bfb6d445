/*
 * redis_conn.h - what the `redis` source and sink share: the connection settings and
 * their URL, one connection driven by poll(2), and the pause between attempts.
 *
 * hiredis 0.14.1 is used without its blocking calls: the socket is non-blocking and
 * every wait (connect, a reply, a pause before retrying) is a poll(2) on the socket and
 * on the connector's wake-up eventfd. So a `stop` is heard at once, a server that stops
 * answering costs at most `timeout`, and a worker loop never waits on Redis.
 *
 * TLS: this hiredis has no TLS (hiredis_ssl arrived with hiredis 1.0), so `rediss://`
 * and the `tls_*` settings are refused with an error saying so; nothing pretends.
 */
#ifndef SL_CONNECTORS_REDIS_CONN_H
#define SL_CONNECTORS_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/connector.h"

/* The settings both connectors have; filled from SL_REDIS_CONNECTION_FIELDS. */
typedef struct sl_redis_settings {
  char *url;      /* redis://[user:password@]host[:port][/db] */
  char *username; /* instead of the URL's user */
  char *password; /* instead of the URL's password; usually ${secret:NAME} */
  char *tls_ca;   /* refused: see the file comment */
  char *tls_cert;
  char *tls_key;
  uint64_t timeout;     /* ms allowed to connect, and for each reply */
  uint64_t backoff;     /* ms before the first retry; doubles on each retry */
  uint64_t max_backoff; /* ms, the longest pause between retries */
} sl_redis_settings;

/* `url` first in a table, then the connector's own settings, then these. */
#define SL_REDIS_URL_FIELD(type)                                                                   \
  {                                                                                                \
    "url", SL_CONF_STRING, 0, "redis://127.0.0.1:6379", offsetof(type, redis.url),                 \
        "The server: redis://[user:password@]host[:port][/db] (rediss:// is not supported).", NULL \
  }

#define SL_REDIS_CONNECTION_FIELDS(type)                                                           \
  {"username",                                                                                     \
   SL_CONF_STRING,                                                                                 \
   0,                                                                                              \
   NULL,                                                                                           \
   offsetof(type, redis.username),                                                                 \
   "The ACL user to AUTH as (Redis 6+); without it the password is the default user's.",           \
   NULL},                                                                                          \
      {"password",                                                                                 \
       SL_CONF_STRING,                                                                             \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, redis.password),                                                             \
       "The password sent with AUTH, e.g. ${secret:redis_password}.",                              \
       NULL},                                                                                      \
      {"tls_ca",                                                                                   \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, redis.tls_ca),                                                               \
       "Not supported: this build's hiredis (0.14) has no TLS, so setting it is an error.",        \
       NULL},                                                                                      \
      {"tls_cert",                                                                                 \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, redis.tls_cert),                                                             \
       "Not supported (no TLS in hiredis 0.14); setting it is an error.",                          \
       NULL},                                                                                      \
      {"tls_key",                                                                                  \
       SL_CONF_PATH,                                                                               \
       0,                                                                                          \
       NULL,                                                                                       \
       offsetof(type, redis.tls_key),                                                              \
       "Not supported (no TLS in hiredis 0.14); setting it is an error.",                          \
       NULL},                                                                                      \
      {"timeout",                                                                                  \
       SL_CONF_DURATION,                                                                           \
       0,                                                                                          \
       "5s",                                                                                       \
       offsetof(type, redis.timeout),                                                              \
       "Time allowed to connect and for each reply before the connection counts as lost.",         \
       NULL},                                                                                      \
      {"backoff",                                                                                  \
       SL_CONF_DURATION,                                                                           \
       0,                                                                                          \
       "100ms",                                                                                    \
       offsetof(type, redis.backoff),                                                              \
       "The first delay before reconnecting or retrying; each retry doubles it.",                  \
       NULL},                                                                                      \
  {                                                                                                \
    "max_backoff", SL_CONF_DURATION, 0, "10s", offsetof(type, redis.max_backoff),                  \
        "The longest delay between retries.", NULL                                                 \
  }

/* Where and as whom to connect, parsed from the settings once, at init. */
typedef struct sl_redis_target {
  char *host;        /* without [] around an IPv6 address */
  int port;          /* 6379 unless the URL says otherwise */
  long long db;      /* SELECTed after connecting when not 0 */
  char *username;    /* NULL: AUTH with the password alone */
  char *password;    /* NULL: no AUTH */
  char *shown_url;   /* the URL with any password shown as ***, for messages */
  char *client_name; /* CLIENT SETNAME, so CLIENT LIST shows which node this is */
  uint64_t timeout_ms;
} sl_redis_target;

/*
 * Checks the settings and fills *target (all strings malloc'd; free with
 * sl__redis_target_destroy, also after a failure). SL_CONFIG with a message naming the
 * setting when something is wrong, including any TLS setting.
 */
sl_status sl__redis_target_init(sl_redis_target *target, const sl_redis_settings *settings,
                                const sl_node_ctx *node, sl_error *err);
void sl__redis_target_destroy(sl_redis_target *target);

/*
 * One connection. `wake_fd` belongs to the connector (an eventfd its stop and acks write
 * to); whenever it is readable during a wait, the wait drains it and gives up with
 * SL_CLOSED if `*abort` is set (abort may be NULL: nothing interrupts the wait but the
 * timeout). A connector changes `abort` between phases (reading, then draining).
 */
typedef struct sl_redis_conn {
  const sl_redis_target *target;
  redisContext *ctx; /* NULL while disconnected */
  int wake_fd;
  const atomic_bool *abort;
} sl_redis_conn;

/*
 * Connects and authenticates (AUTH, SELECT, CLIENT SETNAME). Statuses: SL_OK; SL_IO with
 * the reason (refused, timed out, wrong password...): try again after a pause;
 * SL_CLOSED when *abort was set.
 */
sl_status sl__redis_connect(sl_redis_conn *conn, sl_error *err);

/* Drops the connection (commands sent and not answered are lost with it). */
void sl__redis_close(sl_redis_conn *conn);

/* Queues one command (arguments borrowed, copied here); sent by the next sl__redis_reply. */
void sl__redis_append(sl_redis_conn *conn, int argc, const char **argv, const size_t *lens);

/*
 * Sends what is queued and waits up to `wait_ms` for the next reply. *reply is owned by
 * the caller (freeReplyObject); an error reply is still SL_OK. Statuses: SL_OK; SL_IO
 * when the connection is lost, answers junk or stays silent (it is closed here; the
 * message says why); SL_CLOSED when *abort was set (also closed).
 */
sl_status sl__redis_reply(sl_redis_conn *conn, uint64_t wait_ms, redisReply **reply, sl_error *err);

/* Waits until `ms` passed or `wake_fd` became readable (then drained). */
void sl__redis_wait(int wake_fd, uint64_t ms);

/* Exponential backoff: `next` doubles after each pause, up to `max`. */
typedef struct sl_redis_backoff {
  uint64_t first, max, next;
  unsigned failures; /* in a row, for messages */
} sl_redis_backoff;

void sl__redis_backoff_init(sl_redis_backoff *backoff, const sl_redis_settings *settings);

/* Counts a failure and returns the pause to take before the next attempt. */
uint64_t sl__redis_backoff_fail(sl_redis_backoff *backoff);

/* A success: the next failure pauses `first` again. */
void sl__redis_backoff_reset(sl_redis_backoff *backoff);

/* Error replies that may pass on their own (LOADING, BUSY, OOM, READONLY, ...). */
bool sl__redis_error_transient(const redisReply *reply);

/* The wait's deadline helper: monotonic milliseconds. */
uint64_t sl__redis_now_ms(void);

#endif
