/*
 * http_sink.c - `type: http` with inputs: sends each event, or each group of `batch`
 * events, as the body of one POST (or PUT) request to a URL, over one reused connection.
 *
 * What goes on the wire:
 *   - batch: 1  -> one request per event; the body is the payload exactly;
 *                  Content-Type: application/octet-stream.
 *   - batch: N  -> one request per N events (the last may hold fewer); the body is every
 *                  payload followed by "\n"; Content-Type: application/x-ndjson.
 *   - The user's `headers` are sent with every request, in order; a Content-Type among
 *     them replaces the default. Nothing else is added: event metadata is not sent (no
 *     X-Meta-* headers), there is no User-Agent, and curl's "Expect: 100-continue" is
 *     turned off (unless `headers` sets Expect) so a large body costs no extra round trip.
 *
 * Outcomes of one request:
 *   - 2xx: accepted.
 *   - 5xx, 408, 429, connection failures and timeouts: the same request is sent again
 *     after `backoff`, doubling up to `max_backoff`; a `Retry-After: <seconds>` answer
 *     replaces that delay (capped at `max_backoff`; the HTTP-date form is ignored). After
 *     `max_retries` retries (unless -1) the batch fails with SL_IO. Each retry logs one
 *     warning, at most one line per second per sink; the lines left out are counted in
 *     the next one.
 *   - Anything else (other 4xx, 3xx: redirects are not followed, TLS verification and
 *     URL errors): the batch fails at once with SL_IO, naming the status and the start
 *     of the answer's body.
 * A batch that spans several requests stops at the first failing one: the requests
 * before it were accepted, yet the whole batch is reported failed (at-least-once; a
 * source that replays it sends those events again).
 *
 * Secrets: header values (Authorization, API keys...) never appear in logs or errors,
 * and a password in the URL's userinfo is shown as "***".
 *
 * Stopping: with `max_retries: -1` a write may retry for ever, so it must be possible to
 * interrupt it from another thread. `stop` (any thread, does not block) sets `stopping`,
 * wakes a retry delay at once and makes curl's progress callback (called at least once a
 * second) abort a request in flight; that write, and any later one, returns SL_CLOSED.
 * `destroy` does the same first, then waits for a write still running on another thread
 * to return, and only then frees the sink; no write may start once destroy began. The
 * runtime must therefore either call `stop` before joining the sink's thread, or call
 * `destroy` without joining it first: joining first would wait for ever. (connector.h
 * documents `stop` for sources; for this sink it means "give up retrying".)
 *
 * Sections: state and settings - small helpers - one request - write - init / destroy -
 * the connector table.
 */
#include "connectors/http/http_sink.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* How much of an error answer's body a message quotes. */
#define EXCERPT_MAX 200

/* A reason phrase longer than this is cut (it is only for messages). */
#define REASON_MAX 64

typedef struct http_sink {
  const sl_node_ctx *node;
  const http_sink_config *config;
  char *shown_url; /* config->url with any password replaced, for messages */
  CURL *curl;      /* one handle for the sink's life: its connection cache keeps alive */
  struct curl_slist *headers;
  char curl_error[CURL_ERROR_SIZE];

  /* The body of a batched request; batch: 1 sends the payload in place. */
  char *body;
  size_t body_cap;

  /* Filled by the header and body callbacks during one request. */
  char reason[REASON_MAX + 1];   /* the status line's reason phrase; may stay empty */
  long retry_after;              /* seconds from Retry-After, -1 when absent */
  char excerpt[EXCERPT_MAX + 1]; /* the start of the answer's body */
  size_t excerpt_len;

  /* Retry warnings: at most one line per second. */
  bool logged;
  uint64_t last_log_ms;
  unsigned long suppressed;

  /* destroy against a write running on another thread; see the file comment. */
  atomic_bool stopping;
  pthread_mutex_t lock;
  pthread_cond_t wake; /* signalled when stopping is set, to cut a retry delay short */
  pthread_cond_t idle; /* signalled when write returns */
  bool writing;
} http_sink;

static const char *const method_choices[] = {"POST", "PUT", NULL};

/* ---- small helpers ----------------------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* curl_global_init is not thread safe and must run once per process; it is never undone
 * (curl_global_cleanup would pull the rug from under other users of libcurl). */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void init_curl_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* The URL as messages show it: "http://user:***@host/..." when it carries a password.
 * Returns a malloc'd string the caller frees. */
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

