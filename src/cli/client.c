/*
 * client.c - the client commands' HTTP client for the daemon's API (client.h), on libcurl.
 *
 * Map: finding the daemon and the token | one transfer (body or Server-Sent Events) |
 * failures as messages | the public calls | interrupts | printing helpers | tables.
 *
 * One curl handle per client, reset between requests, so a command that polls (top)
 * keeps its connection. A stream's bytes go through a line buffer: an event may arrive
 * split across reads, or several in one read; a blank line ends each event.
 */
#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/cli.h"
#include "core/files.h"

enum { CONNECT_TIMEOUT_S = 10, MAX_BODY = 256 << 20 };

struct sl_client {
  char command[64];
  char server[1024];
  char *token;              /* NULL when none was found */
  char token_from[1100];    /* "$SLUICE_TOKEN" or the file it was read from */
  char token_missing[1400]; /* why there is no token, for a 401 */
  bool loopback;            /* never through a proxy */
  CURL *curl;
};

/* --- finding the daemon and the token ------------------------------------------- */

static const char *env(const char *name) {
  const char *value = getenv(name);
  return value && *value ? value : NULL;
}

static void trim_end(char *text) {
  size_t n = strlen(text);
  while (n &&
         (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '\t'))
    text[--n] = '\0';
}

static void find_token(sl_client *client) {
  const char *given = env("SLUICE_TOKEN");
  if (given) {
    client->token = strdup(given);
    if (!client->token) abort();
    trim_end(client->token);
    snprintf(client->token_from, sizeof client->token_from, "$SLUICE_TOKEN");
    return;
  }
  char path[1100];
  const char *home = env("SLUICE_HOME");
  if (home)
    snprintf(path, sizeof path, "%s/token", home);
  else
    snprintf(path, sizeof path, "%s/.sluice/token", env("HOME") ? env("HOME") : "/tmp");
  snprintf(client->token_from, sizeof client->token_from, "%s", path);
  uint8_t *data = NULL;
  size_t len = 0;
  sl_error err;
  if (sl__read_file(path, &data, &len, &err) != SL_OK) {
    snprintf(client->token_missing, sizeof client->token_missing, "SLUICE_TOKEN is not set and %s",
             err.message);
    return;
  }
  trim_end((char *)data);
  if (!data[0]) {
    snprintf(client->token_missing, sizeof client->token_missing,
             "SLUICE_TOKEN is not set and %s is empty", path);
    free(data);
    return;
  }
  client->token = (char *)data;
}

static bool host_is_loopback(const char *url) {
  const char *host = strstr(url, "://");
  host = host ? host + 3 : url;
  return strncmp(host, "127.", 4) == 0 || strncasecmp(host, "localhost", 9) == 0 ||
         strncmp(host, "[::1]", 5) == 0;
}

int sl_client_open(const char *command, const char *server, sl_client **out) {
  const char *flag = server ? "--server" : "SLUICE_SERVER";
  if (!server) server = env("SLUICE_SERVER");
  if (!server) {
    server = SL_CLIENT_DEFAULT_SERVER;
    flag = "the default server";
  }
  const char *scheme_end = strstr(server, "://");
  if (scheme_end && strncasecmp(server, "http://", 7) != 0 &&
      strncasecmp(server, "https://", 8) != 0) {
    fprintf(stderr, "sluice %s: %s: expected http://HOST:PORT or https://HOST:PORT, got '%s'\n",
            command, flag, server);
    return SL_EXIT_USAGE;
  }
  if (!server[0] || (scheme_end && !scheme_end[3])) {
    fprintf(stderr, "sluice %s: %s: expected http://HOST:PORT, got '%s'\n", command, flag, server);
    return SL_EXIT_USAGE;
  }
  sl_client *client = calloc(1, sizeof *client);
  if (!client) abort();
  snprintf(client->command, sizeof client->command, "%s", command);
  snprintf(client->server, sizeof client->server, "%s%s", scheme_end ? "" : "http://", server);
  size_t n = strlen(client->server);
  while (n > 8 && client->server[n - 1] == '/') client->server[--n] = '\0';
  client->loopback = host_is_loopback(client->server);
  find_token(client);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  client->curl = curl_easy_init();
  if (!client->curl) abort();
  *out = client;
  return SL_EXIT_OK;
}

void sl_client_free(sl_client *client) {
  if (!client) return;
  curl_easy_cleanup(client->curl);
  free(client->token);
  free(client);
}

const char *sl_client_server(const sl_client *client) { return client->server; }

/* --- one transfer ---------------------------------------------------------------- */

