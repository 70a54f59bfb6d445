/*
 * nats_conn.c - the connection the NATS connectors share (see nats_conn.h): settings
 * checks, options, connect and close, the callbacks that log, and small helpers.
 *
 * Sections: helpers - checks - callbacks - open / close.
 */
#include "connectors/nats/nats_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* How long close waits for nats.c's closed callback before freeing anyway. It comes
 * within milliseconds; the bound only guards against a library bug hanging shutdown. */
#define CLOSED_WAIT_MS 5000

/* ---- helpers ----------------------------------------------------------------------- */

uint64_t sl__nats_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct timespec sl__nats_deadline(uint64_t ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += (time_t)(ms / 1000);
  deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  return deadline;
}

void sl__nats_cond_init(pthread_cond_t *cond) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
}

uint64_t sl__nats_backoff_ms(const nats_conn_config *config, unsigned attempt) {
  uint64_t delay = config->backoff;
  for (unsigned i = 1; i < attempt && delay < config->max_backoff; i++)
    delay = delay > UINT64_MAX / 2 ? UINT64_MAX : delay * 2;
  return delay < config->max_backoff ? delay : config->max_backoff;
}

const char *sl__nats_status_text(natsStatus status, char *buf, size_t size) {
  const char *detail = nats_GetLastError(NULL);
  const char *text = natsStatus_GetText(status);
  /* nats.c's detail may start with where it was set: "(conn.c:2088): ...". */
  if (detail && detail[0] == '(') {
    const char *after = strstr(detail, "): ");
    if (after) detail = after + 3;
  }
  if (detail && *detail && !strstr(detail, text) && !strstr(text, detail))
    snprintf(buf, size, "%s (%s)", text, detail);
  else if (detail && *detail && strstr(detail, text))
    snprintf(buf, size, "%s", detail);
  else
    snprintf(buf, size, "%s", text);
  return buf;
}

char *sl__nats_redact_url(const char *url) {
  /* Each comma-separated server may carry "user:password@". */
  size_t len = strlen(url);
  char *shown = malloc(len * 2 + 4);
  if (!shown) abort(); /* host out of memory */
  size_t out = 0;
  const char *at = url;
  while (*at) {
    size_t span = strcspn(at, ",");
    const char *authority = strstr(at, "://");
    authority = authority && authority < at + span ? authority + 3 : at;
    size_t host_span = strcspn(authority, "/?#,");
    const char *userinfo_end = memrchr(authority, '@', host_span);
    const char *colon =
        userinfo_end ? memchr(authority, ':', (size_t)(userinfo_end - authority)) : NULL;
    if (colon) {
      size_t head = (size_t)(colon + 1 - at);
      memcpy(shown + out, at, head);
      out += head;
      memcpy(shown + out, "***", 3);
      out += 3;
      size_t rest = (size_t)(at + span - userinfo_end);
      memcpy(shown + out, userinfo_end, rest);
      out += rest;
    } else {
      memcpy(shown + out, at, span);
      out += span;
    }
    at += span;
    if (*at == ',') shown[out++] = *at++;
  }
  shown[out] = '\0';
  return shown;
}

void sl__nats_log_limit_init(nats_log_limit *limit) {
  memset(limit, 0, sizeof *limit);
  pthread_mutex_init(&limit->lock, NULL);
}

void sl__nats_log_limit_destroy(nats_log_limit *limit) { pthread_mutex_destroy(&limit->lock); }