/* A header name is a token: no separators, spaces or control characters. */
static bool valid_header_name(const char *name) {
  if (!name || !*name) return false;
  for (const char *c = name; *c; c++)
    if (*c <= ' ' || *c >= 127 || strchr("()<>@,;:\\\"/[]?={}", *c)) return false;
  return true;
}

/* A header value must not be able to start another header. */
static bool valid_header_value(const char *value) { return !value || !strpbrk(value, "\r\n"); }

/* ---- one request ------------------------------------------------------------------- */

static size_t on_header(char *line, size_t size, size_t count, void *user) {
  http_sink *sink = user;
  size_t len = size * count;
  if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    /* A new response (after a 100 Continue, say): forget the previous one's headers. */
    sink->retry_after = -1;
    sink->reason[0] = '\0';
    const char *sp = memchr(line, ' ', len);
    const char *reason = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line)) : NULL;
    if (reason) {
      reason++;
      size_t n = len - (size_t)(reason - line);
      while (n > 0 && (reason[n - 1] == '\r' || reason[n - 1] == '\n')) n--;
      if (n > REASON_MAX) n = REASON_MAX;
      memcpy(sink->reason, reason, n);
      sink->reason[n] = '\0';
    }
  } else if (len > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
    size_t i = 12;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    long seconds = 0;
    size_t digits = 0;
    for (; i < len && line[i] >= '0' && line[i] <= '9'; i++, digits++)
      if (seconds < 1000000) seconds = seconds * 10 + (line[i] - '0');
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
      i++;
    /* Only delta-seconds; an HTTP-date leaves the backoff in charge. */
    if (digits > 0 && i == len) sink->retry_after = seconds;
  }
  return len;
}

static size_t on_body(char *data, size_t size, size_t count, void *user) {
  http_sink *sink = user;
  size_t len = size * count;
  size_t room = EXCERPT_MAX - sink->excerpt_len;
  size_t n = len < room ? len : room;
  memcpy(sink->excerpt + sink->excerpt_len, data, n);
  sink->excerpt_len += n;
  return len; /* the rest is read and dropped, so the connection stays usable */
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  http_sink *sink = user;
  return atomic_load(&sink->stopping) ? 1 : 0; /* non-zero aborts the transfer */
}

/* Sends one request; *status is the HTTP status, 0 when none arrived. */
static CURLcode send_once(http_sink *sink, const char *body, size_t len, long *status) {
  sink->retry_after = -1;
  sink->reason[0] = '\0';
  sink->excerpt_len = 0;
  sink->curl_error[0] = '\0';
  *status = 0;
  /* A NULL body would make curl read the request from stdin. */
  curl_easy_setopt(sink->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(sink->curl, CURLOPT_POSTFIELDS, body ? body : "");
  CURLcode rc = curl_easy_perform(sink->curl);
  if (rc == CURLE_OK) curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, status);
  return rc;
}

/* Failures that may pass if the same request is sent again later. */
static bool retryable(CURLcode rc, long status) {
  if (rc == CURLE_OK) return status >= 500 || status == 408 || status == 429;
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  default:
    return false;
  }
}

/* "answered 503 Service Unavailable" or "got no answer: Failed to connect to ...". */
static void describe(const http_sink *sink, CURLcode rc, long status, char *out, size_t size) {
  if (rc != CURLE_OK)
    snprintf(out, size, "got no answer: %s",
             sink->curl_error[0] ? sink->curl_error : curl_easy_strerror(rc));
  else
    snprintf(out, size, "answered %ld%s%s", status, sink->reason[0] ? " " : "", sink->reason);
}

/* The start of the answer's body on one line: control characters become spaces. */
static void body_excerpt(const http_sink *sink, char *out) {
  size_t n = sink->excerpt_len;
  while (n > 0 && (unsigned char)sink->excerpt[n - 1] <= ' ') n--;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)sink->excerpt[i];
    out[i] = c < ' ' || c == 127 ? ' ' : (char)c;
  }
  out[n] = '\0';
}

