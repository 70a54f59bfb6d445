/*
 * redis_conn.c - the Redis connection both connectors use (see redis_conn.h).
 *
 * Sections: settings and URL - waiting - connecting - commands and replies - backoff.
 */
#include "connectors/redis/redis_conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT 6379

uint64_t sl__redis_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *copy_text(const char *text, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) abort(); /* host out of memory */
  memcpy(copy, text, len);
  copy[len] = '\0';
  return copy;
}

/* ---- settings and URL ---------------------------------------------------------------- */

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes %XX escapes (a password may hold ':' or '@'); NULL when one is malformed. */
static char *percent_decode(const char *text, size_t len) {
  char *out = copy_text(text, len);
  size_t at = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '%') {
      out[at++] = text[i];
      continue;
    }
    int hi = i + 2 < len ? hex_digit(text[i + 1]) : -1;
    int lo = i + 2 < len ? hex_digit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      free(out);
      return NULL;
    }
    out[at++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[at] = '\0';
  return out;
}

/* "redis://user:***@host:port/db": the URL as messages may show it. */
static char *redact_url(const char *url) {
  char *shown = malloc(strlen(url) + 4);
  if (!shown) abort();
  const char *authority = strstr(url, "://");
  authority = authority ? authority + 3 : url;
  size_t span = strcspn(authority, "/?#");
  const char *at = memrchr(authority, '@', span);
  const char *colon = at ? memchr(authority, ':', (size_t)(at - authority)) : NULL;
  if (!colon) {
    strcpy(shown, url);
  } else {
    size_t head = (size_t)(colon + 1 - url);
    memcpy(shown, url, head);
    strcpy(shown + head, "***");
    strcat(shown, at);
  }
  return shown;
}

/* Parses url into target->host/port/db and the URL's credentials (*user, *password). */
static sl_status parse_url(sl_redis_target *target, const char *url, char **user, char **password,
                           sl_error *err) {
  const char *shown = target->shown_url;
  if (strncasecmp(url, "rediss://", 9) == 0)
    return sl_error_set(err, SL_CONFIG,
                        "url: rediss:// (TLS) is not supported: Sluice is built with hiredis "
                        "0.14, which has no TLS; use redis:// over a trusted network or a TLS "
                        "tunnel (stunnel, spiped)");
  if (strncasecmp(url, "redis://", 8) != 0)
    return sl_error_set(err, SL_CONFIG,
                        "url: must look like redis://[user:password@]host[:port][/db], got \"%s\"",
                        shown);
  const char *authority = url + 8;
  size_t span = strcspn(authority, "/?#");
  const char *end = authority + span;
  if (*end == '?' || *end == '#' || (*end == '/' && strpbrk(end, "?#")))
    return sl_error_set(err, SL_CONFIG,
                        "url: query and fragment parts are not supported in \"%s\"; use the "
                        "node's settings instead",
                        shown);

  /* user:password@ */
  const char *at = memrchr(authority, '@', span);
  const char *hostpart = authority;
  if (at) {
    const char *colon = memchr(authority, ':', (size_t)(at - authority));
    size_t user_len = colon ? (size_t)(colon - authority) : (size_t)(at - authority);
    if (user_len > 0) {
      *user = percent_decode(authority, user_len);
      if (!*user) return sl_error_set(err, SL_CONFIG, "url: a bad %% escape in the user name");
    }
    if (colon) {
      *password = percent_decode(colon + 1, (size_t)(at - colon - 1));
      if (!*password) return sl_error_set(err, SL_CONFIG, "url: a bad %% escape in the password");
    }
    hostpart = at + 1;
  }

  /* host[:port], the host maybe [an IPv6 address] */
  const char *port_at = NULL;
  if (*hostpart == '[') {
    const char *close = memchr(hostpart, ']', (size_t)(end - hostpart));
    if (!close)
      return sl_error_set(err, SL_CONFIG, "url: a '[' without ']' in the host of \"%s\"", shown);
    target->host = copy_text(hostpart + 1, (size_t)(close - hostpart - 1));
    if (close + 1 < end && close[1] != ':')
      return sl_error_set(err, SL_CONFIG, "url: expected ':PORT' after ']' in \"%s\"", shown);
    port_at = close + 1 < end ? close + 2 : NULL;
  } else {
    const char *colon = memchr(hostpart, ':', (size_t)(end - hostpart));
    target->host = copy_text(hostpart, (size_t)((colon ? colon : end) - hostpart));
    port_at = colon ? colon + 1 : NULL;
  }
  if (!target->host[0]) return sl_error_set(err, SL_CONFIG, "url: no host in \"%s\"", shown);
  target->port = DEFAULT_PORT;
  if (port_at) {
    long port = 0;
    const char *p = port_at;
    for (; p < end && *p >= '0' && *p <= '9' && port <= 65535; p++) port = port * 10 + (*p - '0');
    if (p != end || p == port_at || port < 1 || port > 65535)
      return sl_error_set(err, SL_CONFIG,
                          "url: the port must be a number from 1 to 65535 in \"%s\"", shown);
    target->port = (int)port;
  }

  /* /db */
  target->db = 0;
  if (*end == '/' && end[1]) {
    char *stop = NULL;
    errno = 0;
    long long db = strtoll(end + 1, &stop, 10);
    if (errno || *stop || db < 0 || end[1] < '0' || end[1] > '9')
      return sl_error_set(err, SL_CONFIG,
                          "url: the path must be a database number (/0, /1, ...), got \"%s\"", end);
    target->db = db;
  }
  return SL_OK;
}

