/*
 * kv_redis.c - the Redis backend: a bucket is the keys of one Redis database that start
 * with the bucket's prefix.
 *
 * Spec: redis://[[USER]:PASSWORD@]HOST:PORT[/DB][?prefix=P]. The password (usually from
 * ${secret:...}) is sent with AUTH and never appears in a message: messages show the spec
 * with it replaced by ***. USER, PASSWORD and P may hold %XX escapes.
 *
 * One blocking hiredis connection per bucket behind a mutex, opened on the first
 * operation with a 500 ms connect timeout and a 500 ms timeout on every command. After
 * any I/O failure (refused, closed, silent, or answering something that is not the reply
 * expected) the connection is freed and the call fails with SL_IO; the next call
 * connects again. An error reply (e.g. READONLY) leaves the connection as it is.
 *
 * hiredis writes with write(2), which raises SIGPIPE when the server has gone; each
 * command runs with SIGPIPE blocked in the calling thread and swallows the one it caused,
 * so a vanished server is an error, not a dead host (libpq does the same).
 *
 * Sections: spec - connection - operations - bucket.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "caps/kv_backend.h"

#define TIMEOUT_MS 500        /* to connect, and for each command's reply */
#define SCAN_COUNT "1000"     /* SCAN's COUNT hint */
#define SCANS_PER_PAGE 8      /* at most this many SCAN calls fill one page */
#define SHOWN_REPLY_BYTES 200 /* of an error reply quoted in a message */

typedef struct redis_target {
  char *host; /* without the [] of an IPv6 address */
  int port;
  long db;
  char *user;      /* NULL: AUTH with the password alone */
  char *password;  /* NULL: no AUTH */
  uint8_t *prefix; /* NULL when empty */
  size_t prefix_len;
} redis_target;

typedef struct redis_bucket {
  pthread_mutex_t lock; /* one command at a time on `ctx`, which also makes them atomic */
  redis_target target;
  redisContext *ctx; /* NULL until the first operation and after a failure */
} redis_bucket;

/* ---- spec -------------------------------------------------------------------------------- */

bool sl__kv_redis_spec_is_redis(const char *spec) {
  return strncasecmp(spec, "redis://", 8) == 0 || strncasecmp(spec, "rediss://", 9) == 0;
}

static void target_free(redis_target *target) {
  free(target->host);
  free(target->user);
  free(target->password);
  free(target->prefix);
  memset(target, 0, sizeof *target);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes %XX escapes into a malloc'ed, NUL-terminated copy; false when one is malformed. */
static bool percent_decode(const char *text, size_t len, uint8_t **out, size_t *out_len) {
  uint8_t *bytes = sl__kv_copy(text, len, true);
  size_t at = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '%') {
      bytes[at++] = (uint8_t)text[i];
      continue;
    }
    int hi = i + 2 < len ? hex_digit(text[i + 1]) : -1;
    int lo = i + 2 < len ? hex_digit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      free(bytes);
      return false;
    }
    bytes[at++] = (uint8_t)(hi * 16 + lo);
    i += 2;
  }
  bytes[at] = '\0';
  *out = bytes;
  if (out_len) *out_len = at;
  return true;
}

/* The end of the authority (user:password@host:port): the first '/', '?' or '#'. */
static const char *authority_end(const char *authority) {
  return authority + strcspn(authority, "/?#");
}

char *sl__kv_redis_spec_shown(const char *spec) {
  const char *authority = strstr(spec, "://");
  authority = authority ? authority + 3 : spec;
  const char *end = authority_end(authority);
  const char *at = memrchr(authority, '@', (size_t)(end - authority));
  const char *colon = at ? memchr(authority, ':', (size_t)(at - authority)) : NULL;
  if (!colon) return (char *)sl__kv_copy(spec, strlen(spec), true);
  size_t head = (size_t)(colon + 1 - spec);
  char *shown = malloc(head + 3 + strlen(at) + 1);
  if (!shown) abort();
  memcpy(shown, spec, head);
  memcpy(shown + head, "***", 3);
  strcpy(shown + head + 3, at);
  return shown;
}

/* Formats the refusal into `why` and returns false. */
static bool refuse(char *why, size_t why_cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool refuse(char *why, size_t why_cap, const char *fmt, ...) {
  if (why && why_cap) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(why, why_cap, fmt, args);
    va_end(args);
  }
  return false;
}

