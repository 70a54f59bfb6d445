/*
 * mqtt_conn.c - one MQTT connection driven by hand (see mqtt_conn.h).
 *
 * Sections: helpers - checking the settings - a handle per connection - losing and
 * ending a connection - one round of I/O.
 *
 * Reconnecting: an attempt that fails, or a connection that ends, schedules the next
 * attempt after `delay_ms`, which starts at `backoff` and doubles up to `max_backoff`.
 * It falls back to `backoff` only after a connection that stayed up for STABLE_MS, so a
 * broker that accepts and then drops at once (another client with the same id, say) is
 * not hammered. Failures are logged once, then again only when the reason changes or
 * every LOG_REPEAT_MS, with the count of attempts in between.
 */
#include "connectors/mqtt/mqtt_conn.h"

#include <errno.h>
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A connection that lasted this long resets the backoff. */
#define STABLE_MS 1000
/* The broker must accept a new connection (CONNACK) within this. */
#define CONNECT_TIMEOUT_MS 10000
/* A failure that repeats itself is logged again after this. */
#define LOG_REPEAT_MS 10000
/* libmosquitto's keepalive bookkeeping (loop_misc) wants a call about once a second. */
#define MISC_INTERVAL_MS 1000

/* ---- helpers ------------------------------------------------------------------------ */

uint64_t sl__mqtt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *sl__mqtt_strerror(int rc, int saved_errno) {
  if (rc == MOSQ_ERR_ERRNO) return strerror(saved_errno);
  if (rc == MOSQ_ERR_CONN_LOST) return "the broker closed the connection";
  if (rc == MOSQ_ERR_KEEPALIVE) return "the broker did not answer a keepalive ping";
  /* libmosquitto's sentences end with a full stop; messages here go on after them. */
  static __thread char text[128];
  snprintf(text, sizeof text, "%s", mosquitto_strerror(rc));
  size_t len = strlen(text);
  if (len > 0 && text[len - 1] == '.') text[len - 1] = '\0';
  return text;
}

/* Why a call failed with `rc`, into conn->failure: for TLS, OpenSSL's reason as
 * libmosquitto logged it ("certificate verify failed") says more than the code. */
static void note_failure(mqtt_conn *conn, int rc, int saved_errno) {
  if (rc == MOSQ_ERR_TLS && conn->lib_error[0])
    snprintf(conn->failure, sizeof conn->failure, "TLS failed: %s", conn->lib_error);
  else
    snprintf(conn->failure, sizeof conn->failure, "%s", sl__mqtt_strerror(rc, saved_errno));
}

/* mosquitto_lib_init is not thread safe and runs once per process; never undone, since
 * other code in the process may use libmosquitto too. */
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void init_lib_once(void) { mosquitto_lib_init(); }

static char *dup_range(const char *text, size_t len) {
  char *copy = strndup(text, len);
  if (!copy) abort(); /* host out of memory */
  return copy;
}

/* ---- checking the settings ------------------------------------------------------------ */

/* mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; HOST may be [IPv6]. */
static sl_status parse_url(mqtt_conn *conn, const char *url, sl_error *err) {
  const char *rest;
  if (strncmp(url, "mqtt://", 7) == 0) {
    rest = url + 7;
  } else if (strncmp(url, "mqtts://", 8) == 0) {
    rest = url + 8;
    conn->tls = true;
  } else {
    return sl_error_set(err, SL_CONFIG,
                        "url: must start with mqtt:// or mqtts:// (TLS), e.g. "
                        "mqtt://127.0.0.1:1883; got \"%s\"",
                        url);
  }
  size_t len = strlen(rest);
  if (len > 0 && rest[len - 1] == '/') len--; /* "mqtt://host:1883/" is fine */
  if (memchr(rest, '@', len))
    return sl_error_set(err, SL_CONFIG,
                        "url: credentials do not go in the url; use username and password "
                        "(password: ${secret:NAME})");
  if (strcspn(rest, "/?#") < len)
    return sl_error_set(err, SL_CONFIG,
                        "url: \"%s\" has a path or a query; an mqtt url is only "
                        "mqtt://HOST[:PORT]",
                        url);
  const char *host = rest, *host_end, *port_text = NULL;
  if (*host == '[') {
    host_end = memchr(host, ']', len);
    if (!host_end) return sl_error_set(err, SL_CONFIG, "url: \"%s\": a [ without its ]", url);
    host++;
    if (host_end + 1 < rest + len) {
      if (host_end[1] != ':')
        return sl_error_set(err, SL_CONFIG, "url: \"%s\": expected :PORT after ]", url);
      port_text = host_end + 2;
    }
  } else {
    const char *colon = memchr(host, ':', len);
    host_end = colon ? colon : rest + len;
    if (colon) port_text = colon + 1;
  }
  if (host_end == host) return sl_error_set(err, SL_CONFIG, "url: \"%s\" names no host", url);
  conn->port = conn->tls ? 8883 : 1883;
  if (port_text) {
    int port = 0;
    const char *p = port_text;
    for (; p < rest + len && *p >= '0' && *p <= '9' && port <= 65535; p++)
      port = port * 10 + (*p - '0');
    if (p != rest + len || p == port_text || port < 1 || port > 65535)
      return sl_error_set(err, SL_CONFIG, "url: \"%s\": the port must be a number from 1 to 65535",
                          url);
    conn->port = port;
  }
  conn->host = dup_range(host, (size_t)(host_end - host));
  size_t shown_len = strlen(url) + 16;
  conn->shown_url = malloc(shown_len);
  if (!conn->shown_url) abort();
  bool v6 = strchr(conn->host, ':') != NULL;
  snprintf(conn->shown_url, shown_len, "%s://%s%s%s:%d", conn->tls ? "mqtts" : "mqtt",
           v6 ? "[" : "", conn->host, v6 ? "]" : "", conn->port);
  return SL_OK;
}

/* The first OpenSSL error as text, for messages about certificate files. */
static const char *openssl_reason(void) {
  unsigned long code = ERR_get_error();
  const char *reason = code ? ERR_reason_error_string(code) : NULL;
  ERR_clear_error();
  return reason ? reason : "not readable";
}

/* Loads the TLS files once with OpenSSL, so a wrong file is a configuration error now
 * rather than a connection failure repeated for ever. */
static sl_status check_tls_files(const mqtt_settings *s, sl_error *err) {
  sl_status st = SL_OK;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) abort(); /* host out of memory */
  ERR_clear_error();
  if (s->tls_ca && SSL_CTX_load_verify_locations(ctx, s->tls_ca, NULL) != 1) {
    st = sl_error_set(err, SL_CONFIG, "tls_ca: %s: cannot load CA certificates (PEM): %s",
                      s->tls_ca, openssl_reason());
    goto done;
  }
  if (s->tls_cert && SSL_CTX_use_certificate_chain_file(ctx, s->tls_cert) != 1) {
    st = sl_error_set(err, SL_CONFIG, "tls_cert: %s: cannot load a certificate (PEM): %s",
                      s->tls_cert, openssl_reason());
    goto done;
  }
  if (s->tls_key && SSL_CTX_use_PrivateKey_file(ctx, s->tls_key, SSL_FILETYPE_PEM) != 1) {
    st = sl_error_set(err, SL_CONFIG, "tls_key: %s: cannot load a private key (PEM): %s",
                      s->tls_key, openssl_reason());
    goto done;
  }
  if (s->tls_key && SSL_CTX_check_private_key(ctx) != 1)
    st = sl_error_set(err, SL_CONFIG, "tls_key: %s is not the key of tls_cert %s", s->tls_key,
                      s->tls_cert);
done:
  ERR_clear_error();
  SSL_CTX_free(ctx);
  return st;
}