typedef struct buffer {
  char *data;
  size_t len, cap;
} buffer;

static void buffer_add(buffer *b, const char *data, size_t len) {
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len + 1) cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) abort();
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

typedef struct transfer {
  sl_client *client;
  sl_client_on_event on_event;
  void *user;
  bool decided;   /* status and content type looked at (first body bytes) */
  bool streaming; /* a 2xx text/event-stream: bytes are events, not a body */
  bool stopped;   /* the callback asked to end the stream */
  bool too_big;
  buffer body;  /* the body; or, streaming, the bytes after the last complete line */
  buffer event; /* streaming: the current event's data lines */
} transfer;

static volatile sig_atomic_t interrupted;
static bool catching_interrupts;

static void dispatch_event(transfer *t) {
  if (!t->event.len) return;
  json_error_t jerr;
  json_t *event = json_loadb(t->event.data, t->event.len, 0, &jerr);
  if (!event) {
    fprintf(stderr, "sluice %s: the daemon sent an event that is not JSON (%s): %.200s\n",
            t->client->command, jerr.text, t->event.data);
  } else {
    if (!t->stopped && !t->on_event(t->user, event)) t->stopped = true;
    json_decref(event);
  }
  t->event.len = 0;
}

/* One SSE line (without its end): `data:` lines gather, a blank line ends the event;
 * comments (":"), `event:`, `id:` and `retry:` carry nothing the commands need. */
static void stream_line(transfer *t, char *line, size_t len) {
  if (len && line[len - 1] == '\r') len--;
  if (len == 0) {
    dispatch_event(t);
    return;
  }
  if (len < 5 || memcmp(line, "data:", 5) != 0) return;
  line += 5;
  len -= 5;
  if (len && line[0] == ' ') line++, len--;
  if (t->event.len) buffer_add(&t->event, "\n", 1);
  buffer_add(&t->event, line, len);
}

static void stream_bytes(transfer *t, const char *data, size_t len) {
  buffer_add(&t->body, data, len);
  size_t start = 0;
  for (;;) {
    char *nl = memchr(t->body.data + start, '\n', t->body.len - start);
    if (!nl) break;
    size_t end = (size_t)(nl - t->body.data);
    stream_line(t, t->body.data + start, end - start);
    start = end + 1;
    if (t->stopped) break;
  }
  memmove(t->body.data, t->body.data + start, t->body.len - start);
  t->body.len -= start;
}

static size_t on_body(char *data, size_t size, size_t count, void *user) {
  transfer *t = user;
  size_t len = size * count;
  if (!t->decided) {
    long status = 0;
    char *type = NULL;
    curl_easy_getinfo(t->client->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->client->curl, CURLINFO_CONTENT_TYPE, &type);
    t->streaming =
        t->on_event && status / 100 == 2 && type && strncasecmp(type, "text/event-stream", 17) == 0;
    t->decided = true;
  }
  if (t->streaming) {
    stream_bytes(t, data, len);
    return t->stopped ? 0 : len; /* 0 ends the transfer (CURLE_WRITE_ERROR) */
  }
  if (t->body.len + len > MAX_BODY) {
    t->too_big = true;
    return 0;
  }
  buffer_add(&t->body, data, len);
  return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  return catching_interrupts && interrupted; /* non-zero aborts the transfer */
}

typedef struct request {
  const char *method, *path;
  const void *data; /* NULL: no body */
  size_t len;
  const char *content_type;
  sl_client_on_event on_event;
  void *user;
} request;

/* --- failures as messages -------------------------------------------------------- */

static void report_unreachable(const sl_client *client, CURLcode code, const char *detail) {
  long os_errno = 0;
  curl_easy_getinfo(client->curl, CURLINFO_OS_ERRNO, &os_errno);
  const char *reason = detail[0] ? detail : curl_easy_strerror(code);
  if (code == CURLE_COULDNT_CONNECT && os_errno) reason = strerror((int)os_errno);
  if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
      code == CURLE_SSL_CONNECT_ERROR) {
    /* The daemon is there; its certificate is not trusted. Starting one would not help. */
    fprintf(stderr,
            "sluice: the daemon at %s answered, but its TLS certificate was refused: %s. "
            "Point SLUICE_CA_CERT at the PEM file of the certificate (or of its CA).\n",
            client->server, reason);
    return;
  }
  fprintf(stderr,
          "sluice: cannot reach the daemon at %s: %s. Start it with `sluice up` (or point "
          "--server / SLUICE_SERVER at a running one).\n",
          client->server, reason);
}

