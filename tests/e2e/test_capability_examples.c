/*
 * The capability examples as a user runs them: each pipeline in examples/pipelines/ that
 * docs/capabilities/ walks through, run by the real `sluice` binary with the example
 * processors `make examples` built, checked against the output the pages promise.
 *
 *   kv-enrich     memory (seeded by the processor's `seed`), local (seeded in a first
 *                 run, read back in a second run without the seed), a real redis-server
 *                 (seeded by the test with SET through hiredis)
 *   counter       two workers incrementing one counter at the same time: the counts
 *                 are exactly 1..N, no gap and no repeat
 *   http-enrich   a real loopback server in the grant: one GET per event, bodies out; a
 *                 404 fails the event; the same pipeline with the server's host not
 *                 allowed: every event goes to `enrich.errors` with "denied", and the
 *                 server sees no request at all
 *   hello-log     greetings from wasi:config on stdout, wasi:logging lines on stderr,
 *                 debug lines only when the grant's level asks for them
 *
 * Run from the repository root (as `make test` does): the pipelines are read from
 * examples/pipelines/ and the modules from $SLUICE_EXAMPLES.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/e2e.h"
#include "../support/http_receiver.h"
#include "../support/servers.h"

static char *folder; /* this test's folder, removed by the fini */

static void make_folder(void) { folder = e2e_tmpdir(); }

static void remove_folder(void) {
  if (folder) e2e_rmdir(folder);
}

TestSuite(capability_examples, .init = make_folder, .fini = remove_folder, .timeout = 120);

/* --- helpers ---------------------------------------------------------------------- */

/* The absolute path of examples/pipelines/NAME (static buffer). */
static const char *example_pipeline(const char *name) {
  static char path[PATH_MAX];
  char relative[256];
  snprintf(relative, sizeof relative, "examples/pipelines/%s", name);
  cr_assert_not_null(realpath(relative, path), "%s: run the tests from the repository root",
                     relative);
  return path;
}

/* `sluice run PIPELINE` in the test folder with `input` on stdin. */
static e2e_result run_example(const char *pipeline, const char *input) {
  e2e_write(folder, "input.txt", "%s", input);
  return e2e_sluice(folder, "run '%s' <input.txt", example_pipeline(pipeline));
}

static void expect_success(const e2e_result *r) {
  cr_assert_eq(r->exit_code, 0, "exit %d\nstdout:\n%s\nstderr:\n%s", r->exit_code, r->out, r->err);
}

static int compare_lines(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `text`'s lines sorted, joined with newlines again (malloc'ed): the examples run on
 * several workers, which may reorder events. */
static char *sorted_lines(const char *text) {
  char *copy = strdup(text);
  size_t count = e2e_count_lines(copy) + 1, n = 0;
  char **lines = calloc(count, sizeof *lines);
  for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) lines[n++] = line;
  qsort(lines, n, sizeof *lines, compare_lines);
  char *joined = calloc(1, strlen(text) + 2);
  for (size_t i = 0; i < n; i++) {
    strcat(joined, lines[i]);
    strcat(joined, "\n");
  }
  free(lines);
  free(copy);
  return joined;
}

static void expect_lines(const e2e_result *r, const char *expected_sorted) {
  char *actual = sorted_lines(r->out);
  cr_expect_str_eq(actual, expected_sorted, "stdout, sorted:\n%s\nstderr:\n%s", actual, r->err);
  free(actual);
}

/* How many lines of `text` contain every one of the NULL-terminated `needles`. */
static size_t lines_with(const char *text, const char *const *needles) {
  size_t found = 0;
  const char *line = text;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char *copy = strndup(line, len);
    bool all = true;
    for (const char *const *needle = needles; *needle && all; needle++)
      all = strstr(copy, *needle) != NULL;
    found += all;
    free(copy);
    line += len + (end != NULL);
  }
  return found;
}

#define LINES_WITH(text, ...) lines_with((text), (const char *const[]){__VA_ARGS__, NULL})

/* --- kv-enrich ---------------------------------------------------------------------- */

Test(capability_examples, kv_enrich_memory_seeded_by_the_processor) {
  e2e_result r = run_example("kv-enrich-memory.yaml", "ann\nbob\nzoe\n");
  expect_success(&r);
  expect_lines(&r, "enriched=false zoe\n"
                   "enriched=true user.name=Ann Lee ann\n"
                   "enriched=true user.name=Bob Stone bob\n");
  e2e_result_free(&r);
}