sl_status sl__redis_target_init(sl_redis_target *target, const sl_redis_settings *settings,
                                const sl_node_ctx *node, sl_error *err) {
  memset(target, 0, sizeof *target);
  static const struct {
    const char *name;
    size_t offset;
  } tls_settings[] = {
      {"tls_ca", offsetof(sl_redis_settings, tls_ca)},
      {"tls_cert", offsetof(sl_redis_settings, tls_cert)},
      {"tls_key", offsetof(sl_redis_settings, tls_key)},
  };
  for (size_t i = 0; i < sizeof tls_settings / sizeof *tls_settings; i++) {
    const char *value = *(char *const *)((const char *)settings + tls_settings[i].offset);
    if (value && value[0])
      return sl_error_set(err, SL_CONFIG,
                          "%s: TLS is not supported: Sluice is built with hiredis 0.14, which "
                          "has no TLS; remove the tls_* settings and reach Redis over a trusted "
                          "network or a TLS tunnel (stunnel, spiped)",
                          tls_settings[i].name);
  }
  const char *url = settings->url && settings->url[0] ? settings->url : "redis://127.0.0.1:6379";
  target->shown_url = redact_url(url);
  char *url_user = NULL, *url_password = NULL;
  sl_status st = parse_url(target, url, &url_user, &url_password, err);
  if (st != SL_OK) goto done;

  bool has_user = settings->username && settings->username[0];
  bool has_password = settings->password && settings->password[0];
  if (url_user && has_user) {
    st = sl_error_set(err, SL_CONFIG, "username: the url names a user too; keep one of them");
    goto done;
  }
  if (url_password && has_password) {
    st = sl_error_set(err, SL_CONFIG, "password: the url holds a password too; keep one of them");
    goto done;
  }
  target->username = has_user ? strdup(settings->username) : url_user;
  target->password = has_password ? strdup(settings->password) : url_password;
  url_user = url_password = NULL;
  if (target->username && !target->password) {
    st = sl_error_set(err, SL_CONFIG,
                      "password: user '%s' needs a password (password: ${secret:NAME}, or "
                      "redis://%s:PASSWORD@host in the url)",
                      target->username, target->username);
    goto done;
  }
  if (settings->timeout == 0) {
    st = sl_error_set(err, SL_CONFIG, "timeout: must be more than 0 ms, e.g. 5s");
    goto done;
  }
  if (settings->backoff == 0 || settings->max_backoff < settings->backoff) {
    st = sl_error_set(err, SL_CONFIG,
                      "backoff: must be more than 0 ms and at most max_backoff (%llu ms), got "
                      "%llu ms",
                      (unsigned long long)settings->max_backoff,
                      (unsigned long long)settings->backoff);
    goto done;
  }
  target->timeout_ms = settings->timeout;
  size_t name_len = strlen(node->pipeline) + strlen(node->id) + sizeof "sluice::";
  target->client_name = malloc(name_len);
  if (!target->client_name) abort();
  snprintf(target->client_name, name_len, "sluice:%s:%s", node->pipeline, node->id);
  /* CLIENT SETNAME refuses spaces; the names allow none, but a name is not worth failing. */
  for (char *c = target->client_name; *c; c++)
    if (*c <= ' ' || *c >= 127) *c = '_';

done:
  free(url_user);
  free(url_password);
  return st;
}