/* Digits only, at most `max`; false otherwise. */
static bool parse_number(const char *text, size_t len, long max, long *value) {
  if (len == 0 || len > 10) return false;
  long sum = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] < '0' || text[i] > '9') return false;
    sum = sum * 10 + (text[i] - '0');
  }
  if (sum > max) return false;
  *value = sum;
  return true;
}

#define SPEC_FORM "redis://[[USER]:PASSWORD@]HOST:PORT[/DB][?prefix=P]"

/* Parses `spec` into *target (free with target_free, also after a failure). */
static bool parse_spec(const char *spec, redis_target *target, char *why, size_t why_cap) {
  memset(target, 0, sizeof *target);
  /* The spec as refusals quote it. An '@' left after hiding the password means one the
   * parser may not have seen as the end of a password (a '/' or '?' in it not escaped):
   * then the spec is not quoted at all. */
  char *shown_copy = sl__kv_redis_spec_shown(spec);
  char shown[300];
  if (strchr(shown_copy, '@') && !strstr(shown_copy, ":***@"))
    snprintf(shown, sizeof shown, "the URL (not repeated: it may hold a password)");
  else
    snprintf(shown, sizeof shown, "\"%.256s\"", shown_copy);
  free(shown_copy);
  if (strncasecmp(spec, "rediss://", 9) == 0)
    return refuse(why, why_cap,
                  "%s: rediss:// (TLS) is not supported: this build's hiredis (0.14) has "
                  "no TLS; use redis:// over a trusted network or a TLS tunnel",
                  shown);
  const char *authority = spec + 8;
  const char *end = authority_end(authority);
  if (strchr(spec, '#'))
    return refuse(why, why_cap, "%s: a '#' fragment is not allowed; the form is " SPEC_FORM, shown);

  /* [USER]:PASSWORD@ */
  const char *host = authority;
  const char *at = memrchr(authority, '@', (size_t)(end - authority));
  if (at) {
    const char *colon = memchr(authority, ':', (size_t)(at - authority));
    if (!colon)
      return refuse(why, why_cap, "%s: a user needs a password (redis://USER:PASSWORD@HOST:PORT)",
                    shown);
    if (colon > authority &&
        !percent_decode(authority, (size_t)(colon - authority), (uint8_t **)&target->user, NULL))
      return refuse(why, why_cap, "%s: a bad %%XX escape in the user", shown);
    if (!percent_decode(colon + 1, (size_t)(at - colon - 1), (uint8_t **)&target->password, NULL))
      return refuse(why, why_cap, "%s: a bad %%XX escape in the password", shown);
    if (!target->password[0])
      return refuse(why, why_cap, "%s: the password after ':' is empty", shown);
    host = at + 1;
  }

  /* HOST:PORT, HOST maybe [an IPv6 address] */
  const char *port_colon;
  if (*host == '[') {
    const char *close = memchr(host, ']', (size_t)(end - host));
    if (!close) return refuse(why, why_cap, "%s: a '[' without ']' in the host", shown);
    target->host = (char *)sl__kv_copy(host + 1, (size_t)(close - host - 1), true);
    port_colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    if (!port_colon && close + 1 != end)
      return refuse(why, why_cap, "%s: expected :PORT after ']'", shown);
  } else {
    port_colon = memchr(host, ':', (size_t)(end - host));
    target->host =
        (char *)sl__kv_copy(host, (size_t)((port_colon ? port_colon : end) - host), true);
  }
  if (!target->host[0]) return refuse(why, why_cap, "%s: no host; the form is " SPEC_FORM, shown);
  long port = 0;
  if (!port_colon)
    return refuse(why, why_cap, "%s: no port; the form is " SPEC_FORM " (Redis's is 6379)", shown);
  if (!parse_number(port_colon + 1, (size_t)(end - port_colon - 1), 65535, &port) || port < 1)
    return refuse(why, why_cap, "%s: the port must be a number from 1 to 65535", shown);
  target->port = (int)port;

  /* [/DB] */
  const char *query = strchr(end, '?');
  if (*end == '/') {
    const char *db = end + 1;
    size_t db_len = (size_t)((query ? query : db + strlen(db)) - db);
    if (db_len > 0 && !parse_number(db, db_len, INT_MAX, &target->db))
      return refuse(why, why_cap, "%s: after the port comes /DB, a database number (/0, /1, ...)",
                    shown);
  }

  /* [?prefix=P] */
  if (query) {
    if (strncmp(query, "?prefix=", 8) != 0 || strchr(query + 8, '&'))
      return refuse(why, why_cap, "%s: the only option is ?prefix=P", shown);
    if (!percent_decode(query + 8, strlen(query + 8), &target->prefix, &target->prefix_len))
      return refuse(why, why_cap, "%s: a bad %%XX escape in the prefix", shown);
    if (target->prefix_len == 0) {
      free(target->prefix);
      target->prefix = NULL;
    }
  }
  return true;
}