static void log_retry(http_sink *sink, const char *what, unsigned attempt, uint64_t delay) {
  uint64_t now = now_ms();
  if (sink->logged && now - sink->last_log_ms < 1000) {
    sink->suppressed++;
    return;
  }
  char budget[64] = "";
  if (sink->config->max_retries >= 0)
    snprintf(budget, sizeof budget, " of %lld", (long long)sink->config->max_retries + 1);
  char skipped[64] = "";
  if (sink->suppressed)
    snprintf(skipped, sizeof skipped, " (%lu similar lines suppressed)", sink->suppressed);
  sl_node_log(sink->node, SL_LOG_WARN, "http sink: %s %s %s (attempt %u%s); retrying in %llu ms%s",
              sink->config->method, sink->shown_url, what, attempt, budget,
              (unsigned long long)delay, skipped);
  sink->logged = true;
  sink->last_log_ms = now;
  sink->suppressed = 0;
}

/* Waits `ms` unless stop or destroy begins meanwhile; false when it did. */
static bool pause_unless_stopping(http_sink *sink, uint64_t ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += (time_t)(ms / 1000);
  deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&sink->lock);
  while (!atomic_load(&sink->stopping))
    if (pthread_cond_timedwait(&sink->wake, &sink->lock, &deadline) == ETIMEDOUT) break;
  bool stopped = atomic_load(&sink->stopping);
  pthread_mutex_unlock(&sink->lock);
  return !stopped;
}

/* Sends one body until it is accepted, fails for good, or the sink is stopped. */
static sl_status deliver(http_sink *sink, const char *body, size_t len, sl_error *err) {
  const http_sink_config *cfg = sink->config;
  uint64_t backoff = min_u64(cfg->backoff, cfg->max_backoff);
  char what[CURL_ERROR_SIZE + 160];
  for (unsigned attempt = 1;; attempt++) {
    long status = 0;
    CURLcode rc = send_once(sink, body, len, &status);
    if (rc == CURLE_OK && status >= 200 && status <= 299) return SL_OK;
    if (atomic_load(&sink->stopping))
      return sl_error_set(err, SL_CLOSED, "http sink: %s %s: stopped after %u attempts",
                          cfg->method, sink->shown_url, attempt);
    describe(sink, rc, status, what, sizeof what);
    if (!retryable(rc, status)) {
      if (rc != CURLE_OK)
        return sl_error_set(err, SL_IO, "http sink: %s %s %s", cfg->method, sink->shown_url, what);
      char excerpt[EXCERPT_MAX + 1];
      body_excerpt(sink, excerpt);
      return sl_error_set(err, SL_IO, "http sink: %s %s %s%s%s", cfg->method, sink->shown_url, what,
                          excerpt[0] ? ": " : "", excerpt);
    }
    if (cfg->max_retries >= 0 && attempt > (uint64_t)cfg->max_retries)
      return sl_error_set(err, SL_IO, "http sink: %s %s %s; gave up after %u attempts", cfg->method,
                          sink->shown_url, what, attempt);
    uint64_t delay = backoff;
    if (rc == CURLE_OK && sink->retry_after >= 0)
      delay = min_u64((uint64_t)sink->retry_after * 1000u, cfg->max_backoff);
    log_retry(sink, what, attempt, delay);
    if (!pause_unless_stopping(sink, delay))
      return sl_error_set(err, SL_CLOSED, "http sink: %s %s: stopped after %u attempts",
                          cfg->method, sink->shown_url, attempt);
    backoff = min_u64(backoff > UINT64_MAX / 2 ? UINT64_MAX : backoff * 2, cfg->max_backoff);
  }
}

/* ---- write ------------------------------------------------------------------------- */

/* Joins events [first, first + count) into sink->body, each payload followed by "\n". */
static size_t join_payloads(http_sink *sink, const sl_event_list *batch, size_t first,
                            size_t count) {
  size_t len = 0;
  for (size_t i = first; i < first + count; i++) len += batch->items[i].payload.len + 1;
  if (len > sink->body_cap) {
    char *grown = realloc(sink->body, len);
    if (!grown) abort();
    sink->body = grown;
    sink->body_cap = len;
  }
  size_t at = 0;
  for (size_t i = first; i < first + count; i++) {
    const sl_bytes *payload = &batch->items[i].payload;
    if (payload->len) memcpy(sink->body + at, payload->ptr, payload->len);
    at += payload->len;
    sink->body[at++] = '\n';
  }
  return at;
}