void sl__redis_target_destroy(sl_redis_target *target) {
  free(target->host);
  free(target->username);
  free(target->password);
  free(target->shown_url);
  free(target->client_name);
  memset(target, 0, sizeof *target);
}

/* ---- waiting --------------------------------------------------------------------- */

static void drain(int wake_fd) {
  uint64_t count;
  ssize_t ignored = read(wake_fd, &count, sizeof count);
  (void)ignored;
}

void sl__redis_wait(int wake_fd, uint64_t ms) {
  struct pollfd wake = {.fd = wake_fd, .events = POLLIN};
  int timeout = ms > INT_MAX ? INT_MAX : (int)ms;
  if (poll(&wake, 1, timeout) > 0) drain(wake_fd);
}

/*
 * Waits until the socket is ready for `events`, `deadline` passes, or *abort is set.
 * Returns 1 when ready, 0 on timeout, -1 when aborted.
 */
static int wait_socket(sl_redis_conn *conn, int fd, short events, uint64_t deadline) {
  for (;;) {
    if (conn->abort && atomic_load(conn->abort)) return -1;
    uint64_t now = sl__redis_now_ms();
    if (now >= deadline) return 0;
    uint64_t left = deadline - now;
    struct pollfd fds[2] = {{.fd = fd, .events = events}, {.fd = conn->wake_fd, .events = POLLIN}};
    int n = poll(fds, 2, left > INT_MAX ? INT_MAX : (int)left);
    if (n < 0 && errno != EINTR) return 1; /* let the read or write report the error */
    if (n <= 0) continue;
    if (fds[1].revents) drain(conn->wake_fd);
    if (fds[0].revents) return 1;
  }
}

/* ---- connecting ------------------------------------------------------------------ */

void sl__redis_close(sl_redis_conn *conn) {
  if (conn->ctx) redisFree(conn->ctx);
  conn->ctx = NULL;
}

/* Closes the connection and says why, "URL: what". */
static sl_status lost(sl_redis_conn *conn, sl_status st, sl_error *err, const char *what) {
  char reason[400];
  snprintf(reason, sizeof reason, "%s", what);
  sl__redis_close(conn);
  return sl_error_set(err, st, "%s: %s", conn->target->shown_url, reason);
}

/* Sends one handshake command and checks its reply is not an error. */
static sl_status handshake(sl_redis_conn *conn, int argc, const char **argv, const char *what,
                           sl_error *err) {
  sl__redis_append(conn, argc, argv, NULL);
  redisReply *reply = NULL;
  sl_status st = sl__redis_reply(conn, conn->target->timeout_ms, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR) {
    char message[300];
    snprintf(message, sizeof message, "%s failed: %.*s", what, (int)reply->len, reply->str);
    freeReplyObject(reply);
    return lost(conn, SL_IO, err, message);
  }
  freeReplyObject(reply);
  return SL_OK;
}

