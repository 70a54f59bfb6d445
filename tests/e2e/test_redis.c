/*
 * The `redis` source and sink as a user runs them: `sluice run PIPELINE.yaml` against a
 * real redis-server (tests/support/servers.h) that this test starts, feeds and inspects
 * with hiredis.
 *
 *   sinks          xadd (templated key, metadata as fields, MAXLEN ~), publish, lpush
 *   source         a stream through passthrough to a file, XACKed after delivery; a sink
 *                  refusing (WRONGTYPE) leaves the entries pending, and they are
 *                  delivered once it accepts; a restarted consumer reads its own pending
 *                  entries first, another claims a gone consumer's idle ones; AUTH as an
 *                  ACL user with the password from a secret
 *   faults         redis-server killed and restarted mid-stream: both ends reconnect; a
 *                  peer answering junk is logged and retried, nothing acknowledged; bad
 *                  settings refused with a message naming the setting
 *   reliability    the host killed with SIGKILL holding entries it read and had not
 *                  delivered (its output server paused), then restarted: no number is
 *                  missing (duplicates are allowed and reported)
 *
 * Each test has its own server, folder and pipeline name.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/e2e.h"
#include "../support/fixture.h"
#include "../support/seqcheck.h"
#include "../support/servers.h"

static sl_test_server server;
static char folder[64];
static char pipeline_path[128];
static pid_t child = -1;     /* a running `sluice run`, killed by the fini */
static redisContext *client; /* the test's own connection */
/* The kill -9 test writes to a second server and pauses it. */
static sl_test_server sink_server;
static redisContext *sink_client;
static bool sink_paused;
static char *log_copy; /* freed by the fini, so a failed assertion leaks nothing */

static void stop_junk_server(void);

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void setup(void) {
  snprintf(folder, sizeof folder, "/tmp/sluice-e2e-redis-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  snprintf(pipeline_path, sizeof pipeline_path, "%s/p.yaml", folder);
  cr_assert(sl_test_server_start(&server, SL_TEST_REDIS), "redis-server did not start");
}

static void teardown(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
  }
  if (client) redisFree(client);
  client = NULL;
  if (sink_client) redisFree(sink_client);
  sink_client = NULL;
  if (sink_paused) kill(sink_server.pid, SIGCONT);
  sink_paused = false;
  if (sink_server.pid) sl_test_server_stop(&sink_server);
  sl_test_server_stop(&server);
  nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  stop_junk_server();
  free(log_copy);
  log_copy = NULL;
  unsetenv("REDIS_TEST_PASSWORD");
}

TestSuite(redis, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the test's Redis client ------------------------------------------------------ */

/* (Re)connects the test's client, authenticating as `user`/`password` when given. */
static void connect_client(const char *user, const char *password) {
  if (client) redisFree(client);
  client = redisConnectWithTimeout("127.0.0.1", server.port, (struct timeval){5, 0});
  cr_assert(client && !client->err, "cannot connect to %s: %s", server.url,
            client ? client->errstr : "out of memory");
  redisSetTimeout(client, (struct timeval){10, 0});
  if (password) {
    redisReply *reply = user ? redisCommand(client, "AUTH %s %s", user, password)
                             : redisCommand(client, "AUTH %s", password);
    cr_assert(reply && reply->type != REDIS_REPLY_ERROR, "AUTH failed");
    freeReplyObject(reply);
  }
}

/* Runs one command; fails the test on an error reply. The caller frees the reply. */
static redisReply *command(const char *fmt, ...) {
  if (!client) connect_client(NULL, NULL);
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = redisvCommand(client, fmt, ap);
  va_end(ap);
  cr_assert_not_null(reply, "%s: %s", fmt, client->errstr);
  cr_assert_neq(reply->type, REDIS_REPLY_ERROR, "%s: %s", fmt, reply->str);
  return reply;
}

/* A command whose reply is an integer. */
static long long command_int(const char *fmt, ...) {
  if (!client) connect_client(NULL, NULL);
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = redisvCommand(client, fmt, ap);
  va_end(ap);
  cr_assert_not_null(reply, "%s: %s", fmt, client->errstr);
  cr_assert_eq(reply->type, REDIS_REPLY_INTEGER, "%s: %s", fmt,
               reply->type == REDIS_REPLY_ERROR ? reply->str : "not an integer");
  long long value = reply->integer;
  freeReplyObject(reply);
  return value;
}

/* XADDs payloads "from".."to" (field `payload`) to `stream`, pipelined. */
static void xadd_numbers(const char *stream, int from, int to) {
  if (!client) connect_client(NULL, NULL);
  for (int n = from; n <= to; n++) redisAppendCommand(client, "XADD %s * payload %d", stream, n);
  for (int n = from; n <= to; n++) {
    redisReply *reply = NULL;
    cr_assert_eq(redisGetReply(client, (void **)&reply), REDIS_OK, "XADD: %s", client->errstr);
    cr_assert_neq(reply->type, REDIS_REPLY_ERROR, "XADD: %s", reply->str);
    freeReplyObject(reply);
  }
}

/* The value of `field` in an entry's field list; NULL when absent. */
static const redisReply *field_of(const redisReply *fields, const char *field) {
  for (size_t f = 0; f + 1 < fields->elements; f += 2)
    if (strcmp(fields->element[f]->str, field) == 0) return fields->element[f + 1];
  return NULL;
}

/* Feeds the `payload` field of every entry of `stream` on `ctx` to `check`; returns the
 * count. */
static size_t check_stream_on(redisContext *ctx, const char *stream, sl_seqcheck *check) {
  size_t total = 0;
  char start[64] = "-";
  for (;;) {
    redisReply *reply = redisCommand(ctx, "XRANGE %s %s + COUNT 1000", stream, start);
    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY, "XRANGE %s failed", stream);
    for (size_t i = 0; i < reply->elements; i++) {
      const redisReply *payload = field_of(reply->element[i]->element[1], "payload");
      if (payload)
        sl_seqcheck_add(check, payload->str, payload->len);
      else
        sl_seqcheck_add(check, "", 0);
    }
    total += reply->elements;
    size_t n = reply->elements;
    if (n) snprintf(start, sizeof start, "(%s", reply->element[n - 1]->element[0]->str);
    freeReplyObject(reply);
    if (n < 1000) return total;
  }
}