void sl__nats_log_limited(nats_log_limit *limit, const sl_node_ctx *node, sl_log_level level,
                          const char *fmt, ...) {
  uint64_t now = sl__nats_now_ms();
  pthread_mutex_lock(&limit->lock);
  if (limit->logged && now - limit->last_ms < 1000) {
    limit->suppressed++;
    pthread_mutex_unlock(&limit->lock);
    return;
  }
  unsigned long suppressed = limit->suppressed;
  limit->suppressed = 0;
  limit->logged = true;
  limit->last_ms = now;
  pthread_mutex_unlock(&limit->lock);
  char line[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (suppressed)
    sl_node_log(node, level, "%s (%lu similar lines suppressed)", line, suppressed);
  else
    sl_node_log(node, level, "%s", line);
}

void sl__nats_stopper_init(nats_stopper *stopper) {
  pthread_mutex_init(&stopper->lock, NULL);
  sl__nats_cond_init(&stopper->wake);
  atomic_init(&stopper->stopping, false);
}

void sl__nats_stopper_destroy(nats_stopper *stopper) {
  pthread_cond_destroy(&stopper->wake);
  pthread_mutex_destroy(&stopper->lock);
}

void sl__nats_stopper_stop(nats_stopper *stopper) {
  pthread_mutex_lock(&stopper->lock);
  atomic_store(&stopper->stopping, true);
  pthread_cond_broadcast(&stopper->wake);
  pthread_mutex_unlock(&stopper->lock);
}

bool sl__nats_stopper_sleep(nats_stopper *stopper, uint64_t ms) {
  struct timespec deadline = sl__nats_deadline(ms);
  pthread_mutex_lock(&stopper->lock);
  while (!atomic_load(&stopper->stopping))
    if (pthread_cond_timedwait(&stopper->wake, &stopper->lock, &deadline) == ETIMEDOUT) break;
  bool stopped = atomic_load(&stopper->stopping);
  pthread_mutex_unlock(&stopper->lock);
  return !stopped;
}

/* ---- checks ------------------------------------------------------------------------ */

static bool empty(const char *s) { return !s || !*s; }

sl_status sl__nats_conn_check(const nats_conn_config *config, sl_error *err) {
  if (empty(config->url)) return sl_error_set(err, SL_CONFIG, "url: must not be empty");
  const char *at = config->url;
  while (*at) {
    size_t span = strcspn(at, ",");
    while (span > 0 && *at == ' ') at++, span--;
    bool known = (span > 7 && strncasecmp(at, "nats://", 7) == 0) ||
                 (span > 6 && strncasecmp(at, "tls://", 6) == 0);
    if (!known) {
      char *shown = sl__nats_redact_url(config->url);
      sl_status st = sl_error_set(
          err, SL_CONFIG,
          "url: each server must look like nats://host:port or tls://host:port, got \"%s\"", shown);
      free(shown);
      return st;
    }
    at += span;
    if (*at == ',') at++;
  }
  if (!empty(config->password) && empty(config->username))
    return sl_error_set(err, SL_CONFIG, "password: needs username as well");
  if (!empty(config->token) && (!empty(config->username) || !empty(config->creds)))
    return sl_error_set(err, SL_CONFIG,
                        "token: use either token, username/password or creds, not several");
  if (!empty(config->creds) && !empty(config->username))
    return sl_error_set(err, SL_CONFIG, "creds: use either creds or username/password, not both");
  if (empty(config->tls_cert) != empty(config->tls_key))
    return sl_error_set(err, SL_CONFIG, "%s: tls_cert and tls_key go together; set both",
                        empty(config->tls_cert) ? "tls_key" : "tls_cert");
  if (config->backoff == 0) return sl_error_set(err, SL_CONFIG, "backoff: must be more than 0 ms");
  if (config->max_backoff < config->backoff)
    return sl_error_set(err, SL_CONFIG, "max_backoff: must be at least backoff (%llu ms)",
                        (unsigned long long)config->backoff);
  return SL_OK;
}

/* ---- callbacks (nats.c's threads) ------------------------------------------------------ */

static void on_disconnected(natsConnection *nc, void *closure) {
  nats_conn *conn = closure;
  if (atomic_load(&conn->closing)) return;
  sl_node_log(conn->node, SL_LOG_WARN,
              "%s: lost the connection to %s; reconnecting (first after %llu ms, then doubling "
              "up to %llu ms)",
              conn->what, conn->shown_url, (unsigned long long)conn->config->backoff,
              (unsigned long long)conn->config->max_backoff);
}

static void on_reconnected(natsConnection *nc, void *closure) {
  nats_conn *conn = closure;
  char url[256] = "";
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  char *shown = sl__nats_redact_url(url);
  sl_node_log(conn->node, SL_LOG_INFO, "%s: reconnected to %s", conn->what, shown);
  free(shown);
}

static void on_closed(natsConnection *nc, void *closure) {
  nats_conn *conn = closure;
  pthread_mutex_lock(&conn->lock);
  conn->closed = true;
  pthread_cond_broadcast(&conn->closed_cond);
  pthread_mutex_unlock(&conn->lock);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus status,
                           void *closure) {
  nats_conn *conn = closure;
  /* The nats source reports dropped messages itself, with a count. */
  if (status == NATS_SLOW_CONSUMER) return;
  const char *detail = nats_GetLastError(NULL);
  sl__nats_log_limited(&conn->async_errors, conn->node, SL_LOG_WARN, "%s: %s%s%s", conn->what,
                       natsStatus_GetText(status), detail && *detail ? ": " : "",
                       detail ? detail : "");
}

/* Between rounds of reconnect attempts: backoff doubling up to max_backoff. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure) {
  nats_conn *conn = closure;
  return (int64_t)sl__nats_backoff_ms(conn->config, attempts > 0 ? (unsigned)attempts : 1);
}

/* ---- open / close ------------------------------------------------------------------ */

/* nats.c's status for a bad option as a config error naming the key. */
static sl_status option_failed(natsStatus s, const char *key, const char *value, sl_error *err) {
  char why[512];
  return sl_error_set(err, SL_CONFIG, "%s: %s: %s", key, value ? value : "",
                      sl__nats_status_text(s, why, sizeof why));
}

static sl_status make_options(nats_conn *conn, natsOptions **out, sl_error *err) {
  const nats_conn_config *cfg = conn->config;
  natsOptions *opts = NULL;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) {
    char why[512];
    return sl_error_set(err, SL_IO, "cannot initialise the NATS library: %s",
                        sl__nats_status_text(s, why, sizeof why));
  }
  sl_status st = SL_OK;
  char name[512];
  snprintf(name, sizeof name, "sluice %s/%s", conn->node->pipeline ? conn->node->pipeline : "",
           conn->node->id ? conn->node->id : "");
  s = natsOptions_SetURL(opts, cfg->url);
  if (s != NATS_OK) {
    char why[512];
    st = sl_error_set(err, SL_CONFIG, "url: \"%s\": %s", conn->shown_url,
                      sl__nats_status_text(s, why, sizeof why));
    goto fail;
  }
  natsOptions_SetName(opts, name);
  natsOptions_SetMaxReconnect(opts, -1);
  natsOptions_SetCustomReconnectDelay(opts, reconnect_delay, conn);
  natsOptions_SetDisconnectedCB(opts, on_disconnected, conn);
  natsOptions_SetReconnectedCB(opts, on_reconnected, conn);
  natsOptions_SetClosedCB(opts, on_closed, conn);
  natsOptions_SetErrorHandler(opts, on_async_error, conn);
  if (!empty(cfg->username)) natsOptions_SetUserInfo(opts, cfg->username, cfg->password);
  if (!empty(cfg->token)) natsOptions_SetToken(opts, cfg->token);
  if (!empty(cfg->creds)) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, cfg->creds, NULL);
    if (s != NATS_OK) {
      st = option_failed(s, "creds", cfg->creds, err);
      goto fail;
    }
  }
  bool tls = cfg->tls || !empty(cfg->tls_ca) || !empty(cfg->tls_cert);
  if (tls) {
    s = natsOptions_SetSecure(opts, true);
    if (s != NATS_OK) {
      st = option_failed(s, "tls", "true", err);
      goto fail;
    }
  }
  if (!empty(cfg->tls_ca)) {
    s = natsOptions_LoadCATrustedCertificates(opts, cfg->tls_ca);
    if (s != NATS_OK) {
      st = option_failed(s, "tls_ca", cfg->tls_ca, err);
      goto fail;
    }
  }
  if (!empty(cfg->tls_cert)) {
    s = natsOptions_LoadCertificatesChain(opts, cfg->tls_cert, cfg->tls_key);
    if (s != NATS_OK) {
      st = option_failed(s, "tls_cert", cfg->tls_cert, err);
      goto fail;
    }
  }
  *out = opts;
  return SL_OK;