static sl_status check_settings(const mqtt_conn *conn, const mqtt_settings *s, sl_error *err) {
  bool any_tls = s->tls_ca || s->tls_cert || s->tls_key;
  if (any_tls && !conn->tls)
    return sl_error_set(err, SL_CONFIG,
                        "%s: only for TLS connections; write the url as mqtts://HOST[:PORT]",
                        s->tls_ca     ? "tls_ca"
                        : s->tls_cert ? "tls_cert"
                                      : "tls_key");
  if (!s->tls_cert != !s->tls_key)
    return sl_error_set(err, SL_CONFIG, "%s: a client certificate needs both tls_cert and tls_key",
                        s->tls_cert ? "tls_key" : "tls_cert");
  if (s->password && (!s->username || !s->username[0]))
    return sl_error_set(err, SL_CONFIG, "password: needs a username (MQTT sends none without one)");
  if (s->keepalive < 5000 || s->keepalive > 65535000)
    return sl_error_set(err, SL_CONFIG,
                        "keepalive: must be from 5s to 65535s (about 18h), got %llu ms",
                        (unsigned long long)s->keepalive);
  if (s->backoff == 0) return sl_error_set(err, SL_CONFIG, "backoff: must be more than 0 ms");
  if (s->max_backoff < s->backoff)
    return sl_error_set(err, SL_CONFIG,
                        "max_backoff: must be at least backoff (%llu ms), got %llu ms",
                        (unsigned long long)s->backoff, (unsigned long long)s->max_backoff);
  if (conn->tls && any_tls) return check_tls_files(s, err);
  return SL_OK;
}

sl_status sl__mqtt_conn_init(mqtt_conn *conn, const sl_node_ctx *node,
                             const mqtt_settings *settings, const char *what, bool clean_session,
                             const mqtt_conn_events *events, void *user, sl_error *err) {
  pthread_once(&lib_once, init_lib_once);
  conn->node = node;
  conn->settings = settings;
  conn->what = what;
  conn->clean_session = clean_session;
  conn->events = *events;
  conn->user = user;
  sl_status st = parse_url(conn, settings->url ? settings->url : "", err);
  if (st == SL_OK) st = check_settings(conn, settings, err);
  if (st != SL_OK) {
    sl__mqtt_conn_destroy(conn);
    return st;
  }
  if (settings->client_id && settings->client_id[0]) {
    conn->client_id = strdup(settings->client_id);
  } else {
    size_t len = strlen(node->pipeline) + strlen(node->id) + sizeof "sluice--";
    conn->client_id = malloc(len);
    if (conn->client_id) snprintf(conn->client_id, len, "sluice-%s-%s", node->pipeline, node->id);
  }
  if (!conn->client_id) abort(); /* host out of memory */
  conn->delay_ms = settings->backoff;
  return SL_OK;
}

void sl__mqtt_conn_destroy(mqtt_conn *conn) {
  if (conn->mosq) mosquitto_destroy(conn->mosq);
  conn->mosq = NULL;
  free(conn->host);
  free(conn->shown_url);
  free(conn->client_id);
  conn->host = conn->shown_url = conn->client_id = NULL;
}

/* ---- a handle per connection ------------------------------------------------------- */

static void on_connect(struct mosquitto *mosq, void *user, int rc, int flags) {
  mqtt_conn *conn = user;
  if (rc != 0) {
    /* "Connection Refused: not authorised." without its full stop: more follows. */
    int len = snprintf(conn->failure, sizeof conn->failure, "the broker refused the connection: %s",
                       mosquitto_connack_string(rc));
    if (len > 0 && (size_t)len < sizeof conn->failure && conn->failure[len - 1] == '.')
      conn->failure[len - 1] = '\0';
    return;
  }
  /* Errors worth quoting come while connecting; from here on the log callback would only
   * cost a formatted line per packet. */
  mosquitto_log_callback_set(mosq, NULL);
  uint64_t now = sl__mqtt_now_ms();
  conn->up = true;
  conn->up_since_ms = now;
  if (conn->ever_up) {
    char attempts[64] = "";
    if (conn->failures > 0)
      snprintf(attempts, sizeof attempts, " after %u failed attempt%s", conn->failures,
               conn->failures == 1 ? "" : "s");
    sl_node_log(conn->node, SL_LOG_INFO, "%s: connected again to %s%s", conn->what, conn->shown_url,
                attempts);
  } else {
    sl_node_log(conn->node, SL_LOG_INFO, "%s: connected to %s as %s", conn->what, conn->shown_url,
                conn->client_id);
  }
  conn->ever_up = true;
  conn->failures = 0;
  conn->logged[0] = '\0';
  if (conn->events.on_connected) conn->events.on_connected(conn->user, (flags & 1) != 0);
}

