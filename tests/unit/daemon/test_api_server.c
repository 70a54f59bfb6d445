/*
 * The daemon's API server against real clients on loopback: libcurl for plain requests
 * (HTTP/1.1, h2c, TLS with h2), raw sockets where the test must control reading (streams,
 * a client that stops reading, a client that leaves).
 *
 * Covered: route parameters and percent-decoding, the token (missing, wrong, unknown
 * paths, public routes), 404, 405 with Allow, 413, answers with extra headers, a handler
 * that forgets to answer, a slow handler next to a quick public route, streams (events
 * from another thread, keep-alive pings, on_close when the client leaves, DROPPED when it
 * stops reading, on HTTP/1 and HTTP/2, many at once), listen errors (bad address, port in
 * use, non-loopback without TLS, one TLS file), TLS with a self-signed certificate, and
 * stopping with work in flight (running and queued handlers, open streams, readers that
 * stopped reading, idle connections).
 *
 * Each test runs in a process of its own (Criterion), so the handlers' globals are fresh.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/api_server.h"
#include "daemon/api_server_internal.h"

#define TOKEN "s3cret-token-0123456789"

/* ---- handlers --------------------------------------------------------------------- */

static void echo(void *user, const sl_api_request *req, sl_api_reply *reply) {
  json_t *params = json_array();
  for (int i = 0; i < SL_API_MAX_PARAMS; i++)
    json_array_append_new(params, json_string(req->params[i]));
  sl_api_reply_json(reply, 200,
                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s#}", "method", req->method, "path",
                              req->path, "query", req->query, "content_type", req->content_type,
                              "accept", req->accept, "params", params, "body",
                              (const char *)req->body, (int)req->body_len));
}

static void healthz(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_reply_json(reply, 200, json_pack("{s:s}", "status", "ok"));
}

static void slow(void *user, const sl_api_request *req, sl_api_reply *reply) {
  usleep(1000 * 1000);
  sl_api_reply_json(reply, 200, json_pack("{s:s}", "slow", "done"));
}

static void busy(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_reply_header(reply, "Retry-After", "7");
  sl_api_reply_error(reply, 409, "a deploy of %s is in progress", "demo");
}

static void plain(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_reply_bytes(reply, 200, "text/plain; version=0.0.4", "up 1\n", 5);
}

static void silent(void *user, const sl_api_request *req, sl_api_reply *reply) {}

/* The stream the last /events request opened, and how often on_close ran. */
static sl_api_stream *_Atomic opened;
static atomic_int closes;

static void on_stream_closed(void *user) { atomic_fetch_add(&closes, 1); }

static void events(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_stream *stream = sl_api_reply_stream(reply, "text/event-stream");
  sl_api_stream_on_close(stream, on_stream_closed, NULL);
  sl_api_stream_send_event(stream, json_pack("{s:i}", "hello", 1));
  atomic_store(&opened, stream);
}

/* A stream whose on_close ends it, on the loop thread: the usual way to let go. */
static void end_on_close(void *user) {
  atomic_fetch_add(&closes, 1);
  sl_api_stream_end(user);
}

static void self_ending_events(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_stream *stream = sl_api_reply_stream(reply, "text/event-stream");
  sl_api_stream_on_close(stream, end_on_close, stream);
  sl_api_stream_send_event(stream, json_pack("{s:i}", "hello", 1));
}

/* Answers twice: the second answer (a stream) is born closed, its on_close runs at once. */
static atomic_int late_send = -1;

static void answers_twice(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_reply_json(reply, 200, json_pack("{s:b}", "first", 1));
  sl_api_reply_error(reply, 500, "ignored");
  sl_api_stream *stream = sl_api_reply_stream(reply, "text/event-stream");
  atomic_store(&late_send, sl_api_stream_send(stream, "x", 1));
  sl_api_stream_on_close(stream, on_stream_closed, NULL);
  sl_api_stream_end(stream);
}

/* A stream with a feeder thread of its own, which sends until it hears CLOSED. */
static atomic_int live_feeders;

static void *self_feed(void *arg) {
  sl_api_stream *stream = arg;
  int n = 0;
  while (sl_api_stream_send_event(stream, json_pack("{s:i}", "n", n++)) != SL_STREAM_CLOSED)
    usleep(500);
  sl_api_stream_end(stream);
  atomic_fetch_sub(&live_feeders, 1);
  return NULL;
}

static void fed_events(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_stream *stream = sl_api_reply_stream(reply, "text/event-stream");
  atomic_fetch_add(&live_feeders, 1);
  pthread_t thread;
  pthread_create(&thread, NULL, self_feed, stream);
  pthread_detach(thread);
}

/* A stream the handler fills and ends before it returns. */
static void finished_stream(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_stream *stream = sl_api_reply_stream(reply, "application/x-ndjson");
  sl_api_stream_send(stream, "{\"n\":1}\n", 8);
  sl_api_stream_send(stream, "{\"n\":2}\n", 8);
  sl_api_stream_end(stream);
}