static size_t check_stream(const char *stream, sl_seqcheck *check) {
  if (!client) connect_client(NULL, NULL);
  return check_stream_on(client, stream, check);
}

static long long xlen_on(redisContext *ctx, const char *stream) {
  redisReply *reply = redisCommand(ctx, "XLEN %s", stream);
  cr_assert(reply && reply->type == REDIS_REPLY_INTEGER, "XLEN %s failed", stream);
  long long len = reply->integer;
  freeReplyObject(reply);
  return len;
}

/* Entries of `group` on `stream` read but not acknowledged; -1 while there is no group. */
static long long pending_count(const char *stream, const char *group) {
  if (!client) connect_client(NULL, NULL);
  redisReply *reply = redisCommand(client, "XPENDING %s %s", stream, group);
  cr_assert_not_null(reply, "XPENDING: %s", client->errstr);
  long long count = -1;
  if (reply->type == REDIS_REPLY_ARRAY) count = reply->element[0]->integer;
  freeReplyObject(reply);
  return count;
}

/* The value of `field` in the last entry of `stream`; "" when there is none. */
static const char *last_field(const char *stream, const char *field) {
  static char value[128];
  value[0] = '\0';
  redisReply *reply = command("XREVRANGE %s + - COUNT 1", stream);
  if (reply->elements == 1) {
    const redisReply *found = field_of(reply->element[0]->element[1], field);
    if (found) snprintf(value, sizeof value, "%s", found->str);
  }
  freeReplyObject(reply);
  return value;
}

/* ---- running sluice ------------------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Polls `condition` every 10 ms for up to `ms`; its last value. */
#define WAIT_FOR(condition, ms)                                                                    \
  ({                                                                                               \
    uint64_t deadline_ = now_ms() + (ms);                                                          \
    bool met_ = (condition);                                                                       \
    while (!met_ && now_ms() < deadline_) {                                                        \
      sleep_ms(10);                                                                                \
      met_ = (condition);                                                                          \
    }                                                                                              \
    met_;                                                                                          \
  })