static void report_unauthorized(const sl_client *client) {
  if (client->token)
    fprintf(stderr,
            "sluice %s: the daemon at %s refused the token read from %s (401 Unauthorized). "
            "Use the token that daemon wrote to its $SLUICE_HOME/token (through SLUICE_TOKEN, "
            "or SLUICE_HOME pointing at the daemon's home).\n",
            client->command, client->server, client->token_from);
  else
    fprintf(stderr,
            "sluice %s: the daemon at %s needs a token (401 Unauthorized) and none was found: "
            "%s. Set SLUICE_TOKEN, or SLUICE_HOME to the daemon's home.\n",
            client->command, client->server, client->token_missing);
}

/* A non-2xx answer: the API's error and problems (api.md "Conventions"). */
static int report_status(const sl_client *client, long status, const buffer *body) {
  if (status == 401) {
    report_unauthorized(client);
    return SL_EXIT_FAILURE;
  }
  json_t *answer = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
  const char *error = sl_client_str(answer, "error", NULL);
  if (error) {
    fprintf(stderr, "sluice %s: %s\n", client->command, error);
  } else {
    /* Not the API's JSON: the first line of whatever came back. */
    int shown = 0;
    while (body->len && shown < (int)body->len && shown < 200 && body->data[shown] != '\n') shown++;
    fprintf(stderr, "sluice %s: the daemon at %s answered HTTP %ld%s%.*s\n", client->command,
            client->server, status, shown ? ": " : "", shown, body->len ? body->data : "");
  }
  json_t *problems = json_object_get(answer, "problems");
  size_t i;
  json_t *problem;
  json_array_foreach(problems, i, problem) {
    if (json_is_string(problem)) fprintf(stderr, "%s\n", json_string_value(problem));
  }
  json_decref(answer);
  return status == 400 ? SL_EXIT_USAGE : SL_EXIT_FAILURE;
}

/* Sends `req`. On SL_EXIT_OK, *body holds what came back (nothing for a stream). */
static int perform(sl_client *client, const request *req, buffer *body) {
  CURL *curl = client->curl;
  curl_easy_reset(curl);
  char url[4096], auth[4096], error_text[CURL_ERROR_SIZE] = "";
  snprintf(url, sizeof url, "%s%s", client->server, req->path);
  struct curl_slist *headers = NULL;
  if (client->token) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", client->token);
    headers = curl_slist_append(headers, auth);
  }
  char content_type[256];
  if (req->data) {
    snprintf(content_type, sizeof content_type, "Content-Type: %s", req->content_type);
    headers = curl_slist_append(headers, content_type);
  }
  headers = curl_slist_append(headers, req->on_event ? "Accept: text/event-stream"
                                                     : "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */

  transfer t = {.client = client, .on_event = req->on_event, .user = req->user};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
  if (req->data) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
  } else if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "sluice-cli/0.1.0");
  if (client->loopback) curl_easy_setopt(curl, CURLOPT_PROXY, "");
  const char *ca = getenv("SLUICE_CA_CERT"); /* a daemon with its own certificate */
  if (ca && *ca) curl_easy_setopt(curl, CURLOPT_CAINFO, ca);

  CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

  int rc = SL_EXIT_OK;
  if (t.streaming) {
    /* A last event the daemon did not end with a blank line still counts. */
    if (code == CURLE_OK && t.body.len) stream_line(&t, t.body.data, t.body.len);
    if (code == CURLE_OK) dispatch_event(&t);
  }
  if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && t.stopped) ||
      (code == CURLE_ABORTED_BY_CALLBACK && interrupted)) {
    if (status / 100 != 2 && !(code == CURLE_ABORTED_BY_CALLBACK && !t.decided))
      rc = report_status(client, status, &t.body);
  } else if (status == 0) {
    report_unreachable(client, code, error_text);
    rc = SL_EXIT_FAILURE;
  } else if (t.too_big) {
    fprintf(stderr, "sluice %s: the daemon's answer is larger than %d MiB\n", client->command,
            MAX_BODY >> 20);
    rc = SL_EXIT_FAILURE;
  } else {
    fprintf(stderr, "sluice %s: the connection to the daemon at %s broke: %s\n", client->command,
            client->server, error_text[0] ? error_text : curl_easy_strerror(code));
    rc = SL_EXIT_FAILURE;
  }
  if (rc == SL_EXIT_OK && body && !t.streaming) {
    *body = t.body;
    t.body = (buffer){0};
  }
  free(t.body.data);
  free(t.event.data);
  return rc;
}

/* --- the public calls ------------------------------------------------------------- */