bool sl__kv_redis_spec_check(const char *spec, char *why, size_t why_cap) {
  redis_target target;
  bool ok = parse_spec(spec, &target, why, why_cap);
  target_free(&target);
  return ok;
}

/* ---- connection -------------------------------------------------------------------------- */

typedef struct sigpipe_guard {
  sigset_t saved;
  bool was_pending;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *guard) {
  sigset_t pipe_only, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &guard->saved);
  sigpending(&pending);
  guard->was_pending = sigismember(&pending, SIGPIPE);
}

static void sigpipe_restore(sigpipe_guard *guard) {
  sigset_t pipe_only, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigpending(&pending);
  if (!guard->was_pending && sigismember(&pending, SIGPIPE)) {
    struct timespec now = {0, 0};
    sigtimedwait(&pipe_only, NULL, &now);
  }
  pthread_sigmask(SIG_SETMASK, &guard->saved, NULL);
}

static void disconnect(redis_bucket *redis) {
  if (redis->ctx) redisFree(redis->ctx);
  redis->ctx = NULL;
}

/* Drops the connection after an I/O failure and says what happened. */
static sl_status lost(sl_kv_bucket *bucket, sl_error *err, const char *what) {
  redis_bucket *redis = bucket->backend;
  char reason[160];
  const char *errstr = redis->ctx ? redis->ctx->errstr : "";
  if (redis->ctx && redis->ctx->err == REDIS_ERR_IO &&
      (strcmp(errstr, strerror(EAGAIN)) == 0 || strcmp(errstr, strerror(ETIMEDOUT)) == 0))
    snprintf(reason, sizeof reason, "no answer within %d ms", TIMEOUT_MS);
  else
    snprintf(reason, sizeof reason, "%s", errstr[0] ? errstr : "the connection failed");
  disconnect(redis);
  return sl__kv_error(bucket, err, SL_IO, "%s: %s; the next call connects again", what, reason);
}

/* Sends one command on the open connection and reads its reply (*reply: the caller frees). */
static sl_status roundtrip(sl_kv_bucket *bucket, const char *what, int argc, const char **argv,
                           const size_t *lens, redisReply **reply, sl_error *err) {
  redis_bucket *redis = bucket->backend;
  sigpipe_guard guard;
  sigpipe_block(&guard);
  *reply = redisCommandArgv(redis->ctx, argc, argv, lens);
  sigpipe_restore(&guard);
  /* Out of memory is an I/O error too: a peer can announce an array of a billion
   * elements, which hiredis then fails to allocate. */
  if (!*reply) return lost(bucket, err, what);
  return SL_OK;
}

/* Drops the connection after a reply that makes no sense for the command sent. */
static sl_status junk(sl_kv_bucket *bucket, redisReply *reply, const char *what, sl_error *err) {
  int type = reply ? reply->type : -1;
  freeReplyObject(reply);
  disconnect(bucket->backend);
  return sl__kv_error(bucket, err, SL_IO,
                      "%s: the server answered with a reply of an unexpected type (%d); "
                      "the next call connects again",
                      what, type);
}

/* A handshake command (AUTH, SELECT) that must answer +OK. */
static sl_status handshake(sl_kv_bucket *bucket, const char *what, int argc, const char **argv,
                           sl_error *err) {
  redisReply *reply;
  sl_status st = roundtrip(bucket, what, argc, argv, NULL, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR) {
    st = sl__kv_error(bucket, err, SL_IO, "%s refused: %.*s", what, SHOWN_REPLY_BYTES, reply->str);
    freeReplyObject(reply);
    disconnect(bucket->backend);
    return st;
  }
  if (reply->type != REDIS_REPLY_STATUS) return junk(bucket, reply, what, err);
  freeReplyObject(reply);
  return SL_OK;
}