sl_status sl__redis_connect(sl_redis_conn *conn, sl_error *err) {
  const sl_redis_target *target = conn->target;
  sl__redis_close(conn);
  uint64_t deadline = sl__redis_now_ms() + target->timeout_ms;
  redisContext *ctx = redisConnectNonBlock(target->host, target->port);
  if (!ctx) abort(); /* host out of memory */
  conn->ctx = ctx;
  if (ctx->err) return lost(conn, SL_IO, err, ctx->errstr);

  int ready = wait_socket(conn, ctx->fd, POLLOUT, deadline);
  if (ready < 0) return lost(conn, SL_CLOSED, err, "stopped while connecting");
  if (ready == 0) return lost(conn, SL_IO, err, "no connection within the timeout");
  int so_error = 0;
  socklen_t len = sizeof so_error;
  if (getsockopt(ctx->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
  if (so_error) return lost(conn, SL_IO, err, strerror(so_error));

  sl_status st = SL_OK;
  if (target->password) {
    const char *auth_user[] = {"AUTH", target->username, target->password};
    const char *auth[] = {"AUTH", target->password};
    st = target->username ? handshake(conn, 3, auth_user, "AUTH", err)
                          : handshake(conn, 2, auth, "AUTH", err);
    if (st != SL_OK) return st;
  }
  if (target->db != 0) {
    char db[24];
    snprintf(db, sizeof db, "%lld", target->db);
    const char *select[] = {"SELECT", db};
    st = handshake(conn, 2, select, "SELECT", err);
    if (st != SL_OK) return st;
  }
  const char *setname[] = {"CLIENT", "SETNAME", target->client_name};
  return handshake(conn, 3, setname, "CLIENT SETNAME", err);
}

/* ---- commands and replies ------------------------------------------------------------ */

void sl__redis_append(sl_redis_conn *conn, int argc, const char **argv, const size_t *lens) {
  /* Only out of memory fails here; the connection is checked when the reply is read. */
  if (conn->ctx && redisAppendCommandArgv(conn->ctx, argc, argv, lens) != REDIS_OK &&
      conn->ctx->err == REDIS_ERR_OOM)
    abort();
}

sl_status sl__redis_reply(sl_redis_conn *conn, uint64_t wait_ms, redisReply **reply,
                          sl_error *err) {
  *reply = NULL;
  redisContext *ctx = conn->ctx;
  if (!ctx) return sl_error_set(err, SL_IO, "%s: not connected", conn->target->shown_url);
  if (ctx->err) return lost(conn, SL_IO, err, ctx->errstr);
  uint64_t deadline = sl__redis_now_ms() + wait_ms;
  for (;;) {
    void *answer = NULL;
    if (redisGetReplyFromReader(ctx, &answer) != REDIS_OK) {
      char message[200];
      snprintf(message, sizeof message, "the server sent something that is not Redis (%s)",
               ctx->errstr);
      return lost(conn, SL_IO, err, message);
    }
    if (answer) {
      *reply = answer;
      return SL_OK;
    }
    if (sdslen(ctx->obuf) > 0) {
      int done = 0;
      if (redisBufferWrite(ctx, &done) != REDIS_OK) return lost(conn, SL_IO, err, ctx->errstr);
    }
    short events = POLLIN | (sdslen(ctx->obuf) > 0 ? POLLOUT : 0);
    int ready = wait_socket(conn, ctx->fd, events, deadline);
    if (ready < 0) return lost(conn, SL_CLOSED, err, "stopped while waiting for a reply");
    if (ready == 0) {
      char message[96];
      snprintf(message, sizeof message, "no reply within %llu ms", (unsigned long long)wait_ms);
      return lost(conn, SL_IO, err, message);
    }
    if (redisBufferRead(ctx) != REDIS_OK) return lost(conn, SL_IO, err, ctx->errstr);
  }
}

bool sl__redis_error_transient(const redisReply *reply) {
  /* NOAUTH is not here: the connection authenticated when it opened, so a NOAUTH
   * means the settings lack a password, and retrying would not bring one. */
  static const char *const prefixes[] = {"LOADING",    "BUSY",        "TRYAGAIN",
                                         "MASTERDOWN", "READONLY",    "OOM",
                                         "NOREPLICAS", "CLUSTERDOWN", NULL};
  if (reply->type != REDIS_REPLY_ERROR || !reply->str) return false;
  for (size_t i = 0; prefixes[i]; i++) {
    size_t n = strlen(prefixes[i]);
    if (reply->len >= n && strncmp(reply->str, prefixes[i], n) == 0 &&
        (reply->len == n || reply->str[n] == ' '))
      return true;
  }
  return false;
}

/* ---- backoff ------------------------------------------------------------------------- */

void sl__redis_backoff_init(sl_redis_backoff *backoff, const sl_redis_settings *settings) {
  backoff->first = settings->backoff;
  backoff->max = settings->max_backoff;
  backoff->next = backoff->first;
  backoff->failures = 0;
}

uint64_t sl__redis_backoff_fail(sl_redis_backoff *backoff) {
  uint64_t pause = backoff->next;
  backoff->next = pause > backoff->max / 2 ? backoff->max : pause * 2;
  backoff->failures++;
  return pause;
}

void sl__redis_backoff_reset(sl_redis_backoff *backoff) {
  backoff->next = backoff->first;
  backoff->failures = 0;
}
