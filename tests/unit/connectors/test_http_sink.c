/*
 * The http sink against a real HTTP/1.1 server on loopback (tests/support/http_receiver):
 * request bodies and headers, batching, retries with backoff and Retry-After, failures
 * that are not retried, connection reuse, stopping an endless retry, and init errors.
 * Backoffs are milliseconds so the suite stays fast.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/http/http_sink.h"

#include <stdio.h>

#include "../../support/http_receiver.h"

static const sl_node_ctx node = {
    .pipeline = "test", .id = "out", .state_dir = "/tmp", .workers = 1};

/* The URL a config points at; each test runs in a process of its own. */
static char url[256];

/* Defaults for the tests: one event per request, 3 retries, 1-10 ms backoff. */
static http_sink_config config_for(const http_receiver *rx, const char *path) {
  http_receiver_url(rx, path, url, sizeof url);
  return (http_sink_config){.url = url,
                            .method = "POST",
                            .batch = 1,
                            .timeout = 5000,
                            .max_retries = 3,
                            .backoff = 1,
                            .max_backoff = 10};
}

static void *open_sink(const http_sink_config *cfg) {
  void *sink = NULL;
  sl_error err = {{0}};
  sl_status status = sl_http_sink.init(&node, cfg, &sink, &err);
  cr_assert_eq(status, SL_OK, "init: %s", err.message);
  cr_assert_not_null(sink);
  return sink;
}

static void fill(sl_event_list *list, const char *const *payloads, size_t count) {
  sl_event_list_init(list);
  for (size_t i = 0; i < count; i++) {
    uint8_t *payload;
    size_t len = strlen(payloads[i]);
    cr_assert_eq(sl_event_list_push(list, len, 0, &payload, NULL), SL_OK);
    if (len) memcpy(payload, payloads[i], len); /* an empty payload has no buffer */
  }
}

/* Writes `count` payloads as one batch; `err` may be NULL. */
static sl_status write_payloads(void *sink, const char *const *payloads, size_t count,
                                sl_error *err) {
  sl_event_list list;
  fill(&list, payloads, count);
  sl_status status = sl_http_sink.write(sink, &list, err);
  sl_event_list_destroy(&list);
  return status;
}

static void expect_body(http_receiver *rx, size_t index, const char *body) {
  const hr_request *req = http_receiver_request(rx, index);
  cr_assert_eq(req->body_len, strlen(body), "request %zu: body '%s', expected '%s'", index,
               req->body, body);
  cr_assert(memcmp(req->body, body, req->body_len) == 0, "request %zu: body '%s', expected '%s'",
            index, req->body, body);
}

/* ---- what goes on the wire --------------------------------------------------------- */