/* A reply body as JSON; NULL for an empty one. SL_EXIT_FAILURE if it is not JSON. */
static int parse_answer(const sl_client *client, buffer *body, json_t **answer) {
  if (answer) *answer = NULL;
  int rc = SL_EXIT_OK;
  if (answer && body->len) {
    json_error_t jerr;
    *answer = json_loadb(body->data, body->len, JSON_DECODE_ANY, &jerr);
    if (!*answer) {
      fprintf(stderr, "sluice %s: the daemon at %s answered something that is not JSON (%s)\n",
              client->command, client->server, jerr.text);
      rc = SL_EXIT_FAILURE;
    }
  }
  free(body->data);
  return rc;
}

int sl_client_json(sl_client *client, const char *method, const char *path, const json_t *body,
                   json_t **answer) {
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (body && !text) abort();
  request req = {.method = method,
                 .path = path,
                 .data = text,
                 .len = text ? strlen(text) : 0,
                 .content_type = "application/json"};
  buffer reply = {0};
  int rc = perform(client, &req, &reply);
  free(text);
  if (rc != SL_EXIT_OK) {
    if (answer) *answer = NULL;
    return rc;
  }
  return parse_answer(client, &reply, answer);
}

int sl_client_upload(sl_client *client, const char *method, const char *path, const void *data,
                     size_t len, const char *content_type, sl_client_on_event on_event, void *user,
                     json_t **answer) {
  request req = {.method = method,
                 .path = path,
                 .data = data ? data : "",
                 .len = len,
                 .content_type = content_type,
                 .on_event = on_event,
                 .user = user};
  buffer reply = {0};
  int rc = perform(client, &req, &reply);
  if (rc != SL_EXIT_OK) {
    if (answer) *answer = NULL;
    return rc;
  }
  return parse_answer(client, &reply, answer);
}

int sl_client_stream(sl_client *client, const char *path, sl_client_on_event on_event, void *user) {
  request req = {.method = "GET", .path = path, .on_event = on_event, .user = user};
  buffer reply = {0};
  int rc = perform(client, &req, &reply);
  if (rc == SL_EXIT_OK && reply.len) {
    /* A 2xx that was not a stream: one JSON object, handed over as one event. */
    json_t *answer = json_loadb(reply.data, reply.len, 0, NULL);
    if (answer) on_event(user, answer);
    json_decref(answer);
  }
  free(reply.data);
  return rc;
}

char *sl_client_escape(const char *text) {
  static const char hex[] = "0123456789ABCDEF";
  size_t len = strlen(text);
  char *out = malloc(len * 3 + 1);
  if (!out) abort();
  char *o = out;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '_' || *p == '.' || *p == '~') {
      *o++ = (char)*p;
    } else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}

/* --- interrupts ------------------------------------------------------------------ */

static void on_interrupt(int sig) { interrupted = 1; }

void sl_client_catch_interrupts(void) {
  struct sigaction action = {.sa_handler = on_interrupt}; /* no SA_RESTART: sleeps end */
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
  catching_interrupts = true;
}

bool sl_client_interrupted(void) { return interrupted != 0; }

void sl_client_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (!interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* --- printing helpers ------------------------------------------------------------ */

bool sl_client_output_format(const char *command, const char *value, const char *const *allowed) {
  char list[128] = "";
  size_t used = 0;
  for (size_t i = 0; allowed[i]; i++) {
    if (strcmp(value, allowed[i]) == 0) return true;
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                             i == 0           ? ""
                             : allowed[i + 1] ? ", "
                                              : " or ",
                             allowed[i]);
    if (used >= sizeof list) used = sizeof list - 1;
  }
  fprintf(stderr, "sluice %s: -o: expected %s, got '%s'\n", command, list, value);
  return false;
}