/* Writes FOLDER/p.yaml: "name: NAME-PID" then the printf-formatted nodes. */
__attribute__((format(printf, 2, 3))) static const char *write_pipeline(const char *name,
                                                                        const char *fmt, ...) {
  FILE *f = fopen(pipeline_path, "w");
  cr_assert_not_null(f);
  fprintf(f, "name: %s-%d\n", name, (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
  return pipeline_path;
}

/* Starts `sluice run PIPELINE` in the folder; stdout and stderr go to FOLDER/log_name. */
static pid_t start_sluice(const char *pipeline, const char *log_name) {
  child = e2e_run_child(folder, pipeline, NULL, log_name);
  return child;
}

/* Waits for the child; its exit status, or -1 when a signal killed it. */
static int wait_sluice(void) {
  int code = e2e_wait(child, NULL);
  child = -1;
  return code;
}

/* SIGTERM: the pipeline drains, XACKs and exits. */
static int stop_sluice(void) {
  kill(child, SIGTERM);
  return wait_sluice();
}

static void kill_sluice(void) {
  kill(child, SIGKILL);
  cr_assert_eq(wait_sluice(), -1);
}

/* The whole of FOLDER/name ("" when missing), valid until the next call. */
static const char *folder_file(const char *name) {
  char path[160];
  snprintf(path, sizeof path, "%s/%s", folder, name);
  free(log_copy);
  FILE *f = fopen(path, "r");
  if (!f) return log_copy = strdup("");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  log_copy = malloc((size_t)size + 1);
  size_t n = fread(log_copy, 1, (size_t)size, f);
  log_copy[n] = '\0';
  fclose(f);
  return log_copy;
}

static bool log_has(const char *log_name, const char *text) {
  return strstr(folder_file(log_name), text) != NULL;
}

static size_t lines_in(const char *name) {
  size_t lines = 0;
  for (const char *p = folder_file(name); *p; p++) lines += *p == '\n';
  return lines;
}

/* The source node every pipeline here starts with, reading `in` as group g. */
static const char *source_node(const char *extra) {
  static char text[1024];
  snprintf(text, sizeof text,
           "nodes:\n"
           "  - id: in\n"
           "    type: redis\n"
           "    url: %s\n"
           "    stream: in\n"
           "    group: g\n"
           "    start_id: \"0\"\n"
           "    backoff: 50ms\n"
           "    max_backoff: 400ms\n"
           "%s",
           server.url, extra);
  return text;
}

/* Three entries with a `region` field (eu, us, eu); the last has two more fields, one of
 * them not UTF-8. */
static void seed_regions(void) {
  freeReplyObject(command("XADD in * payload p1 region eu"));
  freeReplyObject(command("XADD in * payload p2 region us"));
  freeReplyObject(command("XADD in * payload p3 region eu colour red raw %b", "\xffok", (size_t)3));
}

/* ---- sinks -------------------------------------------------------------------------- */

Test(redis, sink_xadd_templated_key_metadata_and_maxlen) {
  seed_regions();
  xadd_numbers("numbers", 1, 1000);
  const char *pipeline = write_pipeline("xadd",
                                        "%s"
                                        "  - id: numbers\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    stream: numbers\n"
                                        "    group: g\n"
                                        "    start_id: \"0\"\n"
                                        "  - id: out\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    command: xadd\n"
                                        "    key: \"out:{{meta.region}}\"\n"
                                        "    inputs: [in]\n"
                                        "  - id: trimmed\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    key: trimmed\n"
                                        "    payload_field: body\n"
                                        "    metadata: false\n"
                                        "    maxlen: 100\n"
                                        "    inputs: [numbers]\n",
                                        source_node(""), server.url, server.url, server.url);
  start_sluice(pipeline, "run.log");
  cr_assert(WAIT_FOR(command_int("XLEN out:eu") == 2 && command_int("XLEN out:us") == 1 &&
                         strcmp(last_field("trimmed", "body"), "1000") == 0,
                     20000),
            "outputs incomplete: %s", folder_file("run.log"));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run.log"));

  /* out:eu holds p1 then p3, each with its metadata as fields. */
  redisReply *eu = command("XRANGE out:eu - +");
  cr_assert_eq(eu->elements, 2);
  const char *expected[] = {"p1", "p3"};
  for (size_t i = 0; i < 2; i++) {
    const redisReply *fields = eu->element[i]->element[1];
    cr_assert_str_eq(field_of(fields, "payload")->str, expected[i]);
    cr_assert_str_eq(field_of(fields, "region")->str, "eu");
    cr_assert_str_eq(field_of(fields, "stream")->str, "in");
    cr_assert_not_null(field_of(fields, "id"), "the source's entry id travels as metadata");
  }
  cr_assert_str_eq(field_of(eu->element[1]->element[1], "colour")->str, "red");
  /* Metadata is UTF-8: the stray byte became U+FFFD. */
  cr_assert_str_eq(field_of(eu->element[1]->element[1], "raw")->str, "\xef\xbf\xbdok");
  cr_assert_null(field_of(eu->element[0]->element[1], "colour"));
  freeReplyObject(eu);
  redisReply *us = command("XRANGE out:us - +");
  cr_assert_str_eq(field_of(us->element[0]->element[1], "payload")->str, "p2");
  freeReplyObject(us);

  /* 1000 entries through MAXLEN ~ 100: trimmed to about 100 (whole nodes of 100). */
  long long kept = command_int("XLEN trimmed");
  cr_assert(kept >= 100 && kept < 1000, "MAXLEN ~ 100 kept %lld entries", kept);
  redisReply *last = command("XREVRANGE trimmed + - COUNT 1");
  const redisReply *fields = last->element[0]->element[1];
  cr_assert_eq(fields->elements, 2, "metadata: false writes the payload field alone");
  cr_assert_str_eq(field_of(fields, "body")->str, "1000");
  freeReplyObject(last);
}

Test(redis, sink_publish_to_a_templated_channel) {
  seed_regions();
  /* A subscriber of its own: Pub/Sub keeps nothing for late subscribers. */
  redisContext *sub = redisConnectWithTimeout("127.0.0.1", server.port, (struct timeval){5, 0});
  cr_assert(sub && !sub->err);
  redisSetTimeout(sub, (struct timeval){20, 0});
  redisReply *reply = redisCommand(sub, "SUBSCRIBE chan:eu");
  cr_assert(reply && reply->type == REDIS_REPLY_ARRAY);
  freeReplyObject(reply);

  const char *pipeline = write_pipeline("publish",
                                        "%s"
                                        "  - id: out\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    command: publish\n"
                                        "    key: \"chan:{{meta.region}}\"\n"
                                        "    inputs: [in]\n",
                                        source_node(""), server.url);
  start_sluice(pipeline, "run.log");
  const char *expected[] = {"p1", "p3"};
  for (size_t i = 0; i < 2; i++) {
    reply = NULL;
    int rc = redisGetReply(sub, (void **)&reply);
    cr_assert_eq(rc, REDIS_OK, "no message on chan:eu: %s; log: %s", sub->errstr,
                 folder_file("run.log"));
    cr_assert_eq(reply->elements, 3);
    cr_assert_str_eq(reply->element[0]->str, "message");
    cr_assert_str_eq(reply->element[1]->str, "chan:eu");
    cr_assert_str_eq(reply->element[2]->str, expected[i]);
    freeReplyObject(reply);
  }
  redisFree(sub);
  cr_assert(WAIT_FOR(pending_count("in", "g") == 0, 10000));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run.log"));
}

Test(redis, sink_lpush_groups_a_key_per_command) {
  seed_regions();
  xadd_numbers("numbers", 1, 500);
  const char *pipeline = write_pipeline("lpush",
                                        "%s"
                                        "  - id: numbers\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    stream: numbers\n"
                                        "    group: g\n"
                                        "    start_id: \"0\"\n"
                                        "  - id: lists\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    command: lpush\n"
                                        "    key: \"list:{{meta.region}}\"\n"
                                        "    inputs: [in]\n"
                                        "  - id: queue\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    command: lpush\n"
                                        "    key: queue\n"
                                        "    inputs: [numbers]\n",
                                        source_node(""), server.url, server.url, server.url);
  start_sluice(pipeline, "run.log");
  cr_assert(WAIT_FOR(command_int("LLEN list:eu") == 2 && command_int("LLEN queue") == 500, 20000),
            "lists incomplete: %s", folder_file("run.log"));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run.log"));
  redisReply *eu = command("LRANGE list:eu 0 -1");
  cr_assert_eq(eu->elements, 2);
  cr_assert_str_eq(eu->element[0]->str, "p3"); /* LPUSH: the newest at the head */
  cr_assert_str_eq(eu->element[1]->str, "p1");
  freeReplyObject(eu);
  /* RPOP order is arrival order: 1..500, each once. */
  sl_seqcheck check;
  sl_seqcheck_init(&check, 500);
  redisReply *queue = command("LRANGE queue 0 -1");
  for (size_t i = queue->elements; i-- > 0;)
    sl_seqcheck_add(&check, queue->element[i]->str, queue->element[i]->len);
  freeReplyObject(queue);
  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  cr_assert(sl_seqcheck_missing(&check) == 0 && check.duplicates == 0 && check.reordered == 0, "%s",
            report);
  sl_seqcheck_destroy(&check);
}

/* ---- the source --------------------------------------------------------------------- */

Test(redis, source_through_passthrough_to_a_file_then_xacked) {
  xadd_numbers("in", 1, 2000);
  const char *pipeline =
      write_pipeline("source",
                     "%s"
                     "  - id: pass\n"
                     "    type: wasm\n"
                     "    module: %s\n"
                     "    inputs: [in]\n"
                     "  - id: out\n"
                     "    type: file\n"
                     "    path: out.txt\n"
                     "    inputs: [pass]\n",
                     source_node("    batch_size: 100\n"), example_path("passthrough"));
  start_sluice(pipeline, "run.log");
  cr_assert(WAIT_FOR(lines_in("out.txt") >= 2000, 20000), "only %zu lines: %s", lines_in("out.txt"),
            folder_file("run.log"));
  cr_assert(WAIT_FOR(pending_count("in", "g") == 0, 5000), "entries left pending after delivery");
  /* More while it runs: read as they come. */
  xadd_numbers("in", 2001, 2500);
  cr_assert(WAIT_FOR(lines_in("out.txt") >= 2500, 20000), "%s", folder_file("run.log"));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run.log"));
  cr_assert_eq(pending_count("in", "g"), 0);

  sl_seqcheck check;
  sl_seqcheck_init(&check, 2500);
  sl_seqcheck_add_lines(&check, folder_file("out.txt"));
  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  cr_assert(sl_seqcheck_missing(&check) == 0 && check.duplicates == 0 && check.reordered == 0 &&
                check.received == 2500,
            "%s", report);
  sl_seqcheck_destroy(&check);

  /* The group's consumer is PIPELINE:NODE@HOSTNAME. */
  char host[256];
  cr_assert_eq(gethostname(host, sizeof host), 0);
  char consumer[400];
  snprintf(consumer, sizeof consumer, "source-%d:in@%s", (int)getpid(), host);
  redisReply *consumers = command("XINFO CONSUMERS in g");
  cr_assert_eq(consumers->elements, 1);
  cr_assert_str_eq(field_of(consumers->element[0], "name")->str, consumer);
  freeReplyObject(consumers);
}

Test(redis, xack_only_after_delivery_a_refusing_sink_leaves_entries_pending) {
  xadd_numbers("in", 1, 20);
  /* A string where the sink XADDs: Redis answers WRONGTYPE, the sink fails every batch. */
  freeReplyObject(command("SET blocked not-a-stream"));
  const char *pipeline = write_pipeline("refused",
                                        "%s"
                                        "  - id: out\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    key: blocked\n"
                                        "    inputs: [in]\n",
                                        source_node(""), server.url);
  start_sluice(pipeline, "run.log");
  cr_assert(WAIT_FOR(log_has("run.log", "were not delivered"), 10000), "%s",
            folder_file("run.log"));
  cr_assert(log_has("run.log", "WRONGTYPE"), "%s", folder_file("run.log"));
  /* Every entry was read, none acknowledged. */
  cr_assert_eq(pending_count("in", "g"), 20);
  redisReply *groups = command("XINFO GROUPS in");
  cr_assert_eq(field_of(groups->element[0], "pending")->integer, 20);
  freeReplyObject(groups);

  /* Once the key can take XADD, the pending entries are read again and delivered. */
  freeReplyObject(command("DEL blocked"));
  cr_assert(WAIT_FOR(pending_count("in", "g") == 0, 15000), "still pending: %lld; %s",
            pending_count("in", "g"), folder_file("run.log"));
  /* The refusals were real failures: `sluice run` counts them in its exit status. */
  cr_assert_eq(stop_sluice(), 1, "%s", folder_file("run.log"));
  cr_assert(log_has("run.log", "could not be delivered"), "%s", folder_file("run.log"));
  sl_seqcheck check;
  sl_seqcheck_init(&check, 20);
  check_stream("blocked", &check);
  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  cr_assert(sl_seqcheck_missing(&check) == 0, "%s", report);
  sl_seqcheck_destroy(&check);
}

Test(redis, own_pending_entries_first_then_claimed_from_idle_consumers) {
  /* As crashed runs leave things: 1..10 read by consumer c1, 11..20 by a consumer that is
   * gone, 21..30 never read; none acknowledged. */
  freeReplyObject(command("XGROUP CREATE in g 0 MKSTREAM"));
  xadd_numbers("in", 1, 30);
  freeReplyObject(command("XREADGROUP GROUP g c1 COUNT 10 STREAMS in >"));
  freeReplyObject(command("XREADGROUP GROUP g gone COUNT 10 STREAMS in >"));
  cr_assert_eq(pending_count("in", "g"), 20);

  /* c1 restarts without claiming: its own pending entries first, then the new ones; the
   * gone consumer's stay pending. */
  const char *pipeline = write_pipeline("claim",
                                        "%s"
                                        "  - id: out\n"
                                        "    type: file\n"
                                        "    path: out.txt\n"
                                        "    inputs: [in]\n",
                                        source_node("    consumer: c1\n"
                                                    "    claim_idle: 0\n"));
  start_sluice(pipeline, "run1.log");
  cr_assert(WAIT_FOR(lines_in("out.txt") >= 20, 20000), "only %zu lines: %s", lines_in("out.txt"),
            folder_file("run1.log"));
  cr_assert(WAIT_FOR(pending_count("in", "g") == 10, 5000), "%s", folder_file("run1.log"));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run1.log"));
  const char *out = folder_file("out.txt");
  char expected[128] = "";
  for (int n = 1; n <= 10; n++) snprintf(expected + strlen(expected), 8, "%d\n", n);
  for (int n = 21; n <= 30; n++) snprintf(expected + strlen(expected), 8, "%d\n", n);
  cr_assert_str_eq(out, expected);

  /* Another consumer with claim_idle: it claims the gone consumer's entries. */
  pipeline = write_pipeline("claim",
                            "%s"
                            "  - id: out\n"
                            "    type: file\n"
                            "    path: out.txt\n"
                            "    inputs: [in]\n",
                            source_node("    consumer: c2\n"
                                        "    claim_idle: 100ms\n"));
  start_sluice(pipeline, "run2.log");
  cr_assert(WAIT_FOR(lines_in("out.txt") >= 30, 20000), "only %zu lines: %s", lines_in("out.txt"),
            folder_file("run2.log"));
  cr_assert(WAIT_FOR(pending_count("in", "g") == 0, 5000), "%s", folder_file("run2.log"));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run2.log"));
  sl_seqcheck check;
  sl_seqcheck_init(&check, 30);
  sl_seqcheck_add_lines(&check, folder_file("out.txt"));
  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  cr_assert(sl_seqcheck_missing(&check) == 0 && check.duplicates == 0 && check.received == 30, "%s",
            report);
  sl_seqcheck_destroy(&check);
  redisReply *consumers = command("XINFO CONSUMERS in g");
  for (size_t i = 0; i < consumers->elements; i++)
    cr_assert_eq(field_of(consumers->element[i], "pending")->integer, 0);
  freeReplyObject(consumers);
}

Test(redis, auth_as_an_acl_user_with_a_password_from_a_secret) {
  freeReplyObject(command("ACL SETUSER app on >s3cret-pw ~* &* +@all"));
  freeReplyObject(command("ACL SETUSER default off"));
  connect_client("app", "s3cret-pw");
  xadd_numbers("in", 1, 5);
  setenv("REDIS_TEST_PASSWORD", "s3cret-pw", 1);
  const char *nodes = "nodes:\n"
                      "  - id: in\n"
                      "    type: redis\n"
                      "    url: %s\n"
                      "    username: app\n"
                      "    password: ${secret:redis}\n"
                      "    stream: in\n"
                      "    group: g\n"
                      "    start_id: \"0\"\n"
                      "  - id: out\n"
                      "    type: redis\n"
                      "    url: redis://app:${secret:redis}@127.0.0.1:%d/0\n"
                      "    key: copy\n"
                      "    inputs: [in]\n";
  char text[2048];
  snprintf(text, sizeof text, nodes, server.url, server.port);
  const char *pipeline =
      write_pipeline("auth", "secrets:\n  redis: {env: REDIS_TEST_PASSWORD}\n%s", text);
  start_sluice(pipeline, "run.log");
  cr_assert(WAIT_FOR(command_int("XLEN copy") == 5, 20000), "%s", folder_file("run.log"));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run.log"));

  /* A wrong password: a clear, retried error that does not show the secret. */
  setenv("REDIS_TEST_PASSWORD", "wrong-pw-value", 1);
  start_sluice(pipeline, "wrong.log");
  cr_assert(WAIT_FOR(log_has("wrong.log", "AUTH failed"), 10000), "%s", folder_file("wrong.log"));
  cr_assert(!log_has("wrong.log", "wrong-pw-value"), "the secret leaked: %s",
            folder_file("wrong.log"));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("wrong.log"));
}

/* ---- faults ----------------------------------------------------------------------------- */

Test(redis, redis_restart_mid_stream_both_ends_reconnect) {
  xadd_numbers("in", 1, 300);
  const char *pipeline = write_pipeline("restart",
                                        "%s"
                                        "  - id: pass\n"
                                        "    type: wasm\n"
                                        "    module: %s\n"
                                        "    inputs: [in]\n"
                                        "  - id: out\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    key: out\n"
                                        "    backoff: 50ms\n"
                                        "    max_backoff: 400ms\n"
                                        "    inputs: [pass]\n",
                                        source_node(""), example_path("passthrough"), server.url);
  start_sluice(pipeline, "run.log");
  cr_assert(WAIT_FOR(command_int("XLEN out") >= 300, 20000), "%s", folder_file("run.log"));

  sl_test_server_kill(&server);
  redisFree(client);
  client = NULL;
  cr_assert(WAIT_FOR(log_has("run.log", "reconnecting in"), 10000), "%s", folder_file("run.log"));
  cr_assert(sl_test_server_restart(&server), "redis-server did not restart");
  xadd_numbers("in", 301, 600);
  cr_assert(WAIT_FOR(command_int("XLEN out") >= 600, 20000), "%s", folder_file("run.log"));
  cr_assert(WAIT_FOR(log_has("run.log", "again after"), 5000), "%s", folder_file("run.log"));
  cr_assert(WAIT_FOR(pending_count("in", "g") == 0, 5000));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run.log"));

  sl_seqcheck check;
  sl_seqcheck_init(&check, 600);
  check_stream("out", &check);
  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  cr_log_info("redis restart: %s", report);
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s", report);
  sl_seqcheck_destroy(&check);
}

/* A TCP server on loopback that answers every connection with junk, then hangs up. */
typedef struct junk_server {
  int fd;
  int port;
  atomic_bool stop;
  atomic_int connections;
  pthread_t thread;
} junk_server;

static junk_server junk = {.fd = -1};

static void *serve_junk(void *arg) {
  junk_server *server_state = arg;
  while (!atomic_load(&server_state->stop)) {
    struct pollfd pfd = {.fd = server_state->fd, .events = POLLIN};
    if (poll(&pfd, 1, 50) <= 0) continue;
    int conn = accept(server_state->fd, NULL, NULL);
    if (conn < 0) continue;
    atomic_fetch_add(&server_state->connections, 1);
    char buf[512];
    struct pollfd in = {.fd = conn, .events = POLLIN};
    if (poll(&in, 1, 1000) > 0 && read(conn, buf, sizeof buf) > 0) {
      static const char answer[] = "HTTP/1.1 400 Bad Request\r\n\r\n*-5\r\n$9999999999\r\n";
      ssize_t ignored = send(conn, answer, sizeof answer - 1, MSG_NOSIGNAL);
      (void)ignored;
    }
    close(conn);
  }
  return NULL;
}

static void start_junk_server(void) {
  junk.fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  cr_assert_eq(bind(junk.fd, (struct sockaddr *)&addr, sizeof addr), 0);
  cr_assert_eq(listen(junk.fd, 16), 0);
  cr_assert_eq(getsockname(junk.fd, (struct sockaddr *)&addr, &len), 0);
  junk.port = ntohs(addr.sin_port);
  atomic_store(&junk.stop, false);
  cr_assert_eq(pthread_create(&junk.thread, NULL, serve_junk, &junk), 0);
}

static void stop_junk_server(void) {
  if (junk.fd < 0) return;
  atomic_store(&junk.stop, true);
  pthread_join(junk.thread, NULL);
  close(junk.fd);
  junk.fd = -1;
}

Test(redis, a_peer_answering_junk_is_logged_and_retried_never_acknowledged) {
  start_junk_server();
  xadd_numbers("in", 1, 10);
  const char *pipeline = write_pipeline("junk",
                                        "drain_timeout: 1s\n"
                                        "%s"
                                        "  - id: out\n"
                                        "    type: redis\n"
                                        "    url: redis://127.0.0.1:%d\n"
                                        "    key: out\n"
                                        "    backoff: 20ms\n"
                                        "    max_backoff: 100ms\n"
                                        "    inputs: [in]\n"
                                        "  - id: junk_in\n"
                                        "    type: redis\n"
                                        "    url: redis://127.0.0.1:%d\n"
                                        "    stream: s\n"
                                        "    group: g\n"
                                        "    backoff: 20ms\n"
                                        "    max_backoff: 100ms\n"
                                        "  - id: sink\n"
                                        "    type: file\n"
                                        "    path: out.txt\n"
                                        "    inputs: [junk_in]\n",
                                        source_node(""), junk.port, junk.port);
  start_sluice(pipeline, "run.log");
  cr_assert(WAIT_FOR(log_has("run.log", "[out] warn: redis sink: redis://127.0.0.1") &&
                         log_has("run.log", "[junk_in] warn: redis://127.0.0.1") &&
                         atomic_load(&junk.connections) >= 6,
                     10000),
            "%s", folder_file("run.log"));
  cr_assert(log_has("run.log", "something that is not Redis"), "%s", folder_file("run.log"));
  cr_assert_eq(pending_count("in", "g"), 10, "entries went unacknowledged while undelivered");
  kill(child, SIGTERM);
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  child = -1;
  stop_junk_server();
  cr_assert(WIFEXITED(status), "sluice died of signal %d: %s", WTERMSIG(status),
            folder_file("run.log"));
  cr_assert_eq(pending_count("in", "g"), 10, "undelivered entries were acknowledged");
}

/* `sluice run` with one bad setting: exit 2 and a message holding `expected`. */
static void refused(const char *name, const char *node_text, const char *expected) {
  const char *pipeline = write_pipeline(name, "nodes:\n%s", node_text);
  char log_name[64];
  snprintf(log_name, sizeof log_name, "%s.log", name);
  start_sluice(pipeline, log_name);
  int code = wait_sluice();
  cr_assert_eq(code, 2, "%s: exit %d: %s", name, code, folder_file(log_name));
  cr_assert(log_has(log_name, expected), "%s: expected \"%s\" in: %s", name, expected,
            folder_file(log_name));
}

Test(redis, bad_settings_are_refused_naming_the_setting) {
  char text[1024];
  const char *source = "  - id: in\n    type: redis\n    url: %s\n    stream: in\n    group: g\n"
                       "%s"
                       "  - id: out\n    type: file\n    path: out.txt\n    inputs: [in]\n";
  const char *sink = "  - id: in\n    type: stdin\n"
                     "  - id: out\n    type: redis\n    url: %s\n    inputs: [in]\n%s";
  snprintf(text, sizeof text, source, server.url, "    tls_ca: ca.pem\n");
  refused("tls", text, "tls_ca: TLS is not supported");
  snprintf(text, sizeof text, source, "rediss://127.0.0.1:6380", "");
  refused("rediss", text, "rediss:// (TLS) is not supported");
  snprintf(text, sizeof text, source, "http://127.0.0.1:6379", "");
  refused("scheme", text, "url: must look like redis://");
  snprintf(text, sizeof text, source, "redis://127.0.0.1:99999", "");
  refused("port", text, "the port must be a number from 1 to 65535");
  snprintf(text, sizeof text, source, server.url, "    start_id: latest\n");
  refused("start_id", text, "start_id: must be $");
  snprintf(text, sizeof text, source, server.url, "    username: app\n");
  refused("user", text, "user 'app' needs a password");
  snprintf(text, sizeof text, source, "redis://:a@127.0.0.1:6379", "    password: b\n");
  refused("twopw", text, "password: the url holds a password too");
  snprintf(text, sizeof text, sink, server.url, "    key: \"events:{{region}}\"\n");
  refused("template", text, "key: unknown placeholder {{region}}");
  snprintf(text, sizeof text, sink, server.url,
           "    key: x\n    command: publish\n    maxlen: 5\n");
  refused("maxlen", text, "maxlen: only applies to command: xadd");
  snprintf(text, sizeof text, sink, server.url, "    key: x\n    command: rpush\n");
  refused("command", text, "command");
  snprintf(text, sizeof text, source, server.url, "    tls_key: k.pem\n");
  refused("tls_key", text, "tls_key: TLS is not supported");
}

/* ---- reliability ------------------------------------------------------------------- */

#define KILL_TOTAL 4000

/*
 * The output goes to a second server, which the test pauses (SIGSTOP) once the first
 * half is out, so the host is killed holding entries it read and did not deliver: the
 * source's reads go on (up to max_in_flight), the sink waits for its paused peer.
 */
Test(reliability, redis_kill_9_mid_stream_then_restart_loses_nothing, .init = setup,
     .fini = teardown, .timeout = 300) {
  cr_assert(sl_test_server_start(&sink_server, SL_TEST_REDIS), "the second redis did not start");
  freeReplyObject(command("XGROUP CREATE in g 0 MKSTREAM"));
  xadd_numbers("in", 1, KILL_TOTAL / 2);
  const char *pipeline = write_pipeline("kill9",
                                        "%s"
                                        "  - id: pass\n"
                                        "    type: wasm\n"
                                        "    module: %s\n"
                                        "    inputs: [in]\n"
                                        "  - id: out\n"
                                        "    type: redis\n"
                                        "    url: %s\n"
                                        "    key: out\n"
                                        "    metadata: false\n"
                                        "    inputs: [pass]\n",
                                        source_node("    batch_size: 50\n"),
                                        example_path("passthrough"), sink_server.url);
  start_sluice(pipeline, "run1.log");
  redisContext *out =
      redisConnectWithTimeout("127.0.0.1", sink_server.port, (struct timeval){5, 0});
  cr_assert(out && !out->err);
  sink_client = out;
  cr_assert(WAIT_FOR(xlen_on(out, "out") >= KILL_TOTAL / 4, 20000), "no progress: %s",
            folder_file("run1.log"));

  cr_assert_eq(kill(sink_server.pid, SIGSTOP), 0);
  sink_paused = true;
  xadd_numbers("in", KILL_TOTAL / 2 + 1, KILL_TOTAL);
  /* Read and not acknowledged: at least the second half, which cannot have gone out. */
  cr_assert(WAIT_FOR(pending_count("in", "g") >= KILL_TOTAL / 2, 20000),
            "the host did not read on: %lld pending; %s", pending_count("in", "g"),
            folder_file("run1.log"));
  kill_sluice();
  long long pending_at_kill = pending_count("in", "g");
  cr_assert_eq(kill(sink_server.pid, SIGCONT), 0);
  sink_paused = false;
  long long out_at_kill = xlen_on(out, "out");
  cr_assert(out_at_kill < KILL_TOTAL, "everything was out before the kill");

  start_sluice(pipeline, "run2.log");
  sl_seqcheck check;
  sl_seqcheck_init(&check, KILL_TOTAL);
  bool complete = false;
  uint64_t deadline = now_ms() + 30000;
  while (!complete && now_ms() < deadline) {
    sl_seqcheck_destroy(&check);
    sl_seqcheck_init(&check, KILL_TOTAL);
    check_stream_on(out, "out", &check);
    complete = sl_seqcheck_missing(&check) == 0;
    if (!complete) sleep_ms(50);
  }
  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  cr_log_info("redis kill -9 with %lld entries pending and %lld of %d out: %s", pending_at_kill,
              out_at_kill, KILL_TOTAL, report);
  cr_assert(complete, "%s; log: %s", report, folder_file("run2.log"));
  cr_assert_eq(check.out_of_range + check.unparsable, 0, "%s", report);
  cr_assert(WAIT_FOR(pending_count("in", "g") == 0, 5000));
  cr_assert_eq(stop_sluice(), 0, "%s", folder_file("run2.log"));
  sl_seqcheck_destroy(&check);
}