Test(http_sink, one_request_per_event_with_the_payload_as_body, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = config_for(rx, "/ingest?x=1");
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"first", "{\"n\": 2}", ""};
  cr_assert_eq(write_payloads(sink, payloads, 3, NULL), SL_OK);
  cr_assert_eq(http_receiver_count(rx), 3);
  for (size_t i = 0; i < 3; i++) {
    const hr_request *req = http_receiver_request(rx, i);
    cr_assert_str_eq(req->method, "POST");
    cr_assert_str_eq(req->path, "/ingest?x=1");
    expect_body(rx, i, payloads[i]);
    cr_assert_str_eq(hr_request_header(req, "Content-Type"), "application/octet-stream");
    cr_assert_null(hr_request_header(req, "Expect"));
  }
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, batch_of_three_over_seven_events_sends_three_ndjson_requests, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = config_for(rx, "/bulk");
  cfg.batch = 3;
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"e0", "e1", "e2", "e3", "e4", "e5", "e6"};
  cr_assert_eq(write_payloads(sink, payloads, 7, NULL), SL_OK);
  cr_assert_eq(http_receiver_count(rx), 3);
  expect_body(rx, 0, "e0\ne1\ne2\n");
  expect_body(rx, 1, "e3\ne4\ne5\n");
  expect_body(rx, 2, "e6\n");
  for (size_t i = 0; i < 3; i++)
    cr_assert_str_eq(hr_request_header(http_receiver_request(rx, i), "Content-Type"),
                     "application/x-ndjson");
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, custom_headers_arrive_and_metadata_is_not_sent, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = config_for(rx, "/x");
  char *keys[] = {"Authorization", "X-Tenant", "content-type"};
  char *values[] = {"Bearer s3cret", "acme", "text/plain"};
  cfg.headers = (sl_conf_map){.keys = keys, .values = values, .count = 3};
  cfg.method = "PUT";
  void *sink = open_sink(&cfg);

  sl_event_list list;
  sl_event_list_init(&list);
  uint8_t *payload;
  sl_meta *meta;
  cr_assert_eq(sl_event_list_push(&list, 5, 1, &payload, &meta), SL_OK);
  memcpy(payload, "hello", 5);
  meta[0].key = sl_bytes_from_cstr("X-Trace");
  meta[0].value = sl_bytes_from_cstr("abc");
  cr_assert_eq(sl_http_sink.write(sink, &list, NULL), SL_OK);
  sl_event_list_destroy(&list);

  const hr_request *req = http_receiver_request(rx, 0);
  cr_assert_str_eq(req->method, "PUT");
  expect_body(rx, 0, "hello");
  cr_assert_str_eq(hr_request_header(req, "Authorization"), "Bearer s3cret");
  cr_assert_str_eq(hr_request_header(req, "X-Tenant"), "acme");
  cr_assert_str_eq(hr_request_header(req, "Content-Type"), "text/plain");
  size_t content_types = 0;
  for (size_t i = 0; i < req->header_count; i++)
    content_types += strcasecmp(req->headers[i].name, "Content-Type") == 0;
  cr_assert_eq(content_types, 1, "the user's Content-Type replaces the default");
  cr_assert_null(hr_request_header(req, "X-Trace"));
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, keep_alive_reuses_one_connection, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = config_for(rx, "/x");
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"a", "b", "c", "d", "e"};
  cr_assert_eq(write_payloads(sink, payloads, 5, NULL), SL_OK);
  cr_assert_eq(write_payloads(sink, payloads, 5, NULL), SL_OK);
  cr_assert_eq(http_receiver_count(rx), 10);
  cr_assert_eq(http_receiver_connections(rx), 1);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, expect_100_continue_from_the_user_is_honoured, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = config_for(rx, "/x");
  char *keys[] = {"Expect"};
  char *values[] = {"100-continue"};
  cfg.headers = (sl_conf_map){.keys = keys, .values = values, .count = 1};
  void *sink = open_sink(&cfg);
  char big[4001];
  memset(big, 'p', 4000);
  big[4000] = '\0';
  const char *payloads[] = {big};
  uint64_t start = hr_now_ms();
  cr_assert_eq(write_payloads(sink, payloads, 1, NULL), SL_OK);
  /* curl waits a second for "100 Continue" before sending the body anyway. */
  cr_assert_lt(hr_now_ms() - start, 900, "the receiver did not answer 100 Continue");
  cr_assert_str_eq(hr_request_header(http_receiver_request(rx, 0), "Expect"), "100-continue");
  expect_body(rx, 0, big);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

/* ---- retries ----------------------------------------------------------------------- */