static const sl_api_route routes[] = {
    {"GET", "/healthz", true, healthz},
    {"GET", "/v1/pipelines/{}", false, echo},
    {"DELETE", "/v1/pipelines/{}", false, echo},
    {"PUT", "/v1/pipelines/{}", false, echo},
    {"GET", "/v1/pipelines/{}/nodes/{}/tap", false, echo},
    {"POST", "/v1/echo", false, echo},
    {"GET", "/slow", false, slow},
    {"GET", "/busy", false, busy},
    {"GET", "/metrics", false, plain},
    {"GET", "/silent", false, silent},
    {"GET", "/events", false, events},
    {"GET", "/ndjson", false, finished_stream},
    {"GET", "/self-ending", false, self_ending_events},
    {"GET", "/twice", false, answers_twice},
    {"GET", "/fed", false, fed_events},
};

static sl_api_server_options options(void) {
  return (sl_api_server_options){.listen = "127.0.0.1:0",
                                 .token = TOKEN,
                                 .routes = routes,
                                 .route_count = sizeof routes / sizeof routes[0]};
}

static sl_api_server *start(sl_api_server_options opts) {
  sl_api_server *server = NULL;
  sl_error err = {{0}};
  sl_status st = sl_api_server_start(&opts, &server, &err);
  cr_assert_eq(st, SL_OK, "start: %s", err.message);
  cr_assert_not_null(server);
  return server;
}

/* ---- a libcurl client ------------------------------------------------------------- */

typedef struct response {
  long status;
  long version; /* CURL_HTTP_VERSION_* */
  CURLcode code;
  char *body;
  size_t body_len;
  char *headers; /* every header line, as received */
  size_t headers_len;
} response;

typedef struct growing {
  char *buf;
  size_t len;
} growing;

static size_t on_data(char *data, size_t size, size_t count, void *user) {
  growing *g = user;
  size_t n = size * count;
  g->buf = realloc(g->buf, g->len + n + 1);
  memcpy(g->buf + g->len, data, n);
  g->len += n;
  g->buf[g->len] = '\0';
  return n;
}

static size_t discard(char *data, size_t size, size_t count, void *user) { return size * count; }

typedef struct request_opts {
  const char *method; /* GET when NULL */
  const char *token;  /* none when NULL */
  const char *body;
  size_t body_len;
  const char *content_type;
  long http_version; /* 0: libcurl's default (HTTP/1.1 in clear) */
  bool tls;
  long timeout_ms; /* 0: 10 s */
} request_opts;

static response request(sl_api_server *server, const char *path, request_opts o) {
  response r = {0};
  char url[512];
  snprintf(url, sizeof url, "%s://%s%s", o.tls ? "https" : "http", sl_api_server_address(server),
           path);
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = NULL;
  char line[256];
  if (o.token) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", o.token);
    headers = curl_slist_append(headers, line);
  }
  if (o.content_type) {
    snprintf(line, sizeof line, "Content-Type: %s", o.content_type);
    headers = curl_slist_append(headers, line);
  }
  headers = curl_slist_append(headers, "Expect:");
  growing body = {0}, head = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &head);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, o.timeout_ms ? o.timeout_ms : 10000L);
  if (o.method) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, o.method);
  if (o.body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, o.body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o.body_len);
  }
  if (o.http_version) curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, o.http_version);
  if (o.tls) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  r.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_getinfo(curl, CURLINFO_HTTP_VERSION, &r.version);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  r.body = body.buf ? body.buf : strdup("");
  r.body_len = body.len;
  r.headers = head.buf ? head.buf : strdup("");
  r.headers_len = head.len;
  return r;
}

static void response_free(response *r) {
  free(r->body);
  free(r->headers);
}