static sl_status connect_server(sl_kv_bucket *bucket, sl_error *err) {
  redis_bucket *redis = bucket->backend;
  const redis_target *target = &redis->target;
  struct timeval timeout = {TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000};
  redisContext *ctx = redisConnectWithTimeout(target->host, target->port, timeout);
  if (!ctx) abort(); /* hiredis returns NULL only when out of memory */
  if (ctx->err) {
    sl_status st = sl__kv_error(bucket, err, SL_IO, "cannot connect: %s", ctx->errstr);
    redisFree(ctx);
    return st;
  }
  if (redisSetTimeout(ctx, timeout) != REDIS_OK) {
    sl_status st = sl__kv_error(bucket, err, SL_IO, "cannot set the timeout: %s", ctx->errstr);
    redisFree(ctx);
    return st;
  }
  redis->ctx = ctx;
  sl_status st = SL_OK;
  if (target->password) {
    const char *auth_user[] = {"AUTH", target->user, target->password};
    const char *auth[] = {"AUTH", target->password};
    st = target->user ? handshake(bucket, "AUTH", 3, auth_user, err)
                      : handshake(bucket, "AUTH", 2, auth, err);
    if (st != SL_OK) return st;
  }
  if (target->db != 0) {
    char db[24];
    snprintf(db, sizeof db, "%ld", target->db);
    const char *select[] = {"SELECT", db};
    st = handshake(bucket, "SELECT", 2, select, err);
  }
  return st;
}

/* Connects when needed, then runs one command. Called with the bucket's lock held. */
static sl_status command(sl_kv_bucket *bucket, const char *what, int argc, const char **argv,
                         const size_t *lens, redisReply **reply, sl_error *err) {
  redis_bucket *redis = bucket->backend;
  *reply = NULL;
  if (!redis->ctx) {
    sl_status st = connect_server(bucket, err);
    if (st != SL_OK) return st;
  }
  return roundtrip(bucket, what, argc, argv, lens, reply, err);
}

/* An error reply: the key holds another type or a non-counter (the caller's fault), or
 * the server refuses for its own reasons (READONLY, OOM, NOAUTH...): an I/O error. */
static sl_status error_reply(sl_kv_bucket *bucket, redisReply *reply, const char *what,
                             sl_error *err) {
  const char *text = reply->str ? reply->str : "";
  bool invalid = strncmp(text, "WRONGTYPE", 9) == 0 || strstr(text, "not an integer") ||
                 strstr(text, "overflow");
  sl_status st = sl__kv_error(bucket, err, invalid ? SL_INVALID : SL_IO,
                              "%s: the server said: %.*s", what, SHOWN_REPLY_BYTES, text);
  freeReplyObject(reply);
  return st;
}

/* ---- operations ----------------------------------------------------------------------------- */

/* The Redis key: the prefix, then the key. *owned is what to free afterwards. */
static const char *full_key(const redis_bucket *redis, const char *key, size_t key_len,
                            size_t *full_len, char **owned) {
  *owned = NULL;
  *full_len = key_len;
  if (!redis->target.prefix) return key;
  size_t prefix_len = redis->target.prefix_len;
  *owned = malloc(prefix_len + key_len + 1);
  if (!*owned) abort();
  memcpy(*owned, redis->target.prefix, prefix_len);
  memcpy(*owned + prefix_len, key, key_len);
  *full_len = prefix_len + key_len;
  return *owned;
}

/* Runs `verb KEY [extra]` under the lock; *reply is the caller's unless the status fails. */
static sl_status keyed(sl_kv_bucket *bucket, const char *verb, const char *key, size_t key_len,
                       const void *extra, size_t extra_len, bool has_extra, redisReply **reply,
                       sl_error *err) {
  redis_bucket *redis = bucket->backend;
  char *owned;
  size_t full_len;
  const char *argv[3] = {verb, full_key(redis, key, key_len, &full_len, &owned), extra};
  size_t lens[3] = {strlen(verb), full_len, extra_len};
  pthread_mutex_lock(&redis->lock);
  sl_status st = command(bucket, verb, has_extra ? 3 : 2, argv, lens, reply, err);
  pthread_mutex_unlock(&redis->lock);
  free(owned);
  return st;
}

static sl_status redis_get(sl_kv_bucket *bucket, const char *key, size_t key_len, uint8_t **value,
                           size_t *value_len, bool *found, sl_error *err) {
  redisReply *reply;
  sl_status st = keyed(bucket, "GET", key, key_len, NULL, 0, false, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR) return error_reply(bucket, reply, "GET", err);
  if (reply->type == REDIS_REPLY_STRING) {
    *found = true;
    *value = sl__kv_copy(reply->str, reply->len, false);
    *value_len = reply->len;
  } else if (reply->type != REDIS_REPLY_NIL) {
    return junk(bucket, reply, "GET", err);
  }
  freeReplyObject(reply);
  return SL_OK;
}