/* The local bucket lives under $SLUICE_HOME/state/PIPELINE/, so the first run's seed is
 * what the second run, which stores nothing, finds. */
Test(capability_examples, kv_enrich_local_persists_across_runs) {
  const char *home = getenv("SLUICE_HOME");
  cr_assert_not_null(home, "SLUICE_HOME is not set: run the tests with `make test`");
  char command[PATH_MAX + 64];
  snprintf(command, sizeof command, "rm -rf '%s/state/kv-enrich-local'", home);
  cr_assert_eq(system(command), 0);

  setenv("SEED", "ann=Ann Lee", 1);
  e2e_result first = run_example("kv-enrich-local.yaml", "ann\nzoe\n");
  expect_success(&first);
  expect_lines(&first, "enriched=false zoe\n"
                       "enriched=true user.name=Ann Lee ann\n");
  e2e_result_free(&first);

  unsetenv("SEED");
  e2e_result second = run_example("kv-enrich-local.yaml", "zoe\nann\nbob\n");
  expect_success(&second);
  expect_lines(&second, "enriched=false bob\n"
                        "enriched=false zoe\n"
                        "enriched=true user.name=Ann Lee ann\n");
  e2e_result_free(&second);
}

Test(capability_examples, kv_enrich_redis_seeded_with_set) {
  sl_test_server redis;
  cr_assert(sl_test_server_start(&redis, SL_TEST_REDIS), "redis-server did not start");
  redisContext *client = redisConnect("127.0.0.1", redis.port);
  cr_assert(client && !client->err, "hiredis: %s", client ? client->errstr : "no memory");
  /* The pipeline's bucket has prefix `user:`; a key without it must stay invisible. */
  const char *const sets[][2] = {
      {"user:ann", "Ann Lee"}, {"user:bob", "Bob Stone"}, {"zoe", "not a user key"}};
  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
    redisReply *reply = redisCommand(client, "SET %s %s", sets[i][0], sets[i][1]);
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS, "SET %s failed", sets[i][0]);
    freeReplyObject(reply);
  }
  redisFree(client);

  char port[16];
  snprintf(port, sizeof port, "%d", redis.port);
  setenv("REDIS_PORT", port, 1);
  e2e_result r = run_example("kv-enrich-redis.yaml", "ann\nzoe\nbob\n");
  sl_test_server_stop(&redis);
  expect_success(&r);
  expect_lines(&r, "enriched=false zoe\n"
                   "enriched=true user.name=Ann Lee ann\n"
                   "enriched=true user.name=Bob Stone bob\n");
  e2e_result_free(&r);
}

/* --- counter ------------------------------------------------------------------------ */

/* Two sources, on the two workers, each count `apple` 50000 times into one bucket. */
enum { COUNTER_TOTAL = 100000 };

Test(capability_examples, counter_is_exact_on_two_workers) {
  e2e_result r = run_example("counter.yaml", "");
  expect_success(&r);
  cr_assert_eq(e2e_count_lines(r.out), COUNTER_TOTAL, "stderr:\n%s", r.err);

  /* Each increment returned a different number. A get-then-set counter fails here: run
   * by hand in place of counter.wasm, it repeated 5000 to 32000 numbers in each of 20
   * runs (2 cores), so the two workers do overlap. */
  static unsigned char seen[COUNTER_TOTAL + 1];
  memset(seen, 0, sizeof seen);
  for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
    int count = 0;
    cr_assert_eq(sscanf(line, "apple %d", &count), 1, "bad line '%s'", line);
    cr_assert(count >= 1 && count <= COUNTER_TOTAL, "count out of range in '%s'", line);
    cr_assert_eq(seen[count], 0, "'%s' twice", line);
    seen[count] = 1;
  }
  /* TOTAL distinct lines, all in 1..TOTAL: every count from 1 to TOTAL came out once, so
   * the final count is TOTAL. */
  e2e_result_free(&r);
}

/* --- http-enrich -------------------------------------------------------------------- */

static http_receiver *start_receiver(hr_reply reply) {
  http_receiver *rx = http_receiver_start();
  http_receiver_set_default(rx, reply);
  char port[16];
  snprintf(port, sizeof port, "%u", http_receiver_port(rx));
  setenv("HTTP_PORT", port, 1);
  return rx;
}