/* The value of header `name` (case-insensitive), into `out`; false when absent. */
static bool header(const response *r, const char *name, char *out, size_t size) {
  size_t name_len = strlen(name);
  for (const char *line = r->headers; *line;) {
    const char *end = strstr(line, "\r\n");
    if (!end) end = line + strlen(line);
    if ((size_t)(end - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
        line[name_len] == ':') {
      const char *value = line + name_len + 1;
      while (*value == ' ') value++;
      snprintf(out, size, "%.*s", (int)(end - value), value);
      return true;
    }
    line = *end ? end + 2 : end;
  }
  return false;
}

static void expect_header(const response *r, const char *name, const char *value) {
  char got[256];
  cr_assert(header(r, name, got, sizeof got), "no %s header in:\n%s", name, r->headers);
  cr_assert_str_eq(got, value, "%s: '%s', expected '%s'", name, got, value);
}

static json_t *json_body(const response *r) {
  json_error_t error;
  json_t *json = json_loads(r->body, 0, &error);
  cr_assert_not_null(json, "not JSON (%s): '%s'", error.text, r->body);
  return json;
}

static void expect_error(const response *r, long status) {
  cr_assert_eq(r->code, CURLE_OK, "curl: %s", curl_easy_strerror(r->code));
  cr_assert_eq(r->status, status, "status %ld, expected %ld; body: %s", r->status, status, r->body);
  expect_header(r, "content-type", "application/json");
  cr_assert(r->body_len && r->body[r->body_len - 1] == '\n', "no newline after the JSON");
  json_t *json = json_body(r);
  cr_assert(json_is_string(json_object_get(json, "error")), "no error string: %s", r->body);
  json_decref(json);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a raw socket client ---------------------------------------------------------- */

/* Connected to the server; with `rcvbuf`, that receive buffer (set before connecting). */
static int dial(sl_api_server *server, int rcvbuf) {
  char host[64];
  const char *address = sl_api_server_address(server);
  const char *colon = strrchr(address, ':');
  snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  cr_assert_eq(inet_pton(AF_INET, host, &addr.sin_addr), 1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0, "connect: %s",
               strerror(errno));
  return fd;
}

static void send_text(int fd, const char *text) {
  size_t len = strlen(text);
  cr_assert_eq(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads into `buf` (NUL-terminated, appended at *len) until it holds `needle`, the peer
 * closes, or `timeout_ms` passes. True when `needle` arrived. */
static bool read_until(int fd, char *buf, size_t size, size_t *len, const char *needle,
                       int timeout_ms) {
  double deadline = now_s() + timeout_ms / 1e3;
  while (!strstr(buf, needle)) {
    int left = (int)((deadline - now_s()) * 1e3);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&p, 1, left) <= 0) return false;
    if (*len + 1 >= size) return false;
    ssize_t n = recv(fd, buf + *len, size - *len - 1, 0);
    if (n <= 0) return false;
    *len += (size_t)n;
    buf[*len] = '\0';
  }
  return true;
}

static sl_api_stream *wait_opened(void) {
  for (int i = 0; i < 500 && !atomic_load(&opened); i++) usleep(10 * 1000);
  sl_api_stream *stream = atomic_load(&opened);
  cr_assert_not_null(stream, "the /events handler did not run");
  return stream;
}

static bool wait_closes(int count, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (atomic_load(&closes) >= count) return true;
    usleep(10 * 1000);
  }
  return atomic_load(&closes) >= count;
}

static const char events_request[] = "GET /events HTTP/1.1\r\nHost: test\r\n"
                                     "Authorization: Bearer " TOKEN "\r\n\r\n";

/* ---- routes ----------------------------------------------------------------------- */

Test(api_server, params_are_bound_and_percent_decoded, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/v1/pipelines/a%20b/nodes/n%2Fx%C3%A9/tap?output=errors&x=%41",
                       (request_opts){.token = TOKEN});
  cr_assert_eq(r.status, 200, "body: %s", r.body);
  expect_header(&r, "content-type", "application/json");
  cr_assert(r.body_len && r.body[r.body_len - 1] == '\n', "no newline after the JSON");
  cr_assert(!strstr(r.body, "\": ") && !strstr(r.body, ", "), "not compact: %s", r.body);
  json_t *json = json_body(&r);
  json_t *params = json_object_get(json, "params");
  cr_assert_str_eq(json_string_value(json_array_get(params, 0)), "a b");
  cr_assert_str_eq(json_string_value(json_array_get(params, 1)), "n/x\xC3\xA9");
  cr_assert_str_eq(json_string_value(json_array_get(params, 2)), "");
  cr_assert_str_eq(json_string_value(json_object_get(json, "path")),
                   "/v1/pipelines/a%20b/nodes/n%2Fx%C3%A9/tap");
  cr_assert_str_eq(json_string_value(json_object_get(json, "query")), "output=errors&x=%41");
  cr_assert_str_eq(json_string_value(json_object_get(json, "method")), "GET");
  json_decref(json);
  response_free(&r);

  /* A {} binds exactly one non-empty segment. */
  r = request(server, "/v1/pipelines/a/b", (request_opts){.token = TOKEN});
  expect_error(&r, 404);
  response_free(&r);
  r = request(server, "/v1/pipelines/", (request_opts){.token = TOKEN});
  expect_error(&r, 404);
  response_free(&r);
  /* A broken escape is the client's mistake. */
  r = request(server, "/v1/pipelines/a%zz", (request_opts){.token = TOKEN});
  expect_error(&r, 400);
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, body_headers_and_method_reach_the_handler, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/v1/echo",
                       (request_opts){.method = "POST",
                                      .token = TOKEN,
                                      .body = "{\"a\":1}",
                                      .body_len = 7,
                                      .content_type = "application/json"});
  cr_assert_eq(r.status, 200, "body: %s", r.body);
  json_t *json = json_body(&r);
  cr_assert_str_eq(json_string_value(json_object_get(json, "body")), "{\"a\":1}");
  cr_assert_str_eq(json_string_value(json_object_get(json, "content_type")), "application/json");
  cr_assert_str_eq(json_string_value(json_object_get(json, "method")), "POST");
  cr_assert_str_eq(json_string_value(json_object_get(json, "query")), "");
  json_decref(json);
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, unknown_path_is_404_and_wrong_method_is_405_with_allow, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/v1/nothing", (request_opts){.token = TOKEN});
  expect_error(&r, 404);
  response_free(&r);
  r = request(server, "/v1/pipelines/demo", (request_opts){.method = "POST", .token = TOKEN});
  expect_error(&r, 405);
  expect_header(&r, "allow", "GET, DELETE, PUT");
  response_free(&r);
  r = request(server, "/v1/pipelines/demo", (request_opts){.method = "DELETE", .token = TOKEN});
  cr_assert_eq(r.status, 200);
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, replies_carry_headers_and_content_types, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/busy", (request_opts){.token = TOKEN});
  expect_error(&r, 409);
  expect_header(&r, "retry-after", "7");
  cr_assert(strstr(r.body, "a deploy of demo is in progress"), "body: %s", r.body);
  response_free(&r);
  r = request(server, "/metrics", (request_opts){.token = TOKEN});
  cr_assert_eq(r.status, 200);
  expect_header(&r, "content-type", "text/plain; version=0.0.4");
  cr_assert_str_eq(r.body, "up 1\n");
  response_free(&r);
  /* A handler that gives no answer gets a 500 rather than a hanging client. */
  r = request(server, "/silent", (request_opts){.token = TOKEN});
  expect_error(&r, 500);
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, only_the_first_answer_counts, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/twice", (request_opts){.token = TOKEN});
  cr_assert_eq(r.status, 200);
  cr_assert_str_eq(r.body, "{\"first\":true}\n");
  response_free(&r);
  cr_assert_eq(atomic_load(&late_send), SL_STREAM_CLOSED);
  cr_assert_eq(atomic_load(&closes), 1, "on_close did not run at once on a closed stream");
  sl_api_server_stop(server);
}