static sl_status write_batch(void *state, const sl_event_list *batch, sl_error *err) {
  http_sink *sink = state;
  const http_sink_config *cfg = sink->config;
  pthread_mutex_lock(&sink->lock);
  bool stopped = atomic_load(&sink->stopping);
  sink->writing = !stopped;
  pthread_mutex_unlock(&sink->lock);
  if (stopped) return sl_error_set(err, SL_CLOSED, "http sink: stopped");

  sl_status st = SL_OK;
  size_t per_request = (size_t)cfg->batch;
  for (size_t first = 0; first < batch->count && st == SL_OK; first += per_request) {
    size_t count = min_u64(per_request, batch->count - first);
    if (cfg->batch == 1) {
      const sl_bytes *payload = &batch->items[first].payload;
      st = deliver(sink, (const char *)payload->ptr, payload->len, err);
    } else {
      size_t len = join_payloads(sink, batch, first, count);
      st = deliver(sink, sink->body, len, err);
    }
  }

  /* Once `writing` is false destroy may free the sink: touch nothing after the unlock. */
  pthread_mutex_lock(&sink->lock);
  sink->writing = false;
  pthread_cond_broadcast(&sink->idle);
  pthread_mutex_unlock(&sink->lock);
  return st;
}

/* ---- init / destroy ---------------------------------------------------------------- */

/* Interrupts a running write and fails later ones with SL_CLOSED. Any thread. */
static void stop(void *state) {
  http_sink *sink = state;
  pthread_mutex_lock(&sink->lock);
  atomic_store(&sink->stopping, true);
  pthread_cond_broadcast(&sink->wake);
  pthread_mutex_unlock(&sink->lock);
}

static void destroy(void *state) {
  http_sink *sink = state;
  if (!sink) return;
  stop(sink);
  pthread_mutex_lock(&sink->lock);
  while (sink->writing) pthread_cond_wait(&sink->idle, &sink->lock);
  pthread_mutex_unlock(&sink->lock);
  if (sink->curl) curl_easy_cleanup(sink->curl);
  curl_slist_free_all(sink->headers);
  pthread_cond_destroy(&sink->idle);
  pthread_cond_destroy(&sink->wake);
  pthread_mutex_destroy(&sink->lock);
  free(sink->body);
  free(sink->shown_url);
  free(sink);
}

/* Appends one "Name: value" line; an empty value is written "Name;" (curl's convention:
 * "Name:" would remove the header instead). */
static void add_header(http_sink *sink, const char *name, const char *value) {
  size_t size = strlen(name) + (value ? strlen(value) : 0) + 3;
  char *line = malloc(size);
  if (!line) abort();
  if (value && *value)
    snprintf(line, size, "%s: %s", name, value);
  else
    snprintf(line, size, "%s;", name);
  struct curl_slist *grown = curl_slist_append(sink->headers, line);
  free(line);
  if (!grown) abort();
  sink->headers = grown;
}

static sl_status check_config(const http_sink_config *cfg, sl_error *err) {
  if (!cfg->url ||
      (strncasecmp(cfg->url, "http://", 7) != 0 && strncasecmp(cfg->url, "https://", 8) != 0)) {
    char *shown = redact_url(cfg->url ? cfg->url : "");
    sl_status st =
        sl_error_set(err, SL_CONFIG, "url: must start with http:// or https://, got \"%s\"", shown);
    free(shown);
    return st;
  }
  if (cfg->method && strcmp(cfg->method, "POST") != 0 && strcmp(cfg->method, "PUT") != 0)
    return sl_error_set(err, SL_CONFIG, "method: must be POST or PUT, got \"%s\"", cfg->method);
  if (cfg->batch < 1)
    return sl_error_set(err, SL_CONFIG, "batch: must be at least 1 (events per request), got %lld",
                        (long long)cfg->batch);
  if (cfg->max_retries < -1)
    return sl_error_set(err, SL_CONFIG,
                        "max_retries: must be -1 (retry until shutdown) or at least 0, got %lld",
                        (long long)cfg->max_retries);
  for (size_t i = 0; i < cfg->headers.count; i++) {
    const char *name = cfg->headers.keys[i];
    if (!valid_header_name(name))
      return sl_error_set(err, SL_CONFIG,
                          "headers: \"%s\" is not a valid header name (letters, digits and "
                          "!#$%%&'*+-.^_`|~ only)",
                          name ? name : "");
    /* The value is never quoted: it may be a secret. */
    if (!valid_header_value(cfg->headers.values[i]))
      return sl_error_set(err, SL_CONFIG, "headers: the value of %s must not contain line breaks",
                          name);
  }
  return SL_OK;
}