Test(http_sink, retries_503_twice_then_accepts, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.status = 503}, 2);
  http_sink_config cfg = config_for(rx, "/x");
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"again"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_OK, "%s", err.message);
  cr_assert_eq(http_receiver_count(rx), 3);
  for (size_t i = 0; i < 3; i++) expect_body(rx, i, "again");
  cr_assert_eq(http_receiver_connections(rx), 1, "a 503 keeps the connection");
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, retries_408_and_429, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.status = 408}, 1);
  http_receiver_script(rx, (hr_reply){.status = 429}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  cr_assert_eq(write_payloads(sink, payloads, 1, NULL), SL_OK);
  cr_assert_eq(http_receiver_count(rx), 3);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, retry_after_is_honored, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.status = 503, .headers = "Retry-After: 1\r\n"}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  cfg.max_backoff = 5000;
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  cr_assert_eq(write_payloads(sink, payloads, 1, NULL), SL_OK);
  cr_assert_eq(http_receiver_count(rx), 2);
  uint64_t gap = http_receiver_request(rx, 1)->at_ms - http_receiver_request(rx, 0)->at_ms;
  cr_assert_geq(gap, 950, "retried after %llu ms despite Retry-After: 1", (unsigned long long)gap);
  cr_assert_lt(gap, 3000, "retried after %llu ms", (unsigned long long)gap);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, retry_after_is_capped_by_max_backoff, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.status = 429, .headers = "Retry-After: 3600\r\n"}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  cfg.max_backoff = 20;
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  uint64_t start = hr_now_ms();
  cr_assert_eq(write_payloads(sink, payloads, 1, NULL), SL_OK);
  cr_assert_lt(hr_now_ms() - start, 2000);
  cr_assert_eq(http_receiver_count(rx), 2);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, gives_up_after_max_retries, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_set_default(rx, (hr_reply){.status = 500});
  http_sink_config cfg = config_for(rx, "/x");
  cfg.max_retries = 2;
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_IO);
  cr_assert_eq(http_receiver_count(rx), 3, "1 attempt + 2 retries, got %zu",
               http_receiver_count(rx));
  cr_assert(strstr(err.message, url), "%s", err.message);
  cr_assert(strstr(err.message, "500 Internal Server Error"), "%s", err.message);
  cr_assert(strstr(err.message, "3 attempts"), "%s", err.message);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, closed_connection_is_retried_on_a_new_one, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.action = HR_CLOSE}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_OK, "%s", err.message);
  cr_assert_eq(http_receiver_count(rx), 2);
  cr_assert_eq(http_receiver_connections(rx), 2);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, timeout_is_retried, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.action = HR_HANG}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  cfg.timeout = 200;
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_OK, "%s", err.message);
  cr_assert_eq(http_receiver_count(rx), 2);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, connection_refused_fails_after_max_retries, .timeout = 10) {
  /* A port that is bound but not listening refuses connections, and stays ours. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
  socklen_t len = sizeof addr;
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/x", (unsigned)ntohs(addr.sin_port));
  http_sink_config cfg = {.url = url,
                          .method = "POST",
                          .batch = 1,
                          .timeout = 2000,
                          .max_retries = 1,
                          .backoff = 1,
                          .max_backoff = 10};
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_IO);
  cr_assert(strstr(err.message, url), "%s", err.message);
  cr_assert(strstr(err.message, "2 attempts"), "%s", err.message);
  sl_http_sink.destroy(sink);
  close(fd);
}

/* ---- failures that are not retried ------------------------------------------------- */

Test(http_sink, client_error_fails_at_once_quoting_the_answer, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.status = 400, .body = "field \"x\" is missing\n"}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_IO);
  cr_assert_eq(http_receiver_count(rx), 1, "a 400 must not be retried");
  char expected[512];
  snprintf(expected, sizeof expected,
           "http sink: POST %s answered 400 Bad Request: field \"x\" is missing", url);
  cr_assert_str_eq(err.message, expected);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, quoted_answer_is_cut_at_200_bytes, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  char body[1001];
  memset(body, 'b', 1000);
  body[1000] = '\0';
  http_receiver_script(rx, (hr_reply){.status = 422, .body = body}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_IO);
  const char *quoted = strstr(err.message, ": b");
  cr_assert_not_null(quoted, "%s", err.message);
  cr_assert_eq(strlen(quoted + 2), 200, "%s", err.message);
  /* The connection is still usable after a large answer was read to its end. */
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_OK, "%s", err.message);
  cr_assert_eq(http_receiver_connections(rx), 1);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, a_failing_request_stops_the_batch, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.status = 200}, 1);
  http_receiver_script(rx, (hr_reply){.status = 404}, 1);
  http_sink_config cfg = config_for(rx, "/x");
  cfg.batch = 2;
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"a", "b", "c", "d", "e"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 5, &err), SL_IO);
  cr_assert(strstr(err.message, "answered 404 Not Found"), "%s", err.message);
  cr_assert_eq(http_receiver_count(rx), 2);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