static sl_status redis_set(sl_kv_bucket *bucket, const char *key, size_t key_len,
                           const uint8_t *value, size_t value_len, sl_error *err) {
  redisReply *reply;
  sl_status st = keyed(bucket, "SET", key, key_len, value, value_len, true, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR) return error_reply(bucket, reply, "SET", err);
  if (reply->type != REDIS_REPLY_STATUS) return junk(bucket, reply, "SET", err);
  freeReplyObject(reply);
  return SL_OK;
}

static sl_status redis_remove(sl_kv_bucket *bucket, const char *key, size_t key_len,
                              sl_error *err) {
  redisReply *reply;
  sl_status st = keyed(bucket, "DEL", key, key_len, NULL, 0, false, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR) return error_reply(bucket, reply, "DEL", err);
  if (reply->type != REDIS_REPLY_INTEGER) return junk(bucket, reply, "DEL", err);
  freeReplyObject(reply);
  return SL_OK;
}

static sl_status redis_exists(sl_kv_bucket *bucket, const char *key, size_t key_len, bool *exists,
                              sl_error *err) {
  redisReply *reply;
  sl_status st = keyed(bucket, "EXISTS", key, key_len, NULL, 0, false, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR) return error_reply(bucket, reply, "EXISTS", err);
  if (reply->type != REDIS_REPLY_INTEGER) return junk(bucket, reply, "EXISTS", err);
  *exists = reply->integer > 0;
  freeReplyObject(reply);
  return SL_OK;
}

static sl_status redis_increment(sl_kv_bucket *bucket, const char *key, size_t key_len,
                                 int64_t delta, int64_t *result, sl_error *err) {
  char text[21];
  size_t len = sl__kv_counter_format(delta, text);
  redisReply *reply;
  sl_status st = keyed(bucket, "INCRBY", key, key_len, text, len, true, &reply, err);
  if (st != SL_OK) return st;
  if (reply->type == REDIS_REPLY_ERROR) return error_reply(bucket, reply, "INCRBY", err);
  if (reply->type != REDIS_REPLY_INTEGER) return junk(bucket, reply, "INCRBY", err);
  *result = reply->integer;
  freeReplyObject(reply);
  return SL_OK;
}

/*
 * list-keys. Redis's SCAN cursor is a number; one SCAN may return more keys than a page
 * holds (COUNT is a hint), so a cursor this backend hands out is "C" (SCAN from C) or
 * "C:S" (SCAN from C again and skip the first S keys, which the last page already had).
 */
static bool parse_cursor(const char *cursor, char *scan_cursor, size_t cap, size_t *skip) {
  *skip = 0;
  size_t digits = strspn(cursor, "0123456789");
  if (digits == 0 || digits >= cap || digits > 20) return false;
  memcpy(scan_cursor, cursor, digits);
  scan_cursor[digits] = '\0';
  if (cursor[digits] == '\0') return true;
  if (cursor[digits] != ':') return false;
  long value;
  const char *rest = cursor + digits + 1;
  if (!parse_number(rest, strlen(rest), INT_MAX, &value)) return false;
  *skip = (size_t)value;
  return true;
}

/* The MATCH pattern: the prefix with glob characters escaped, then '*'. */
static char *match_pattern(const redis_target *target, size_t *len) {
  char *pattern = malloc(2 * target->prefix_len + 2);
  if (!pattern) abort();
  size_t at = 0;
  for (size_t i = 0; i < target->prefix_len; i++) {
    if (strchr("*?[]\\", target->prefix[i]) && target->prefix[i]) pattern[at++] = '\\';
    pattern[at++] = (char)target->prefix[i];
  }
  pattern[at++] = '*';
  pattern[at] = '\0';
  *len = at;
  return pattern;
}

/* Checks SCAN's reply: [cursor digits, [string keys...]], every key under the prefix. */
static bool scan_reply_valid(const redisReply *reply, const redis_target *target) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return false;
  const redisReply *next = reply->element[0], *keys = reply->element[1];
  if (next->type != REDIS_REPLY_STRING || next->len == 0 || next->len > 20 ||
      strspn(next->str, "0123456789") != next->len)
    return false;
  if (keys->type != REDIS_REPLY_ARRAY) return false;
  for (size_t i = 0; i < keys->elements; i++) {
    const redisReply *key = keys->element[i];
    if (key->type != REDIS_REPLY_STRING || key->len < target->prefix_len ||
        (target->prefix_len && memcmp(key->str, target->prefix, target->prefix_len) != 0))
      return false;
  }
  return true;
}