void sl_client_print_json(const json_t *value) {
  json_dumpf(value, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
  fputc('\n', stdout);
}

void sl_client_print_json_line(const json_t *value) {
  json_dumpf(value, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
  fputc('\n', stdout);
  fflush(stdout);
}

const char *sl_client_age(int64_t at_ms, char *buf, size_t cap) {
  if (at_ms <= 0) {
    snprintf(buf, cap, "-");
    return buf;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long long s = ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - at_ms) / 1000;
  if (s < 0) s = 0;
  if (s < 120)
    snprintf(buf, cap, "%llds", s);
  else if (s < 120 * 60)
    snprintf(buf, cap, "%lldm", s / 60);
  else if (s < 48 * 3600)
    snprintf(buf, cap, "%lldh", s / 3600);
  else
    snprintf(buf, cap, "%lldd", s / 86400);
  return buf;
}

static bool local_time(int64_t at_ms, struct tm *tm) {
  time_t t = (time_t)(at_ms / 1000);
  return localtime_r(&t, tm) != NULL;
}

const char *sl_client_date(int64_t at_ms, char *buf, size_t cap) {
  struct tm tm;
  if (at_ms <= 0 || !local_time(at_ms, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
    snprintf(buf, cap, "-");
  return buf;
}

const char *sl_client_clock(int64_t at_ms, char *buf, size_t cap) {
  struct tm tm;
  if (at_ms <= 0 || !local_time(at_ms, &tm))
    snprintf(buf, cap, "--:--:--.---");
  else
    snprintf(buf, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(at_ms % 1000));
  return buf;
}

const char *sl_client_swap_summary(const json_t *answer, char *buf, size_t cap) {
  const char *swap = sl_client_str(answer, "swap", "");
  double ms = sl_client_real(answer, "swap_ms", -1);
  const char *what = strcmp(swap, "start") == 0     ? "started"
                     : strcmp(swap, "overlap") == 0 ? "overlap swap"
                     : strcmp(swap, "drain") == 0   ? "drain swap"
                                                    : swap;
  if (!what[0])
    snprintf(buf, cap, "%s", "");
  else if (ms >= 0)
    snprintf(buf, cap, " (%s, %.*f ms)", what, ms < 10 ? 1 : 0, ms);
  else
    snprintf(buf, cap, " (%s)", what);
  return buf;
}

int64_t sl_client_int(const json_t *object, const char *key, int64_t fallback) {
  const json_t *value = json_object_get(object, key);
  if (json_is_integer(value)) return (int64_t)json_integer_value(value);
  if (json_is_real(value)) return (int64_t)json_real_value(value);
  return fallback;
}

double sl_client_real(const json_t *object, const char *key, double fallback) {
  const json_t *value = json_object_get(object, key);
  return json_is_number(value) ? json_number_value(value) : fallback;
}

const char *sl_client_str(const json_t *object, const char *key, const char *fallback) {
  const json_t *value = json_object_get(object, key);
  return json_is_string(value) ? json_string_value(value) : fallback;
}

/* --- tables ---------------------------------------------------------------------- */

struct sl_table {
  size_t columns, rows, cap;
  char align[16];
  char **cells; /* rows * columns, the header row first */
};

sl_table *sl_table_new(size_t columns, const char *align, const char *const *headers) {
  sl_table *table = calloc(1, sizeof *table);
  if (!table) abort();
  table->columns = columns;
  snprintf(table->align, sizeof table->align, "%s", align);
  sl_table_add(table, headers);
  return table;
}

void sl_table_add(sl_table *table, const char *const *cells) {
  if (table->rows == table->cap) {
    table->cap = table->cap ? table->cap * 2 : 16;
    table->cells = realloc(table->cells, table->cap * table->columns * sizeof *table->cells);
    if (!table->cells) abort();
  }
  for (size_t c = 0; c < table->columns; c++) {
    char *copy = strdup(cells[c] ? cells[c] : "");
    if (!copy) abort();
    table->cells[table->rows * table->columns + c] = copy;
  }
  table->rows++;
}

void sl_table_print(const sl_table *table, FILE *out) {
  int widths[32] = {0};
  size_t columns = table->columns < 32 ? table->columns : 32;
  for (size_t r = 0; r < table->rows; r++)
    for (size_t c = 0; c < columns; c++) {
      int w = (int)strlen(table->cells[r * table->columns + c]);
      if (w > widths[c]) widths[c] = w;
    }
  buffer line = {0};
  for (size_t r = 0; r < table->rows; r++) {
    line.len = 0;
    for (size_t c = 0; c < columns; c++) {
      const char *cell = table->cells[r * table->columns + c];
      int pad = widths[c] - (int)strlen(cell);
      bool right = c < sizeof table->align && table->align[c] == 'r';
      for (int i = 0; right && i < pad; i++) buffer_add(&line, " ", 1);
      buffer_add(&line, cell, strlen(cell));
      for (int i = 0; !right && i < pad; i++) buffer_add(&line, " ", 1);
      if (c + 1 < columns) buffer_add(&line, "  ", 2);
    }
    while (line.len && line.data[line.len - 1] == ' ') line.len--; /* no trailing blanks */
    fprintf(out, "%.*s\n", (int)line.len, line.data);
  }
  free(line.data);
}

void sl_table_free(sl_table *table) {
  if (!table) return;
  for (size_t i = 0; i < table->rows * table->columns; i++) free(table->cells[i]);
  free(table->cells);
  free(table);
}