static void on_message(struct mosquitto *mosq, void *user, const struct mosquitto_message *msg) {
  mqtt_conn *conn = user;
  if (conn->events.on_message) conn->events.on_message(conn->user, msg);
}

static void on_subscribe(struct mosquitto *mosq, void *user, int mid, int count,
                         const int *granted) {
  mqtt_conn *conn = user;
  if (conn->events.on_subscribed) conn->events.on_subscribed(conn->user, count, granted);
}

/* Keeps libmosquitto's last error line (it logs OpenSSL's reasons there). */
static void on_log(struct mosquitto *mosq, void *user, int level, const char *line) {
  mqtt_conn *conn = user;
  if (level & MOSQ_LOG_ERR) snprintf(conn->lib_error, sizeof conn->lib_error, "%s", line);
}

static void on_publish(struct mosquitto *mosq, void *user, int mid) {
  mqtt_conn *conn = user;
  if (conn->events.on_published) conn->events.on_published(conn->user, mid);
}

/* A handle with every setting applied. Settings were checked at init, so a failure here
 * is unexpected; it is reported like a failed connection attempt. */
static struct mosquitto *new_handle(mqtt_conn *conn) {
  const mqtt_settings *s = conn->settings;
  struct mosquitto *mosq = mosquitto_new(conn->client_id, conn->clean_session, conn);
  if (!mosq) {
    snprintf(conn->failure, sizeof conn->failure, "cannot make a client: %s", strerror(errno));
    return NULL;
  }
  int rc = mosquitto_threaded_set(mosq, true);
  if (rc == MOSQ_ERR_SUCCESS)
    rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
  /* No limit of our own on QoS 1 messages in flight: the sink bounds them itself. */
  if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_max_inflight_messages_set(mosq, 0);
  if (rc == MOSQ_ERR_SUCCESS && s->username)
    rc = mosquitto_username_pw_set(mosq, s->username, s->password);
  if (rc == MOSQ_ERR_SUCCESS && conn->tls) {
    if (!s->tls_ca) rc = mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    /* mosquitto_tls_set wants a CA file or folder; with the system's CAs, name theirs. */
    if (rc == MOSQ_ERR_SUCCESS && (s->tls_ca || s->tls_cert))
      rc = mosquitto_tls_set(mosq, s->tls_ca, s->tls_ca ? NULL : X509_get_default_cert_dir(),
                             s->tls_cert, s->tls_key, NULL);
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    snprintf(conn->failure, sizeof conn->failure, "cannot set the client up: %s",
             mosquitto_strerror(rc));
    mosquitto_destroy(mosq);
    return NULL;
  }
  mosquitto_connect_with_flags_callback_set(mosq, on_connect);
  mosquitto_message_callback_set(mosq, on_message);
  mosquitto_subscribe_callback_set(mosq, on_subscribe);
  mosquitto_log_callback_set(mosq, on_log);
  mosquitto_publish_callback_set(mosq, on_publish);
  return mosq;
}

/* Logs a failure unless it is the same as the last one and recent. */
static void log_failure(mqtt_conn *conn, bool was_up, uint64_t now) {
  bool repeat = strcmp(conn->logged, conn->failure) == 0;
  if (repeat && now - conn->logged_ms < LOG_REPEAT_MS) return;
  char attempts[64] = "";
  if (conn->failures > 1)
    snprintf(attempts, sizeof attempts, " (%u failed attempts in a row)", conn->failures);
  if (was_up)
    sl_node_log(conn->node, SL_LOG_WARN, "%s: connection to %s ended: %s; reconnecting in %llu ms",
                conn->what, conn->shown_url, conn->failure, (unsigned long long)conn->delay_ms);
  else
    sl_node_log(conn->node, SL_LOG_ERROR, "%s: cannot connect to %s: %s; trying again in %llu ms%s",
                conn->what, conn->shown_url, conn->failure, (unsigned long long)conn->delay_ms,
                attempts);
  snprintf(conn->logged, sizeof conn->logged, "%s", conn->failure);
  conn->logged_ms = now;
}