static sl_status redis_list_keys(sl_kv_bucket *bucket, const char *cursor, sl_kv_key_page *page,
                                 sl_error *err) {
  redis_bucket *redis = bucket->backend;
  const redis_target *target = &redis->target;
  char scan_cursor[24] = "0";
  size_t skip = 0;
  if (cursor && !parse_cursor(cursor, scan_cursor, sizeof scan_cursor, &skip))
    return sl__kv_error(bucket, err, SL_INVALID,
                        "list-keys: \"%.40s\" is not a cursor this bucket returned", cursor);
  size_t pattern_len;
  char *pattern = match_pattern(target, &pattern_len);
  const char *argv[] = {"SCAN", scan_cursor, "COUNT", SCAN_COUNT, "MATCH", pattern};
  size_t lens[] = {4, 0, 5, strlen(SCAN_COUNT), 5, pattern_len};
  int argc = target->prefix_len ? 6 : 4;
  sl_status st = SL_OK;
  pthread_mutex_lock(&redis->lock);
  for (int scans = 0;; scans++) {
    lens[1] = strlen(scan_cursor);
    redisReply *reply;
    st = command(bucket, "SCAN", argc, argv, lens, &reply, err);
    if (st != SL_OK) break;
    if (reply->type == REDIS_REPLY_ERROR) {
      st = error_reply(bucket, reply, "SCAN", err);
      break;
    }
    if (!scan_reply_valid(reply, target)) {
      st = junk(bucket, reply, "SCAN", err);
      break;
    }
    const redisReply *keys = reply->element[1];
    size_t room = SL_KV_PAGE_KEYS - page->count;
    size_t from = skip < keys->elements ? skip : keys->elements;
    size_t take = keys->elements - from < room ? keys->elements - from : room;
    for (size_t i = from; i < from + take; i++)
      sl__kv_page_add(page, keys->element[i]->str + target->prefix_len,
                      keys->element[i]->len - target->prefix_len);
    char *next = reply->element[0]->str;
    if (from + take < keys->elements) {
      /* The page is full inside this batch: the next page scans it again and skips on. */
      char resume[48];
      snprintf(resume, sizeof resume, "%s:%zu", scan_cursor, from + take);
      page->cursor = (char *)sl__kv_copy(resume, strlen(resume), true);
    } else if (strcmp(next, "0") != 0 &&
               (page->count == SL_KV_PAGE_KEYS || scans + 1 == SCANS_PER_PAGE)) {
      page->cursor = (char *)sl__kv_copy(next, strlen(next), true);
    } else if (strcmp(next, "0") != 0) {
      snprintf(scan_cursor, sizeof scan_cursor, "%s", next);
      skip = 0;
      freeReplyObject(reply);
      continue;
    }
    freeReplyObject(reply);
    break;
  }
  pthread_mutex_unlock(&redis->lock);
  free(pattern);
  return st;
}

/* ---- bucket ------------------------------------------------------------------------------- */

static void redis_close(sl_kv_bucket *bucket) {
  redis_bucket *redis = bucket->backend;
  disconnect(redis);
  target_free(&redis->target);
  pthread_mutex_destroy(&redis->lock);
  free(redis);
  bucket->backend = NULL;
}

static const sl__kv_ops redis_ops = {
    .get = redis_get,
    .set = redis_set,
    .remove = redis_remove,
    .exists = redis_exists,
    .list_keys = redis_list_keys,
    .increment = redis_increment,
    .close = redis_close,
};

sl_status sl__kv_redis_open(sl_kv_bucket *bucket, sl_error *err) {
  redis_bucket *redis = calloc(1, sizeof *redis);
  if (!redis) abort();
  char why[300];
  if (!parse_spec(bucket->spec, &redis->target, why, sizeof why)) {
    target_free(&redis->target);
    free(redis);
    return sl_error_set(err, SL_INVALID, "bucket '%s': %s", bucket->name, why);
  }
  pthread_mutex_init(&redis->lock, NULL);
  bucket->ops = &redis_ops;
  bucket->backend = redis;
  return SL_OK;
}