/* ---- the token -------------------------------------------------------------------- */

Test(api_server, token_is_required_before_anything_else, .timeout = 20) {
  sl_api_server *server = start(options());
  const char *paths[] = {"/v1/pipelines/demo", "/v1/nothing", "/metrics", "/slow"};
  const char *tokens[] = {NULL, "wrong", TOKEN "x", "s3cret-token-012345678X"};
  for (size_t p = 0; p < 4; p++) {
    for (size_t t = 0; t < 4; t++) {
      response r = request(server, paths[p], (request_opts){.token = tokens[t]});
      expect_error(&r, 401);
      expect_header(&r, "www-authenticate", "Bearer");
      response_free(&r);
    }
  }
  /* Also a method the path does not take: 401, not 405. */
  response r = request(server, "/v1/pipelines/demo", (request_opts){.method = "POST"});
  expect_error(&r, 401);
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, public_route_needs_no_token, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/healthz", (request_opts){0});
  cr_assert_eq(r.status, 200, "body: %s", r.body);
  cr_assert_str_eq(r.body, "{\"status\":\"ok\"}\n");
  response_free(&r);
  /* A wrong token does not hurt a public route either. */
  r = request(server, "/healthz", (request_opts){.token = "wrong"});
  cr_assert_eq(r.status, 200);
  response_free(&r);
  r = request(server, "/healthz", (request_opts){.method = "POST"});
  expect_error(&r, 405);
  expect_header(&r, "allow", "GET");
  response_free(&r);
  sl_api_server_stop(server);
}

/* ---- bodies ----------------------------------------------------------------------- */

Test(api_server, body_larger_than_max_body_is_413, .timeout = 20) {
  sl_api_server_options opts = options();
  opts.max_body = 1024;
  sl_api_server *server = start(opts);
  char *big = malloc(4096);
  memset(big, 'x', 4096);
  response r =
      request(server, "/v1/echo",
              (request_opts){.method = "POST", .token = TOKEN, .body = big, .body_len = 4096});
  cr_assert_eq(r.status, 413, "status %ld", r.status);
  response_free(&r);
  r = request(server, "/v1/echo",
              (request_opts){.method = "POST", .token = TOKEN, .body = big, .body_len = 1024});
  cr_assert_eq(r.status, 200, "status %ld", r.status);
  response_free(&r);
  /* A chunked body is counted as it comes. */
  int fd = dial(server, 0);
  send_text(fd, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
  char chunk[600 + 16];
  snprintf(chunk, sizeof chunk, "258\r\n%.*s\r\n", 600, big);
  for (int i = 0; i < 3; i++) send(fd, chunk, strlen(chunk), MSG_NOSIGNAL);
  static char buf[4096];
  size_t len = 0;
  read_until(fd, buf, sizeof buf, &len, "\r\n\r\n", 5000);
  cr_assert(strncmp(buf, "HTTP/1.1 413", 12) == 0, "got: %s", buf);
  close(fd);
  /* HTTP/2: h2o 2.2 refuses the stream (REFUSED_STREAM) instead of answering 413; the
   * handler never sees the body either way. */
  r = request(server, "/v1/echo",
              (request_opts){.method = "POST",
                             .token = TOKEN,
                             .body = big,
                             .body_len = 4096,
                             .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  cr_assert(r.status == 413 || r.code != CURLE_OK, "status %ld", r.status);
  response_free(&r);
  free(big);
  sl_api_server_stop(server);
}

/* ---- threads ---------------------------------------------------------------------- */

static void *slow_request(void *arg) {
  sl_api_server *server = arg;
  response *r = malloc(sizeof *r);
  *r = request(server, "/slow", (request_opts){.token = TOKEN});
  return r;
}

Test(api_server, slow_handler_does_not_block_other_requests, .timeout = 20) {
  sl_api_server *server = start(options());
  pthread_t thread;
  double began = now_s();
  pthread_create(&thread, NULL, slow_request, server);
  usleep(150 * 1000);
  response quick = request(server, "/healthz", (request_opts){0});
  double quick_done = now_s() - began;
  cr_assert_eq(quick.status, 200);
  cr_assert_lt(quick_done, 0.7, "/healthz took until %.2f s, behind the slow handler", quick_done);
  response_free(&quick);
  response *r;
  pthread_join(thread, (void **)&r);
  cr_assert_eq(r->status, 200);
  cr_assert_geq(now_s() - began, 0.9);
  response_free(r);
  free(r);
  sl_api_server_stop(server);
}

Test(api_server, client_that_leaves_during_a_handler_is_forgotten, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/slow", (request_opts){.token = TOKEN, .timeout_ms = 200});
  cr_assert_eq(r.code, CURLE_OPERATION_TIMEDOUT);
  response_free(&r);
  usleep(1200 * 1000); /* the handler answers nobody */
  r = request(server, "/healthz", (request_opts){0});
  cr_assert_eq(r.status, 200);
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, http2_cleartext_and_many_concurrent_requests, .timeout = 30) {
  sl_api_server_options opts = options();
  opts.handler_threads = 2;
  sl_api_server *server = start(opts);
  response r =
      request(server, "/v1/pipelines/x",
              (request_opts){.token = TOKEN, .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  cr_assert_eq(r.status, 200);
  cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0);
  response_free(&r);

  CURLM *multi = curl_multi_init();
  enum { N = 40 };
  CURL *easy[N];
  char url[256];
  snprintf(url, sizeof url, "http://%s/v1/pipelines/p", sl_api_server_address(server));
  struct curl_slist *auth = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
  for (int i = 0; i < N; i++) {
    easy[i] = curl_easy_init();
    curl_easy_setopt(easy[i], CURLOPT_URL, url);
    curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, auth);
    curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy[i], CURLOPT_HTTP_VERSION,
                     i % 2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1);
    curl_multi_add_handle(multi, easy[i]);
  }
  int running = 1;
  while (running) {
    curl_multi_perform(multi, &running);
    curl_multi_poll(multi, NULL, 0, 100, NULL);
  }
  for (int i = 0; i < N; i++) {
    long status = 0;
    curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &status);
    cr_assert_eq(status, 200, "request %d: %ld", i, status);
    curl_multi_remove_handle(multi, easy[i]);
    curl_easy_cleanup(easy[i]);
  }
  curl_multi_cleanup(multi);
  curl_slist_free_all(auth);
  sl_api_server_stop(server);
}

/* ---- streams ---------------------------------------------------------------------- */

static void *feed_events(void *arg) {
  sl_api_stream *stream = arg;
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(sl_api_stream_send_event(stream, json_pack("{s:i}", "n", i)), SL_STREAM_SENT);
    usleep(20 * 1000);
  }
  return NULL;
}