static bool user_sets(const http_sink_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->headers.count; i++)
    if (strcasecmp(cfg->headers.keys[i], name) == 0) return true;
  return false;
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const http_sink_config *cfg = config;
  sl_status st = check_config(cfg, err);
  if (st != SL_OK) return st;
  pthread_once(&curl_once, init_curl_once);
  if (curl_init_result != CURLE_OK)
    return sl_error_set(err, SL_IO, "http sink: initialising libcurl failed: %s",
                        curl_easy_strerror(curl_init_result));

  http_sink *sink = calloc(1, sizeof *sink);
  if (!sink) return sl_error_set(err, SL_NOMEM, "out of memory");
  sink->node = node;
  sink->config = cfg;
  sink->shown_url = redact_url(cfg->url);
  atomic_init(&sink->stopping, false);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&sink->lock, NULL);
  pthread_cond_init(&sink->wake, &attr);
  pthread_cond_init(&sink->idle, NULL);
  pthread_condattr_destroy(&attr);

  for (size_t i = 0; i < cfg->headers.count; i++)
    add_header(sink, cfg->headers.keys[i], cfg->headers.values[i]);
  if (!user_sets(cfg, "Content-Type"))
    add_header(sink, "Content-Type",
               cfg->batch > 1 ? "application/x-ndjson" : "application/octet-stream");
  if (!user_sets(cfg, "Expect")) {
    struct curl_slist *grown = curl_slist_append(sink->headers, "Expect:");
    if (!grown) abort();
    sink->headers = grown;
  }

  sink->curl = curl_easy_init();
  if (!sink->curl) {
    st = sl_error_set(err, SL_IO, "http sink: curl_easy_init failed");
    goto fail;
  }
  CURL *curl = sink->curl;
  curl_easy_setopt(curl, CURLOPT_URL, cfg->url);
  if (strcmp(cfg->method ? cfg->method : "POST", "PUT") == 0)
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, sink->headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)min_u64(cfg->timeout, LONG_MAX));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, sink->curl_error);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, sink);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, sink);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  if (curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
    st = sl_error_set(err, SL_IO, "http sink: this libcurl cannot speak http and https");
    goto fail;
  }
  *state = sink;
  return SL_OK;

fail:
  destroy(sink);
  return st;
}

/* ---- the connector table ----------------------------------------------------------- */

static const sl_conf_field fields[] = {
    {"url", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(http_sink_config, url),
     "Where to send events, e.g. http://127.0.0.1:8080/ingest.", NULL},
    {"method", SL_CONF_ENUM, 0, "POST", offsetof(http_sink_config, method), "The request method.",
     method_choices},
    {"headers", SL_CONF_MAP, 0, NULL, offsetof(http_sink_config, headers),
     "Extra request headers (values may use ${secret:NAME}).", NULL},
    {"batch", SL_CONF_INT, 0, "1", offsetof(http_sink_config, batch),
     "Events per request; above 1 the body is the payloads joined by newlines.", NULL},
    {"timeout", SL_CONF_DURATION, 0, "10s", offsetof(http_sink_config, timeout),
     "Time allowed for one request.", NULL},
    {"max_retries", SL_CONF_INT, 0, "-1", offsetof(http_sink_config, max_retries),
     "Retries after a 5xx or a connection failure; -1 retries until the pipeline is torn down.",
     NULL},
    {"backoff", SL_CONF_DURATION, 0, "100ms", offsetof(http_sink_config, backoff),
     "The first retry's delay; each retry doubles it.", NULL},
    {"max_backoff", SL_CONF_DURATION, 0, "10s", offsetof(http_sink_config, max_backoff),
     "The longest delay between retries.", NULL},
    {NULL},
};

const sl_connector sl_http_sink = {
    .version = SL_CONNECTOR_VERSION,
    .name = "http",
    .kind = SL_NODE_SINK,
    .summary = "POSTs events to a URL; retries 5xx and connection failures with backoff.",
    .fields = fields,
    .config_size = sizeof(http_sink_config),
    .init = init,
    .stop = stop,
    .write = write_batch,
    .destroy = destroy,
};