Test(http_sink, url_password_is_not_shown, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_receiver_script(rx, (hr_reply){.status = 403}, 1);
  char with_password[256];
  snprintf(with_password, sizeof with_password, "http://robot:hunter2@127.0.0.1:%u/x",
           (unsigned)http_receiver_port(rx));
  http_sink_config cfg = {.url = with_password,
                          .method = "POST",
                          .batch = 1,
                          .timeout = 5000,
                          .max_retries = 0,
                          .backoff = 1,
                          .max_backoff = 10};
  void *sink = open_sink(&cfg);
  const char *payloads[] = {"x"};
  sl_error err = {{0}};
  cr_assert_eq(write_payloads(sink, payloads, 1, &err), SL_IO);
  cr_assert(strstr(err.message, "http://robot:***@127.0.0.1:"), "%s", err.message);
  cr_assert_null(strstr(err.message, "hunter2"), "%s", err.message);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

/* ---- stopping ---------------------------------------------------------------------- */

typedef struct writer {
  void *sink;
  sl_status status;
  sl_error err;
} writer;

static void *write_on_thread(void *arg) {
  writer *w = arg;
  const char *payloads[] = {"x"};
  w->status = write_payloads(w->sink, payloads, 1, &w->err);
  return NULL;
}

/* Starts an endless write, interrupts it once the first request arrived (through stop,
 * then destroy after the writer returned, the way the runtime shuts a sink down; or
 * through destroy alone, from another thread while the write runs), and checks that
 * the write returned SL_CLOSED promptly. */
static void check_interrupted(http_receiver *rx, http_sink_config *cfg, bool with_stop) {
  writer w = {.sink = open_sink(cfg), .status = SL_OK};
  pthread_t thread;
  cr_assert_eq(pthread_create(&thread, NULL, write_on_thread, &w), 0);
  cr_assert_geq(http_receiver_wait(rx, 1, 5000), 1);
  usleep(50 * 1000); /* let the writer settle into its delay or its request */
  uint64_t start = hr_now_ms();
  if (with_stop) {
    sl_http_sink.stop(w.sink);
    pthread_join(thread, NULL);
    sl_http_sink.destroy(w.sink);
  } else {
    sl_http_sink.destroy(w.sink);
    pthread_join(thread, NULL);
  }
  uint64_t took = hr_now_ms() - start;
  cr_assert_eq(w.status, SL_CLOSED, "%s: %s", sl_status_name(w.status), w.err.message);
  cr_assert_lt(took, 2500, "stopping took %llu ms", (unsigned long long)took);
}

static http_sink_config endless(http_receiver *rx, hr_reply reply) {
  http_receiver_set_default(rx, reply);
  http_sink_config cfg = config_for(rx, "/x");
  cfg.max_retries = -1;
  cfg.timeout = 60000;
  cfg.backoff = 60000;
  cfg.max_backoff = 60000;
  return cfg;
}

Test(http_sink, stop_interrupts_endless_retries, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = endless(rx, (hr_reply){.status = 503});
  check_interrupted(rx, &cfg, true);
  http_receiver_stop(rx);
}

Test(http_sink, stop_interrupts_a_request_in_flight, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = endless(rx, (hr_reply){.action = HR_HANG});
  check_interrupted(rx, &cfg, true);
  http_receiver_stop(rx);
}

Test(http_sink, destroy_interrupts_endless_retries, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = endless(rx, (hr_reply){.status = 503});
  check_interrupted(rx, &cfg, false);
  http_receiver_stop(rx);
}

Test(http_sink, destroy_interrupts_a_request_in_flight, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = endless(rx, (hr_reply){.action = HR_HANG});
  check_interrupted(rx, &cfg, false);
  http_receiver_stop(rx);
}

Test(http_sink, write_after_stop_fails_at_once, .timeout = 10) {
  http_receiver *rx = http_receiver_start();
  http_sink_config cfg = config_for(rx, "/x");
  void *sink = open_sink(&cfg);
  sl_http_sink.stop(sink);
  const char *payloads[] = {"x"};
  cr_assert_eq(write_payloads(sink, payloads, 1, NULL), SL_CLOSED);
  cr_assert_eq(http_receiver_count(rx), 0);
  sl_http_sink.destroy(sink);
  http_receiver_stop(rx);
}

/* ---- init errors ------------------------------------------------------------------- */

static void expect_init_error(const http_sink_config *cfg, const char *expected,
                              const char *absent) {
  void *sink = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_http_sink.init(&node, cfg, &sink, &err), SL_CONFIG, "expected an error about %s",
               expected);
  cr_assert_null(sink);
  cr_assert(strstr(err.message, expected), "'%s' does not mention '%s'", err.message, expected);
  if (absent) cr_assert_null(strstr(err.message, absent), "'%s' shows '%s'", err.message, absent);
}

Test(http_sink, init_errors) {
  http_sink_config good = {.url = "http://127.0.0.1:1/",
                           .method = "POST",
                           .batch = 1,
                           .timeout = 1000,
                           .max_retries = -1,
                           .backoff = 1,
                           .max_backoff = 10};
  http_sink_config cfg = good;
  cfg.url = "ftp://example.com/x";
  expect_init_error(&cfg, "url: must start with http:// or https://", NULL);
  cfg.url = "127.0.0.1:8080/x";
  expect_init_error(&cfg, "url: must start with http:// or https://", NULL);

  cfg = good;
  cfg.batch = 0;
  expect_init_error(&cfg, "batch: must be at least 1", NULL);

  cfg = good;
  cfg.max_retries = -2;
  expect_init_error(&cfg, "max_retries: must be -1", NULL);

  cfg = good;
  char *keys[] = {"Authorization"};
  char *values[] = {"Bearer s3cret\r\nX-Evil: 1"};
  cfg.headers = (sl_conf_map){.keys = keys, .values = values, .count = 1};
  expect_init_error(&cfg, "headers: the value of Authorization must not contain line breaks",
                    "s3cret");

  char *bad_keys[] = {"X Tenant"};
  char *bad_values[] = {"acme"};
  cfg.headers = (sl_conf_map){.keys = bad_keys, .values = bad_values, .count = 1};
  expect_init_error(&cfg, "\"X Tenant\" is not a valid header name", NULL);

  /* And the good one passes, with https too. */
  void *sink = open_sink(&good);
  sl_http_sink.destroy(sink);
  good.url = "HTTPS://example.com/";
  sink = open_sink(&good);
  sl_http_sink.destroy(sink);
}