Test(api_server, stream_delivers_events_from_another_thread_and_notices_the_client_leaving,
     .timeout = 20) {
  sl_api_server *server = start(options());
  int fd = dial(server, 0);
  send_text(fd, events_request);
  static char buf[65536];
  size_t len = 0;
  cr_assert(read_until(fd, buf, sizeof buf, &len, "data: {\"hello\":1}\n\n", 5000), "got: %s", buf);
  cr_assert(strstr(buf, "HTTP/1.1 200"), "got: %s", buf);
  cr_assert(strcasestr(buf, "content-type: text/event-stream"), "got: %s", buf);
  cr_assert(strcasestr(buf, "cache-control: no-cache"), "got: %s", buf);

  sl_api_stream *stream = wait_opened();
  pthread_t feeder;
  pthread_create(&feeder, NULL, feed_events, stream);
  pthread_join(feeder, NULL);
  cr_assert(read_until(fd, buf, sizeof buf, &len, "data: {\"n\":4}\n\n", 5000), "got: %s", buf);
  for (int i = 0; i < 4; i++) {
    char event[32];
    snprintf(event, sizeof event, "data: {\"n\":%d}\n\n", i);
    cr_assert(strstr(buf, event), "no %s in: %s", event, buf);
  }
  cr_assert_eq(atomic_load(&closes), 0);

  /* The client leaves; over HTTP/1 the server notices when it writes next. */
  close(fd);
  sl_stream_send sent = SL_STREAM_SENT;
  for (int i = 0; i < 500 && sent != SL_STREAM_CLOSED; i++) {
    sent = sl_api_stream_send(stream, "data: {}\n\n", 10);
    usleep(10 * 1000);
  }
  cr_assert_eq(sent, SL_STREAM_CLOSED);
  cr_assert(wait_closes(1, 2000), "on_close did not run");
  sl_api_stream_end(stream);
  cr_assert_eq(atomic_load(&closes), 1);
  sl_api_server_stop(server);
  cr_assert_eq(atomic_load(&closes), 1, "on_close ran twice");
}