fail:
  natsOptions_Destroy(opts);
  return st;
}

sl_status sl__nats_conn_open(nats_conn *conn, const sl_node_ctx *node,
                             const nats_conn_config *config, const char *what, sl_error *err) {
  conn->node = node;
  conn->config = config;
  conn->what = what;
  conn->shown_url = sl__nats_redact_url(config->url);
  conn->nc = NULL;
  conn->closed = false;
  atomic_init(&conn->closing, false);
  pthread_mutex_init(&conn->lock, NULL);
  sl__nats_cond_init(&conn->closed_cond);
  sl__nats_log_limit_init(&conn->async_errors);

  natsOptions *opts = NULL;
  sl_status st = make_options(conn, &opts, err);
  if (st != SL_OK) goto fail;
  natsStatus s = natsConnection_Connect(&conn->nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    char why[512];
    sl__nats_status_text(s, why, sizeof why);
    conn->nc = NULL;
    st = sl_error_set(err, SL_IO, "cannot connect to %s: %s", conn->shown_url, why);
    goto fail;
  }
  return SL_OK;

fail:
  sl__nats_log_limit_destroy(&conn->async_errors);
  pthread_cond_destroy(&conn->closed_cond);
  pthread_mutex_destroy(&conn->lock);
  free(conn->shown_url);
  conn->shown_url = NULL;
  return st;
}

void sl__nats_conn_close(nats_conn *conn, int64_t flush_ms) {
  if (!conn->nc) return;
  if (flush_ms > 0 && sl__nats_conn_up(conn)) natsConnection_FlushTimeout(conn->nc, flush_ms);
  atomic_store(&conn->closing, true);
  natsConnection_Close(conn->nc);
  struct timespec deadline = sl__nats_deadline(CLOSED_WAIT_MS);
  pthread_mutex_lock(&conn->lock);
  while (!conn->closed)
    if (pthread_cond_timedwait(&conn->closed_cond, &conn->lock, &deadline) == ETIMEDOUT) break;
  pthread_mutex_unlock(&conn->lock);
  natsConnection_Destroy(conn->nc);
  conn->nc = NULL;
  sl__nats_log_limit_destroy(&conn->async_errors);
  pthread_cond_destroy(&conn->closed_cond);
  pthread_mutex_destroy(&conn->lock);
  free(conn->shown_url);
  conn->shown_url = NULL;
}

bool sl__nats_conn_up(const nats_conn *conn) {
  return conn->nc && natsConnection_Status(conn->nc) == NATS_CONN_STATUS_CONNECTED;
}