/* Starts a connection attempt: the TCP connect goes on without blocking, the CONNECT
 * packet waits in the handle's queue. */
static void start_attempt(mqtt_conn *conn) {
  conn->failure[0] = '\0';
  conn->lib_error[0] = '\0';
  conn->up = false;
  conn->attempt_ms = sl__mqtt_now_ms();
  conn->mosq = new_handle(conn);
  if (!conn->mosq) {
    sl__mqtt_conn_drop(conn, NULL);
    return;
  }
  int keepalive_s = (int)((conn->settings->keepalive + 999) / 1000);
  errno = 0;
  int rc = mosquitto_connect_async(conn->mosq, conn->host, conn->port, keepalive_s);
  if (rc != MOSQ_ERR_SUCCESS) {
    int saved = errno;
    if (rc == MOSQ_ERR_EAI)
      snprintf(conn->failure, sizeof conn->failure, "cannot resolve %s", conn->host);
    else
      note_failure(conn, rc, saved);
    sl__mqtt_conn_drop(conn, NULL);
  }
}

/* ---- losing and ending a connection -------------------------------------------------- */

void sl__mqtt_conn_drop(mqtt_conn *conn, const char *why) {
  if (!conn->mosq && why) return;
  if (why) snprintf(conn->failure, sizeof conn->failure, "%s", why);
  if (!conn->failure[0]) snprintf(conn->failure, sizeof conn->failure, "the connection ended");
  uint64_t now = sl__mqtt_now_ms();
  bool was_up = conn->up;
  if (conn->mosq) mosquitto_destroy(conn->mosq);
  conn->mosq = NULL;
  conn->up = false;
  if (was_up && now - conn->up_since_ms >= STABLE_MS) conn->delay_ms = conn->settings->backoff;
  if (!was_up) conn->failures++; /* attempts that never got a CONNACK */
  log_failure(conn, was_up, now);
  conn->next_attempt_ms = now + conn->delay_ms;
  uint64_t doubled = conn->delay_ms * 2;
  conn->delay_ms = doubled < conn->settings->max_backoff ? doubled : conn->settings->max_backoff;
}

void sl__mqtt_conn_close(mqtt_conn *conn, int timeout_ms) {
  if (!conn->mosq) return;
  if (conn->up && mosquitto_disconnect(conn->mosq) == MOSQ_ERR_SUCCESS) {
    uint64_t deadline = sl__mqtt_now_ms() + (uint64_t)timeout_ms;
    /* Writing the DISCONNECT closes the socket (mosquitto_socket turns -1). */
    for (;;) {
      int sock = mosquitto_socket(conn->mosq);
      if (sock < 0 || !mosquitto_want_write(conn->mosq)) break;
      if (mosquitto_loop_write(conn->mosq, 1) != MOSQ_ERR_SUCCESS) break;
      uint64_t now = sl__mqtt_now_ms();
      if (now >= deadline) break;
      sock = mosquitto_socket(conn->mosq);
      if (sock < 0 || !mosquitto_want_write(conn->mosq)) break;
      struct pollfd out = {.fd = sock, .events = POLLOUT};
      poll(&out, 1, (int)(deadline - now));
    }
  }
  mosquitto_destroy(conn->mosq);
  conn->mosq = NULL;
  conn->up = false;
}

struct mosquitto *sl__mqtt_conn_ready(const mqtt_conn *conn) {
  return conn->up ? conn->mosq : NULL;
}

/* ---- one round of I/O -------------------------------------------------------------- */

/* After a libmosquitto call failed with `rc`: note why (a refusal noted by on_connect
 * says more than the closed socket that follows it) and drop the connection. */