Test(api_server, stream_ended_by_the_handler_is_a_complete_body, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/ndjson", (request_opts){.token = TOKEN});
  cr_assert_eq(r.status, 200);
  expect_header(&r, "content-type", "application/x-ndjson");
  cr_assert_str_eq(r.body, "{\"n\":1}\n{\"n\":2}\n");
  response_free(&r);
  r = request(server, "/ndjson",
              (request_opts){.token = TOKEN, .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  cr_assert_eq(r.status, 200);
  cr_assert_str_eq(r.body, "{\"n\":1}\n{\"n\":2}\n");
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, event_stream_gets_keepalive_pings, .timeout = 20) {
  sl__api_server_ping_ms = 100;
  sl_api_server *server = start(options());
  int fd = dial(server, 0);
  send_text(fd, events_request);
  static char buf[65536];
  size_t len = 0;
  cr_assert(read_until(fd, buf, sizeof buf, &len, ": ping\n\n", 3000), "got: %s", buf);
  sl_api_stream *stream = wait_opened();
  sl_api_stream_end(stream);
  cr_assert(read_until(fd, buf, sizeof buf, &len, "\r\n0\r\n\r\n", 3000), "no end: %s", buf);
  close(fd);
  sl_api_server_stop(server);
  cr_assert_eq(atomic_load(&closes), 0, "on_close ran after the feeder ended the stream");
  sl__api_server_ping_ms = 15000;
}

Test(api_server, stream_drops_when_the_client_stops_reading, .timeout = 30) {
  sl_api_server *server = start(options());
  int fd = dial(server, 4096);
  send_text(fd, events_request);
  static char buf[65536];
  size_t len = 0;
  cr_assert(read_until(fd, buf, sizeof buf, &len, "data: {\"hello\":1}\n\n", 5000), "got: %s", buf);
  sl_api_stream *stream = wait_opened();
  /* The client reads nothing more: kernel buffers fill, then h2o's send waits, then the
   * stream's 1 MiB buffer fills. */
  static char chunk[65536];
  memset(chunk, 'x', sizeof chunk);
  size_t sent_bytes = 0;
  sl_stream_send sent = SL_STREAM_SENT;
  while (sent == SL_STREAM_SENT && sent_bytes < ((size_t)256 << 20)) {
    sent = sl_api_stream_send(stream, chunk, sizeof chunk);
    if (sent == SL_STREAM_SENT) sent_bytes += sizeof chunk;
    usleep(200);
  }
  cr_assert_eq(sent, SL_STREAM_DROPPED, "after %zu bytes: %d", sent_bytes, sent);
  cr_assert_geq(sent_bytes, SL_API_STREAM_BUFFER);
  /* Dropping is not closing: a small send may still fit, the stream stays usable. */
  cr_assert_eq(atomic_load(&closes), 0);
  close(fd);
  sl_api_stream_end(stream);
  sl_api_server_stop(server);
}

Test(api_server, stop_with_an_open_stream_ends_it_and_runs_on_close, .timeout = 20) {
  sl_api_server *server = start(options());
  int fd = dial(server, 0);
  send_text(fd, events_request);
  static char buf[65536];
  size_t len = 0;
  cr_assert(read_until(fd, buf, sizeof buf, &len, "data: {\"hello\":1}\n\n", 5000), "got: %s", buf);
  sl_api_stream *stream = wait_opened();
  sl_api_server_stop(server);
  cr_assert_eq(atomic_load(&closes), 1, "on_close did not run once");
  cr_assert_eq(sl_api_stream_send(stream, "x", 1), SL_STREAM_CLOSED);
  /* The client saw the body end. */
  cr_assert(read_until(fd, buf, sizeof buf, &len, "\r\n0\r\n\r\n", 3000), "no end: %s", buf);
  close(fd);
  sl_api_stream_end(stream);
}

Test(api_server, stop_waits_for_running_handlers, .timeout = 20) {
  sl_api_server *server = start(options());
  pthread_t thread;
  pthread_create(&thread, NULL, slow_request, server);
  usleep(200 * 1000);
  double began = now_s();
  sl_api_server_stop(server);
  cr_assert_geq(now_s() - began, 0.5, "stop did not wait for the handler");
  response *r;
  pthread_join(thread, (void **)&r);
  cr_assert(r->status == 503 || r->code != CURLE_OK, "status %ld", r->status);
  response_free(r);
  free(r);
}

Test(api_server, stop_with_idle_connections_is_quick, .timeout = 20) {
  sl_api_server *server = start(options());
  int fds[3];
  for (int i = 0; i < 3; i++) fds[i] = dial(server, 0);
  /* One of them with a request half sent. */
  send_text(fds[1], "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  usleep(50 * 1000);
  double began = now_s();
  sl_api_server_stop(server);
  cr_assert_lt(now_s() - began, 2.0);
  for (int i = 0; i < 3; i++) close(fds[i]);
}

static void *events_over_h2(void *arg) {
  sl_api_server *server = arg;
  response *r = malloc(sizeof *r);
  *r = request(server, "/events",
               (request_opts){.token = TOKEN, .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  return r;
}

Test(api_server, http2_stream_client_leaving_runs_on_close_without_a_write, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/events",
                       (request_opts){.token = TOKEN,
                                      .timeout_ms = 300,
                                      .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  cr_assert_eq(r.code, CURLE_OPERATION_TIMEDOUT);
  cr_assert(strstr(r.body, "data: {\"hello\":1}\n\n"), "body: %s", r.body);
  response_free(&r);
  cr_assert(wait_closes(1, 3000), "on_close did not run");
  sl_api_stream *stream = wait_opened();
  cr_assert_eq(sl_api_stream_send(stream, "x", 1), SL_STREAM_CLOSED);
  sl_api_stream_end(stream);
  sl_api_server_stop(server);
}

Test(api_server, on_close_may_end_the_stream, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/self-ending",
                       (request_opts){.token = TOKEN,
                                      .timeout_ms = 300,
                                      .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  cr_assert(strstr(r.body, "data: {\"hello\":1}\n\n"), "body: %s", r.body);
  response_free(&r);
  cr_assert(wait_closes(1, 3000), "on_close did not run");
  sl_api_server_stop(server);
}

Test(api_server, stop_with_an_http2_stream_ends_it, .timeout = 20) {
  sl_api_server *server = start(options());
  pthread_t client;
  pthread_create(&client, NULL, events_over_h2, server);
  sl_api_stream *stream = wait_opened();
  usleep(100 * 1000);
  double began = now_s();
  sl_api_server_stop(server);
  cr_assert_lt(now_s() - began, 2.0);
  cr_assert_eq(atomic_load(&closes), 1);
  response *r;
  pthread_join(client, (void **)&r);
  cr_assert_eq(r->code, CURLE_OK, "curl: %s", curl_easy_strerror(r->code));
  cr_assert_eq(r->status, 200);
  cr_assert(strstr(r->body, "data: {\"hello\":1}\n\n"), "body: %s", r->body);
  response_free(r);
  free(r);
  sl_api_stream_end(stream);
}

Test(api_server, stop_cuts_a_client_that_does_not_read, .timeout = 20) {
  sl_api_server *server = start(options());
  int fd = dial(server, 4096);
  send_text(fd, events_request);
  static char buf[65536];
  size_t len = 0;
  cr_assert(read_until(fd, buf, sizeof buf, &len, "data: {\"hello\":1}\n\n", 5000), "got: %s", buf);
  sl_api_stream *stream = wait_opened();
  static char chunk[65536];
  size_t sent_bytes = 0;
  while (sl_api_stream_send(stream, chunk, sizeof chunk) == SL_STREAM_SENT &&
         sent_bytes < ((size_t)256 << 20)) {
    sent_bytes += sizeof chunk;
    usleep(200);
  }
  double began = now_s();
  sl_api_server_stop(server);
  cr_assert_lt(now_s() - began, 3.0);
  cr_assert_eq(atomic_load(&closes), 1);
  cr_assert_eq(sl_api_stream_send(stream, "x", 1), SL_STREAM_CLOSED);
  sl_api_stream_end(stream);
  close(fd);
}

Test(api_server, queued_calls_are_answered_503_at_stop, .timeout = 20) {
  sl_api_server_options opts = options();
  opts.handler_threads = 1;
  sl_api_server *server = start(opts);
  pthread_t threads[3];
  for (int i = 0; i < 3; i++) pthread_create(&threads[i], NULL, slow_request, server);
  usleep(300 * 1000);
  double began = now_s();
  sl_api_server_stop(server);
  cr_assert_lt(now_s() - began, 1.9, "stop ran the queued handlers");
  for (int i = 0; i < 3; i++) {
    response *r;
    pthread_join(threads[i], (void **)&r);
    cr_assert(r->status == 503 || r->code != CURLE_OK, "status %ld", r->status);
    response_free(r);
    free(r);
  }
}

Test(api_server, http1_upgrade_to_h2c, .timeout = 20) {
  sl_api_server *server = start(options());
  response r = request(server, "/v1/pipelines/up",
                       (request_opts){.token = TOKEN, .http_version = CURL_HTTP_VERSION_2_0});
  cr_assert_eq(r.status, 200);
  cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0);
  response_free(&r);
  sl_api_server_stop(server);
}

static void *come_and_go(void *arg) {
  sl_api_server *server = arg;
  static const char fed_request[] = "GET /fed HTTP/1.1\r\nHost: test\r\n"
                                    "Authorization: Bearer " TOKEN "\r\n\r\n";
  for (int i = 0; i < 15; i++) {
    int fd = dial(server, i % 3 ? 0 : 4096);
    send_text(fd, fed_request);
    char buf[8192] = "";
    size_t len = 0;
    read_until(fd, buf, sizeof buf, &len, i % 2 ? "data:" : "\"n\":5}", 5000);
    close(fd);
  }
  return NULL;
}

Test(api_server, streams_coming_and_going_under_load_then_stop, .timeout = 60) {
  sl_api_server *server = start(options());
  pthread_t clients[6];
  for (int i = 0; i < 6; i++) pthread_create(&clients[i], NULL, come_and_go, server);
  int stay[4];
  for (int i = 0; i < 4; i++) {
    stay[i] = dial(server, 4096);
    send_text(stay[i], "GET /fed HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\n\r\n");
  }
  for (int i = 0; i < 6; i++) pthread_join(clients[i], NULL);
  sl_api_server_stop(server);
  for (int i = 0; i < 500 && atomic_load(&live_feeders); i++) usleep(10 * 1000);
  cr_assert_eq(atomic_load(&live_feeders), 0, "feeders still running after stop");
  for (int i = 0; i < 4; i++) close(stay[i]);
}

/* ---- listening -------------------------------------------------------------------- */

Test(api_server, address_in_use_is_an_io_error, .timeout = 20) {
  sl_api_server *first = start(options());
  sl_api_server_options opts = options();
  opts.listen = sl_api_server_address(first);
  sl_api_server *second = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_api_server_start(&opts, &second, &err), SL_IO, "%s", err.message);
  cr_assert_null(second);
  cr_assert(strstr(err.message, "address already in use"), "message: %s", err.message);
  cr_assert(strstr(err.message, sl_api_server_address(first)), "message: %s", err.message);
  cr_assert(strstr(err.message, "sluice up"), "message: %s", err.message);
  sl_api_server_stop(first);
}

Test(api_server, address_reports_the_bound_port, .timeout = 20) {
  sl_api_server_options opts = options();
  opts.listen = "localhost:0";
  sl_api_server *server = start(opts);
  const char *address = sl_api_server_address(server);
  cr_assert(strncmp(address, "127.0.0.1:", 10) == 0 || strncmp(address, "[::1]:", 6) == 0,
            "address %s", address);
  cr_assert_neq(atoi(strrchr(address, ':') + 1), 0, "address %s", address);
  response r = request(server, "/healthz", (request_opts){0});
  cr_assert_eq(r.status, 200);
  response_free(&r);
  sl_api_server_stop(server);
}

Test(api_server, ipv6_loopback, .timeout = 20) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  bool has_ipv6 = probe >= 0 && bind(probe, (struct sockaddr *)&any, sizeof any) == 0;
  if (probe >= 0) close(probe);
  if (!has_ipv6) cr_skip_test("no IPv6 loopback here");
  sl_api_server_options opts = options();
  opts.listen = "[::1]:0";
  sl_api_server *server = start(opts);
  cr_assert(strncmp(sl_api_server_address(server), "[::1]:", 6) == 0, "address %s",
            sl_api_server_address(server));
  response r = request(server, "/healthz", (request_opts){0});
  cr_assert_eq(r.status, 200, "curl: %s", curl_easy_strerror(r.code));
  response_free(&r);
  sl_api_server_stop(server);
}

static void expect_config_error(sl_api_server_options opts, const char *needle) {
  sl_api_server *server = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_api_server_start(&opts, &server, &err), SL_CONFIG, "listen %s: %s", opts.listen,
               err.message);
  cr_assert_null(server);
  cr_assert(strstr(err.message, needle), "'%s' not in: %s", needle, err.message);
}

Test(api_server, bad_listen_addresses_are_config_errors) {
  const char *bad[] = {"",         "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000",
                       "::1:7400", "[::1]7400", "[nope]:7400"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sl_api_server_options opts = options();
    opts.listen = bad[i];
    expect_config_error(opts, "listen");
  }
}

Test(api_server, non_loopback_needs_tls) {
  const char *exposed[] = {"0.0.0.0:0", ":0", "[::]:0"};
  for (size_t i = 0; i < sizeof exposed / sizeof exposed[0]; i++) {
    sl_api_server_options opts = options();
    opts.listen = exposed[i];
    expect_config_error(opts, "--tls-cert");
    expect_config_error(opts, "--tls-key");
  }
  sl_api_server_options opts = options();
  opts.tls_cert = "/tmp/cert.pem";
  expect_config_error(opts, "--tls-key");
  opts = options();
  opts.token = "";
  expect_config_error(opts, "token");
}

/* ---- TLS -------------------------------------------------------------------------- */

static char tls_dir[64], cert_path[128], key_path[128];

static void make_certificate(void) {
  snprintf(tls_dir, sizeof tls_dir, "/tmp/sluice-api-tls-XXXXXX");
  cr_assert(mkdtemp(tls_dir));
  snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tls_dir);
  snprintf(key_path, sizeof key_path, "%s/key.pem", tls_dir);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout '%s' -out '%s' -days 1 -subj /CN=localhost >/dev/null 2>&1",
           key_path, cert_path);
  cr_assert_eq(system(cmd), 0, "openssl could not make a certificate");
}

static void remove_certificate(void) {
  unlink(cert_path);
  unlink(key_path);
  rmdir(tls_dir);
}

Test(api_server, tls_serves_http1_and_h2, .init = make_certificate, .fini = remove_certificate,
     .timeout = 20) {
  sl_api_server_options opts = options();
  opts.tls_cert = cert_path;
  opts.tls_key = key_path;
  sl_api_server *server = start(opts);
  response r = request(server, "/v1/pipelines/tls", (request_opts){.token = TOKEN, .tls = true});
  cr_assert_eq(r.code, CURLE_OK, "curl: %s", curl_easy_strerror(r.code));
  cr_assert_eq(r.status, 200);
  cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0, "ALPN did not pick h2");
  response_free(&r);
  r = request(server, "/healthz",
              (request_opts){.tls = true, .http_version = CURL_HTTP_VERSION_1_1});
  cr_assert_eq(r.status, 200);
  cr_assert_eq(r.version, CURL_HTTP_VERSION_1_1);
  response_free(&r);
  r = request(server, "/v1/pipelines/tls", (request_opts){.tls = true});
  expect_error(&r, 401);
  response_free(&r);
  /* Plain HTTP on the TLS port gets nowhere. */
  r = request(server, "/healthz", (request_opts){.timeout_ms = 2000});
  cr_assert_neq(r.status, 200);
  response_free(&r);
  sl_api_server_stop(server);

  /* With TLS, every address is allowed. */
  opts.listen = "0.0.0.0:0";
  server = start(opts);
  sl_api_server_stop(server);
}

Test(api_server, unreadable_certificate_is_a_config_error, .init = make_certificate,
     .fini = remove_certificate) {
  sl_api_server_options opts = options();
  opts.tls_cert = "/nonexistent/cert.pem";
  opts.tls_key = key_path;
  expect_config_error(opts, "/nonexistent/cert.pem");
  opts.tls_cert = cert_path;
  opts.tls_key = cert_path; /* a certificate is not a key */
  expect_config_error(opts, "--tls-key");
}

Test(api_server, stop_with_a_reader_that_stopped_reading_over_tls, .init = make_certificate,
     .fini = remove_certificate, .timeout = 20) {
  sl_api_server_options opts = options();
  opts.tls_cert = cert_path;
  opts.tls_key = key_path;
  sl_api_server *server = start(opts);
  /* A TLS handshake that never completes. */
  int fd = dial(server, 4096);
  send_text(fd, "\x16\x03\x01");
  usleep(50 * 1000);
  double began = now_s();
  sl_api_server_stop(server);
  cr_assert_lt(now_s() - began, 3.0);
  close(fd);
}