/* True when the receiver got a GET for `path`. */
static bool received_get(http_receiver *rx, const char *path) {
  for (size_t i = 0; i < http_receiver_count(rx); i++) {
    const hr_request *req = http_receiver_request(rx, i);
    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, path) == 0) return true;
  }
  return false;
}

Test(capability_examples, http_enrich_gets_from_an_allowed_server) {
  http_receiver *rx = start_receiver((hr_reply){.status = 200, .body = "{\"name\":\"Ann Lee\"}"});
  e2e_result r = run_example("http-enrich.yaml", "ann\nbob smith\n");
  expect_success(&r);
  expect_lines(&r, "http.status=200 {\"name\":\"Ann Lee\"}\n"
                   "http.status=200 {\"name\":\"Ann Lee\"}\n");
  cr_expect_eq(http_receiver_count(rx), 2);
  cr_expect(received_get(rx, "/users/ann"));
  cr_expect(received_get(rx, "/users/bob%20smith"), "the payload is one percent-encoded segment");
  e2e_result_free(&r);
  http_receiver_stop(rx);
}

Test(capability_examples, http_enrich_fails_the_event_on_404) {
  http_receiver *rx = start_receiver((hr_reply){.status = 404, .body = "no such user"});
  e2e_result r = run_example("http-enrich.yaml", "ghost\n");
  expect_success(&r);
  cr_expect_str_eq(r.out, "", "a 404 is not an enrichment");
  cr_expect_eq(LINES_WITH(r.err, "[failures]", "ghost", "status 404"), 1, "stderr:\n%s", r.err);
  cr_expect_eq(http_receiver_count(rx), 1);
  e2e_result_free(&r);
  http_receiver_stop(rx);
}

/* The grant names another port of the same host: the policy refuses before connecting. */
Test(capability_examples, http_enrich_denied_when_the_host_is_not_allowed) {
  http_receiver *rx = start_receiver((hr_reply){.status = 200, .body = "should not be fetched"});
  setenv("ALLOWED_HOST", "127.0.0.1:9", 1);
  e2e_result r = run_example("http-enrich.yaml", "ann\nbob\n");
  expect_success(&r);
  cr_expect_str_eq(r.out, "", "no event may pass");
  cr_expect_eq(LINES_WITH(r.err, "[failures]", "ann", "denied"), 1, "stderr:\n%s", r.err);
  cr_expect_eq(LINES_WITH(r.err, "[failures]", "bob", "denied"), 1, "stderr:\n%s", r.err);
  cr_expect_eq(http_receiver_count(rx), 0, "the server saw a request");
  cr_expect_eq(http_receiver_connections(rx), 0, "the server saw a connection");
  e2e_result_free(&r);
  http_receiver_stop(rx);
}

/* --- hello-log ---------------------------------------------------------------------- */

Test(capability_examples, hello_log_greets_and_logs_at_info) {
  e2e_result r = run_example("hello-log.yaml", "ann\nbob\n");
  expect_success(&r);
  expect_lines(&r, "hi, ann\nhi, bob\n");
  cr_expect_geq(LINES_WITH(r.err, "[greet]", "info: hello-log: greeting with \"hi\""), 1,
                "stderr:\n%s", r.err);
  cr_expect_eq(LINES_WITH(r.err, "[greet]", "info: hello-log: greeted ann"), 1, "stderr:\n%s",
               r.err);
  cr_expect_eq(LINES_WITH(r.err, "[greet]", "info: hello-log: greeted bob"), 1, "stderr:\n%s",
               r.err);
  cr_expect_eq(LINES_WITH(r.err, "payload of"), 0, "a debug line at level info:\n%s", r.err);
  e2e_result_free(&r);
}

Test(capability_examples, hello_log_debug_lines_follow_the_grants_level) {
  setenv("LOG_LEVEL", "debug", 1);
  e2e_result r = run_example("hello-log.yaml", "ann\n");
  expect_success(&r);
  expect_lines(&r, "hi, ann\n");
  cr_expect_eq(LINES_WITH(r.err, "[greet]", "debug: hello-log: payload of 3 bytes"), 1,
               "stderr:\n%s", r.err);
  e2e_result_free(&r);
}