static void lost(mqtt_conn *conn, int rc, int saved_errno) {
  if (!conn->failure[0]) note_failure(conn, rc, saved_errno);
  sl__mqtt_conn_drop(conn, NULL);
}

static bool readable_now(int sock) {
  struct pollfd in = {.fd = sock, .events = POLLIN};
  return poll(&in, 1, 0) > 0;
}

bool sl__mqtt_conn_poll(mqtt_conn *conn, int wake_fd, int timeout_ms, bool may_read, bool may_write,
                        unsigned max_reads) {
  uint64_t now = sl__mqtt_now_ms();
  if (!conn->mosq && now >= conn->next_attempt_ms) start_attempt(conn);

  /* How long to wait: until the next attempt, the connect deadline, or loop_misc. */
  uint64_t wait = timeout_ms < 0 ? 0 : (uint64_t)timeout_ms;
  if (!conn->mosq) {
    uint64_t until = conn->next_attempt_ms > now ? conn->next_attempt_ms - now : 0;
    if (until < wait) wait = until;
  } else if (wait > MISC_INTERVAL_MS) {
    wait = MISC_INTERVAL_MS;
  }
  if (conn->mosq && !conn->up) {
    uint64_t deadline = conn->attempt_ms + CONNECT_TIMEOUT_MS;
    uint64_t until = deadline > now ? deadline - now : 0;
    if (until < wait) wait = until;
  }

  /* While the connection is being set up (CONNECT, CONNACK) it is always served. */
  int sock = conn->mosq ? mosquitto_socket(conn->mosq) : -1;
  bool reading = sock >= 0 && (may_read || !conn->up);
  bool writing = sock >= 0 && (may_write || !conn->up);
  struct pollfd fds[2] = {{.fd = wake_fd, .events = POLLIN}, {.fd = -1}};
  if (sock >= 0) {
    fds[1].fd = sock;
    fds[1].events = (short)((reading ? POLLIN : 0) |
                            (writing && mosquitto_want_write(conn->mosq) ? POLLOUT : 0));
  }
  int ready = poll(fds, 2, (int)wait);
  bool woken = false;
  if (ready > 0 && (fds[0].revents & POLLIN)) {
    uint64_t count;
    woken = read(wake_fd, &count, sizeof count) == sizeof count;
  }
  if (sock < 0) return woken;

  short revents = ready > 0 ? fds[1].revents : 0;
  if (revents & (POLLERR | POLLHUP) && !reading) {
    sl__mqtt_conn_drop(conn, "the connection failed");
    return woken;
  }
  /*
   * Write before reading. `may_write` was decided before this call, from what had been
   * read so far; a message read below queues its PUBACK, which must wait until the
   * caller decides again (the source lets PUBACKs out only after delivery). Before the
   * CONNACK nothing can have been read that queues anything.
   */
  if (writing && mosquitto_want_write(conn->mosq)) {
    errno = 0;
    int rc = mosquitto_loop_write(conn->mosq, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      lost(conn, rc, errno);
      return woken;
    }
  }
  if (reading && (revents & (POLLIN | POLLERR | POLLHUP))) {
    for (unsigned n = 0; n < (max_reads ? max_reads : 1); n++) {
      errno = 0;
      int rc = mosquitto_loop_read(conn->mosq, 1);
      if (rc != MOSQ_ERR_SUCCESS || conn->failure[0]) {
        lost(conn, rc, errno);
        return woken;
      }
      sock = mosquitto_socket(conn->mosq);
      if (sock < 0 || (!may_read && conn->up) || !readable_now(sock)) break;
    }
  }
  if (conn->up) {
    errno = 0;
    int rc = mosquitto_loop_misc(conn->mosq);
    if (rc != MOSQ_ERR_SUCCESS) lost(conn, rc, errno);
  } else if (sl__mqtt_now_ms() - conn->attempt_ms >= CONNECT_TIMEOUT_MS) {
    sl__mqtt_conn_drop(conn, "no answer (CONNACK) within 10 s");
  }
  return woken;
}
