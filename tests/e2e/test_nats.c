/*
 * The `nats` and `jetstream` connectors as a user runs them: `sluice run PIPELINE.yaml`
 * in a child process against a real `nats-server -js` on a loopback port (one server per
 * test, tests/support/servers.h). The test publishes input and reads output with the
 * nats.c API, and looks at the server's own view (stream and consumer info).
 *
 *   core             subscribe -> passthrough -> publish: headers become metadata and
 *                    back, the subject comes from metadata; an event without the key
 *                    fails, the run says so; a queue group shares messages between two
 *                    running pipelines, each message reaching one of them
 *   jetstream source acknowledged only after delivery (a sink that hangs, then fails,
 *                    then accepts: the message is delivered three times and acked once);
 *                    max_deliver sends the event to `src.errors` with `error` metadata
 *                    and the message is terminated
 *   jetstream sink   Nats-Msg-Id from a template: the same id twice is stored once
 *   restarts         the server killed (-9) and restarted while JetStream -> JetStream
 *                    runs: everything the source stream holds arrives once
 *   bad config       no such stream, a URL that is not nats://, a bad template: exit 2;
 *                    nothing listening: exit 1; each with a message naming the problem
 *   parts            templates, subjects, URL redaction, backoff, settings checks (these
 *                    need no server, but share the suite)
 *
 * Map: fixture - processes - nats helpers - tests - parts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/e2e.h"
#include "../support/fixture.h"
#include "../support/http_receiver.h"
#include "../support/seqcheck.h"
#include "../support/servers.h"
#include "connectors/nats/nats_conn.h"
#include "connectors/nats/nats_msg.h"

/* --- fixture ---------------------------------------------------------------------- */

static sl_test_server server;
static char folder[64];
static pid_t children[2] = {-1, -1};
static natsConnection *nc;
static jsCtx *js;
static http_receiver *receiver;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void setup(void) {
  snprintf(folder, sizeof folder, "/tmp/sluice-e2e-nats-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  cr_assert(sl_test_server_start(&server, SL_TEST_NATS), "nats-server did not start");
  natsOptions *opts = NULL;
  cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
  natsOptions_SetURL(opts, server.url);
  natsOptions_SetMaxReconnect(opts, -1);
  natsOptions_SetReconnectWait(opts, 50);
  natsStatus s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  cr_assert_eq(s, NATS_OK, "connect to %s: %s", server.url, natsStatus_GetText(s));
  cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
}

static void teardown(void) {
  for (int i = 0; i < 2; i++)
    if (children[i] > 0) {
      kill(children[i], SIGKILL);
      waitpid(children[i], NULL, 0);
      children[i] = -1;
    }
  if (receiver) http_receiver_stop(receiver);
  receiver = NULL;
  jsCtx_Destroy(js);
  js = NULL;
  natsConnection_Destroy(nc);
  nc = NULL;
  sl_test_server_stop(&server);
  nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(nats, .init = setup, .fini = teardown, .timeout = 120);

/* --- processes -------------------------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* FOLDER/name, in a static buffer (one of four, so a few can be used at once). */
static const char *in_folder(const char *name) {
  static char paths[4][192];
  static int next;
  char *path = paths[next++ % 4];
  snprintf(path, 192, "%s/%s", folder, name);
  return path;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return strdup("");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)size + 1);
  cr_assert_not_null(text);
  size_t n = fread(text, 1, (size_t)size, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* The log of a run, for assertion messages (a static copy; the last 3000 bytes). */
static const char *log_text(const char *name) {
  static char shown[3001];
  char *text = slurp(in_folder(name));
  size_t len = strlen(text);
  snprintf(shown, sizeof shown, "%s", len > 3000 ? text + len - 3000 : text);
  free(text);
  return shown;
}

static bool log_has(const char *name, const char *needle) {
  char *text = slurp(in_folder(name));
  bool found = strstr(text, needle) != NULL;
  free(text);
  return found;
}

static bool wait_log(const char *name, const char *needle, long timeout_ms) {
  for (uint64_t deadline = now_ms() + (uint64_t)timeout_ms; now_ms() < deadline; sleep_ms(20))
    if (log_has(name, needle)) return true;
  return log_has(name, needle);
}

/* Writes FOLDER/name: "name: <name>-<pid>" then the nodes, printf-style. */
__attribute__((format(printf, 2, 3))) static const char *write_pipeline(const char *name,
                                                                        const char *fmt, ...) {
  const char *path = in_folder(name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  char base[64];
  snprintf(base, sizeof base, "%s", name);
  char *dot = strchr(base, '.');
  if (dot) *dot = '\0';
  fprintf(f, "name: nats-%s-%d\nnodes:\n", base, (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
  return path;
}

/* Starts `sluice run PIPELINE` in the folder; stdout and stderr go to FOLDER/log. */
static pid_t start_sluice(int slot, const char *pipeline, const char *log) {
  children[slot] = e2e_run_child(folder, pipeline, NULL, log);
  return children[slot];
}

/* SIGTERM, then the exit status (-1 when killed by a signal); fails after 30 s. */
static int stop_sluice(int slot) {
  pid_t pid = children[slot];
  cr_assert_gt(pid, 0);
  kill(pid, SIGTERM);
  int status = 0;
  for (uint64_t deadline = now_ms() + 30000; now_ms() < deadline; sleep_ms(10)) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      children[slot] = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
  }
  cr_assert_fail("sluice did not exit within 30 s of SIGTERM");
  return -1;
}

/* Runs `sluice run PIPELINE` to completion (it must end by itself); the exit code. */
static int run_sluice(const char *pipeline, const char *log) {
  start_sluice(0, pipeline, log);
  int status = 0;
  for (uint64_t deadline = now_ms() + 30000; now_ms() < deadline; sleep_ms(10)) {
    if (waitpid(children[0], &status, WNOHANG) == children[0]) {
      children[0] = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
  }
  cr_assert_fail("sluice did not finish within 30 s: %s", log_text(log));
  return -1;
}

/* --- nats helpers ----------------------------------------------------------------- */

static void add_stream(const char *name, const char *subjects) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  cfg.Subjects = &subjects;
  cfg.SubjectsLen = 1;
  jsErrCode code = 0;
  natsStatus s = js_AddStream(NULL, js, &cfg, NULL, &code);
  cr_assert_eq(s, NATS_OK, "add stream %s: %s (%d)", name, natsStatus_GetText(s), (int)code);
}

/* A message with headers given as "key", "value", ..., NULL. */
static natsMsg *make_msg(const char *subject, const char *payload, va_list pairs) {
  natsMsg *msg = NULL;
  cr_assert_eq(natsMsg_Create(&msg, subject, NULL, payload, (int)strlen(payload)), NATS_OK);
  for (const char *key; (key = va_arg(pairs, const char *)) != NULL;)
    cr_assert_eq(natsMsgHeader_Add(msg, key, va_arg(pairs, const char *)), NATS_OK);
  return msg;
}

/* Core publish, flushed: the server has it when this returns. */
static void publish(const char *subject, const char *payload, ...) {
  va_list pairs;
  va_start(pairs, payload);
  natsMsg *msg = make_msg(subject, payload, pairs);
  va_end(pairs);
  cr_assert_eq(natsConnection_PublishMsg(nc, msg), NATS_OK);
  cr_assert_eq(natsConnection_FlushTimeout(nc, 5000), NATS_OK);
  natsMsg_Destroy(msg);
}

/* JetStream publish, retried (while the server restarts) until it has a PubAck. */
static void js_publish(const char *subject, const char *payload, ...) {
  va_list pairs;
  va_start(pairs, payload);
  natsMsg *msg = make_msg(subject, payload, pairs);
  va_end(pairs);
  natsStatus s = NATS_ERR;
  for (uint64_t deadline = now_ms() + 20000; now_ms() < deadline && s != NATS_OK;) {
    s = js_PublishMsg(NULL, js, msg, NULL, NULL);
    if (s != NATS_OK) sleep_ms(50);
  }
  cr_assert_eq(s, NATS_OK, "publish to %s: %s", subject, natsStatus_GetText(s));
  natsMsg_Destroy(msg);
}

static uint64_t stream_count(const char *stream) {
  jsStreamInfo *info = NULL;
  natsStatus s = js_GetStreamInfo(&info, js, stream, NULL, NULL);
  if (s != NATS_OK) return 0; /* restarting: not yet */
  uint64_t n = info->State.Msgs;
  jsStreamInfo_Destroy(info);
  return n;
}

static bool wait_stream_count(const char *stream, uint64_t at_least, long timeout_ms) {
  for (uint64_t deadline = now_ms() + (uint64_t)timeout_ms; now_ms() < deadline; sleep_ms(20))
    if (stream_count(stream) >= at_least) return true;
  return stream_count(stream) >= at_least;
}

/* The stored message at `seq` (the caller destroys it). */
static natsMsg *stream_msg(const char *stream, uint64_t seq) {
  natsMsg *msg = NULL;
  natsStatus s = js_GetMsg(&msg, js, stream, seq, NULL, NULL);
  cr_assert_eq(s, NATS_OK, "get %s #%llu: %s", stream, (unsigned long long)seq,
               natsStatus_GetText(s));
  return msg;
}

/* The consumer's state as the server sees it. */
typedef struct consumer_state {
  uint64_t delivered; /* deliveries handed out, redeliveries included */
  uint64_t ack_floor; /* stream sequence up to which everything is acknowledged */
  int64_t ack_pending;
} consumer_state;

static bool consumer_state_of(const char *stream, const char *durable, consumer_state *out) {
  jsConsumerInfo *info = NULL;
  if (js_GetConsumerInfo(&info, js, stream, durable, NULL, NULL) != NATS_OK) return false;
  out->delivered = info->Delivered.Consumer;
  out->ack_floor = info->AckFloor.Stream;
  out->ack_pending = info->NumAckPending;
  jsConsumerInfo_Destroy(info);
  return true;
}

/* Waits until everything up to `seq` is acknowledged (or terminated) and nothing is
 * pending; the final state in *out. */
static bool wait_acked(const char *stream, const char *durable, uint64_t seq, long timeout_ms,
                       consumer_state *out) {
  for (uint64_t deadline = now_ms() + (uint64_t)timeout_ms; now_ms() < deadline; sleep_ms(20))
    if (consumer_state_of(stream, durable, out) && out->ack_floor >= seq && out->ack_pending == 0)
      return true;
  return false;
}

static natsSubscription *subscribe(const char *subject) {
  natsSubscription *sub = NULL;
  cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, subject), NATS_OK);
  cr_assert_eq(natsConnection_FlushTimeout(nc, 5000), NATS_OK);
  return sub;
}

static natsMsg *next_msg(natsSubscription *sub, const char *log) {
  natsMsg *msg = NULL;
  natsStatus s = natsSubscription_NextMsg(&msg, sub, 15000);
  cr_assert_eq(s, NATS_OK, "no message within 15 s (%s): %s", natsStatus_GetText(s), log_text(log));
  return msg;
}

static const char *header(natsMsg *msg, const char *key) {
  const char *value = NULL;
  return natsMsgHeader_Get(msg, key, &value) == NATS_OK ? value : NULL;
}

static void assert_header(natsMsg *msg, const char *key, const char *expected) {
  const char *value = header(msg, key);
  cr_assert(value && strcmp(value, expected) == 0, "header %s: expected \"%s\", got \"%s\"", key,
            expected, value ? value : "(none)");
}

static void assert_payload(natsMsg *msg, const char *expected) {
  cr_assert_eq((size_t)natsMsg_GetDataLength(msg), strlen(expected), "payload \"%.*s\" != \"%s\"",
               natsMsg_GetDataLength(msg), natsMsg_GetData(msg), expected);
  cr_assert(memcmp(natsMsg_GetData(msg), expected, strlen(expected)) == 0,
            "payload \"%.*s\" != \"%s\"", natsMsg_GetDataLength(msg), natsMsg_GetData(msg),
            expected);
}

/* --- core NATS -------------------------------------------------------------------- */

Test(nats, core_headers_become_metadata_and_back_and_the_subject_comes_from_metadata) {
  natsSubscription *out = subscribe("out.>");
  const char *pipeline = write_pipeline("core.yaml",
                                        "  - id: in\n"
                                        "    type: nats\n"
                                        "    url: %s\n"
                                        "    subject: 'in.>'\n"
                                        "  - id: pass\n"
                                        "    type: wasm\n"
                                        "    module: %s\n"
                                        "    inputs: [in]\n"
                                        "  - id: out\n"
                                        "    type: nats\n"
                                        "    url: %s\n"
                                        "    subject: 'out.{{meta.region}}'\n"
                                        "    inputs: [pass]\n",
                                        server.url, example_path("passthrough"), server.url);
  start_sluice(0, pipeline, "core.log");
  cr_assert(wait_log("core.log", "subscribed to in.>", 20000), "%s", log_text("core.log"));

  publish("in.orders", "hello", "region", "eu", "trace", "t-1", NULL);
  natsMsg *first = next_msg(out, "core.log");
  cr_assert_str_eq(natsMsg_GetSubject(first), "out.eu");
  assert_payload(first, "hello");
  assert_header(first, "region", "eu");
  assert_header(first, "trace", "t-1");
  assert_header(first, "subject", "in.orders"); /* the source's metadata, sent as a header */
  publish("in.returns", "bonjour", "region", "fr", NULL);
  natsMsg *second = next_msg(out, "core.log");
  cr_assert_str_eq(natsMsg_GetSubject(second), "out.fr");
  assert_payload(second, "bonjour");
  assert_header(second, "subject", "in.returns");
  natsMsg_Destroy(first);
  natsMsg_Destroy(second);

  /* An event without `region` has no subject: it fails (with its batch), the run says so. */
  publish("in.other", "no region here", NULL);
  cr_assert(wait_log("core.log", "no metadata 'region'", 20000), "%s", log_text("core.log"));
  cr_assert_eq(stop_sluice(0), 1, "%s", log_text("core.log"));
  cr_assert(log_has("core.log", "1 events could not be delivered"), "%s", log_text("core.log"));
  natsSubscription_Destroy(out);
}

Test(nats, a_queue_group_shares_messages_between_two_pipelines) {
  const char *nodes = "  - id: in\n"
                      "    type: nats\n"
                      "    url: %s\n"
                      "    subject: work\n"
                      "    queue: workers\n"
                      "  - id: out\n"
                      "    type: file\n"
                      "    path: %s\n"
                      "    inputs: [in]\n";
  const char *one = write_pipeline("queue1.yaml", nodes, server.url, "out1.txt");
  const char *two = write_pipeline("queue2.yaml", nodes, server.url, "out2.txt");
  start_sluice(0, one, "queue1.log");
  start_sluice(1, two, "queue2.log");
  cr_assert(wait_log("queue1.log", "in queue group workers", 20000), "%s", log_text("queue1.log"));
  cr_assert(wait_log("queue2.log", "in queue group workers", 20000), "%s", log_text("queue2.log"));

  enum { COUNT = 400 };
  for (int i = 1; i <= COUNT; i++) {
    char payload[16];
    snprintf(payload, sizeof payload, "%d", i);
    cr_assert_eq(natsConnection_PublishString(nc, "work", payload), NATS_OK);
  }
  cr_assert_eq(natsConnection_FlushTimeout(nc, 5000), NATS_OK);

  char *a = NULL, *b = NULL;
  size_t lines = 0;
  for (uint64_t deadline = now_ms() + 20000; now_ms() < deadline && lines < COUNT; sleep_ms(20)) {
    free(a);
    free(b);
    a = slurp(in_folder("out1.txt"));
    b = slurp(in_folder("out2.txt"));
    lines = 0;
    for (const char *p = a; *p; p++) lines += *p == '\n';
    for (const char *p = b; *p; p++) lines += *p == '\n';
  }
  cr_assert_eq(stop_sluice(0), 0, "%s", log_text("queue1.log"));
  cr_assert_eq(stop_sluice(1), 0, "%s", log_text("queue2.log"));
  sl_seqcheck check;
  sl_seqcheck_init(&check, COUNT);
  sl_seqcheck_add_lines(&check, a);
  sl_seqcheck_add_lines(&check, b);
  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  /* Each message reached exactly one member of the group, and both members took some. */
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s", report);
  cr_assert_eq(check.duplicates, 0, "%s", report);
  cr_assert_eq(check.received, COUNT, "%s", report);
  cr_assert(a[0] && b[0], "one member got nothing: %s", report);
  sl_seqcheck_destroy(&check);
  free(a);
  free(b);
}

/* --- JetStream source ------------------------------------------------------------- */

Test(nats, jetstream_source_acknowledges_only_after_the_sink_accepted) {
  add_stream("ORDERS", "orders.>");
  receiver = http_receiver_start();
  /* First delivery: the sink's request hangs until its 1 s timeout; second: 500; third: 200. */
  http_receiver_script(receiver, (hr_reply){.action = HR_HANG}, 1);
  http_receiver_script(receiver, (hr_reply){.status = 500}, 1);
  char url[128];
  http_receiver_url(receiver, "/in", url, sizeof url);
  const char *pipeline = write_pipeline("ack.yaml",
                                        "  - id: in\n"
                                        "    type: jetstream\n"
                                        "    url: %s\n"
                                        "    stream: ORDERS\n"
                                        "    durable: shipping\n"
                                        "    backoff: 50ms\n"
                                        "  - id: pass\n"
                                        "    type: wasm\n"
                                        "    module: %s\n"
                                        "    inputs: [in]\n"
                                        "  - id: post\n"
                                        "    type: http\n"
                                        "    url: %s\n"
                                        "    timeout: 1s\n"
                                        "    max_retries: 0\n"
                                        "    inputs: [pass]\n",
                                        server.url, example_path("passthrough"), url);
  start_sluice(0, pipeline, "ack.log");
  js_publish("orders.new", "order-1", NULL);

  cr_assert_eq(http_receiver_wait(receiver, 1, 20000), 1, "%s", log_text("ack.log"));
  /* The first request is hanging: the message is out, and not acknowledged. */
  consumer_state state;
  cr_assert(consumer_state_of("ORDERS", "shipping", &state));
  cr_assert_lt(http_receiver_count(receiver), 3, "the check above came too late to mean much");
  cr_assert_eq(state.ack_floor, 0);
  cr_assert_eq(state.ack_pending, 1);

  cr_assert_eq(http_receiver_wait(receiver, 3, 20000), 3, "%s", log_text("ack.log"));
  cr_assert(wait_acked("ORDERS", "shipping", 1, 20000, &state), "never acknowledged: %s",
            log_text("ack.log"));
  cr_assert_eq(state.delivered, 3, "delivered %llu times", (unsigned long long)state.delivered);
  for (size_t i = 0; i < 3; i++)
    cr_assert_str_eq(http_receiver_request(receiver, i)->body, "order-1");
  /* The sink's two failed attempts make the run a failure, although all arrived. */
  cr_assert_eq(stop_sluice(0), 1, "%s", log_text("ack.log"));
  cr_assert_eq(http_receiver_count(receiver), 3);
}

Test(nats, jetstream_max_deliver_sends_the_event_to_errors_and_terminates_it) {
  add_stream("JOBS", "jobs.>");
  natsSubscription *dead = subscribe("dead.letter");
  receiver = http_receiver_start();
  http_receiver_set_default(receiver, (hr_reply){.status = 500});
  char url[128];
  http_receiver_url(receiver, "/in", url, sizeof url);
  const char *pipeline = write_pipeline("dlq.yaml",
                                        "  - id: src\n"
                                        "    type: jetstream\n"
                                        "    url: %s\n"
                                        "    stream: JOBS\n"
                                        "    durable: worker\n"
                                        "    max_deliver: 2\n"
                                        "    backoff: 50ms\n"
                                        "  - id: post\n"
                                        "    type: http\n"
                                        "    url: %s\n"
                                        "    max_retries: 0\n"
                                        "    inputs: [src]\n"
                                        "  - id: dead\n"
                                        "    type: nats\n"
                                        "    url: %s\n"
                                        "    subject: dead.letter\n"
                                        "    inputs: [src.errors]\n",
                                        server.url, url, server.url);
  start_sluice(0, pipeline, "dlq.log");
  js_publish("jobs.poison", "poison", "kind", "bad", NULL);

  natsMsg *msg = next_msg(dead, "dlq.log");
  assert_payload(msg, "poison");
  assert_header(msg, "kind", "bad");
  assert_header(msg, "deliveries", "2");
  assert_header(msg, "stream_seq", "1");
  const char *error = header(msg, "error");
  cr_assert(error && strstr(error, "max_deliver 2"), "error: %s", error ? error : "(none)");
  natsMsg_Destroy(msg);

  /* Terminated: acknowledged for good, after exactly two deliveries. */
  consumer_state state;
  cr_assert(wait_acked("JOBS", "worker", 1, 20000, &state), "not terminated: %s",
            log_text("dlq.log"));
  cr_assert_eq(state.delivered, 2);
  cr_assert_eq(http_receiver_count(receiver), 2);
  /* The sink's two failures make the run a failure; the errors output delivered. */
  cr_assert_eq(stop_sluice(0), 1, "%s", log_text("dlq.log"));
  natsSubscription_Destroy(dead);
}

/* --- JetStream sink --------------------------------------------------------------- */

Test(nats, jetstream_sink_stores_a_message_id_once) {
  add_stream("OUT", "out.>");
  const char *pipeline = write_pipeline("dedup.yaml",
                                        "  - id: in\n"
                                        "    type: nats\n"
                                        "    url: %s\n"
                                        "    subject: in\n"
                                        "  - id: store\n"
                                        "    type: jetstream\n"
                                        "    url: %s\n"
                                        "    subject: out.orders\n"
                                        "    msg_id: 'order-{{meta.id}}'\n"
                                        "    inputs: [in]\n",
                                        server.url, server.url);
  start_sluice(0, pipeline, "dedup.log");
  cr_assert(wait_log("dedup.log", "subscribed to in", 20000), "%s", log_text("dedup.log"));
  publish("in", "first", "id", "1", NULL);
  publish("in", "replayed", "id", "1", NULL); /* same id: the stream drops it */
  publish("in", "second", "id", "2", NULL);

  /* One source keeps its order, so once "second" is stored "replayed" was handled. */
  cr_assert(wait_stream_count("OUT", 2, 20000), "%s", log_text("dedup.log"));
  cr_assert_eq(stop_sluice(0), 0, "%s", log_text("dedup.log"));
  cr_assert_eq(stream_count("OUT"), 2);
  natsMsg *one = stream_msg("OUT", 1), *two = stream_msg("OUT", 2);
  assert_payload(one, "first");
  assert_header(one, "Nats-Msg-Id", "order-1");
  assert_header(one, "id", "1");
  assert_payload(two, "second");
  assert_header(two, "Nats-Msg-Id", "order-2");
  natsMsg_Destroy(one);
  natsMsg_Destroy(two);
}

/* --- restarts --------------------------------------------------------------------- */

Test(nats, a_server_killed_and_restarted_mid_stream_loses_and_repeats_nothing) {
  add_stream("SRC", "src.>");
  add_stream("DST", "dst.>");
  const char *pipeline = write_pipeline("restart.yaml",
                                        "  - id: in\n"
                                        "    type: jetstream\n"
                                        "    url: %s\n"
                                        "    stream: SRC\n"
                                        "    durable: copier\n"
                                        "    ack_wait: 2s\n"
                                        "    backoff: 50ms\n"
                                        "    max_backoff: 500ms\n"
                                        "  - id: pass\n"
                                        "    type: wasm\n"
                                        "    module: %s\n"
                                        "    inputs: [in]\n"
                                        "  - id: out\n"
                                        "    type: jetstream\n"
                                        "    url: %s\n"
                                        "    subject: dst.copy\n"
                                        "    msg_id: '{{meta.stream}}-{{meta.stream_seq}}'\n"
                                        "    timeout: 1s\n"
                                        "    backoff: 50ms\n"
                                        "    max_backoff: 500ms\n"
                                        "    inputs: [pass]\n",
                                        server.url, example_path("passthrough"), server.url);
  start_sluice(0, pipeline, "restart.log");
  enum { BEFORE = 1500, AFTER = 500 };
  for (int i = 1; i <= BEFORE; i++) {
    char payload[16];
    snprintf(payload, sizeof payload, "%d", i);
    js_publish("src.n", payload, NULL);
  }
  /* Kill the server while the copy is under way. */
  cr_assert(wait_stream_count("DST", 100, 20000), "%s", log_text("restart.log"));
  sl_test_server_kill(&server);
  cr_assert(sl_test_server_restart(&server), "nats-server did not come back");
  cr_assert(wait_log("restart.log", "reconnected", 20000), "%s", log_text("restart.log"));
  for (int i = BEFORE + 1; i <= BEFORE + AFTER; i++) {
    char payload[16];
    snprintf(payload, sizeof payload, "%d", i);
    js_publish("src.n", payload, NULL);
  }

  /* Whatever SRC holds (a -9 may cost the server its last writes) reaches DST once. */
  uint64_t held = stream_count("SRC");
  cr_assert_geq(held, AFTER);
  cr_assert(wait_stream_count("DST", held, 30000), "DST has %llu of %llu: %s",
            (unsigned long long)stream_count("DST"), (unsigned long long)held,
            log_text("restart.log"));
  consumer_state state;
  jsStreamInfo *info = NULL;
  cr_assert_eq(js_GetStreamInfo(&info, js, "SRC", NULL, NULL), NATS_OK);
  uint64_t last = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  cr_assert(wait_acked("SRC", "copier", last, 30000, &state), "%s", log_text("restart.log"));
  cr_assert_eq(stop_sluice(0), 0, "%s", log_text("restart.log"));

  sl_seqcheck src, dst;
  sl_seqcheck_init(&src, BEFORE + AFTER);
  sl_seqcheck_init(&dst, BEFORE + AFTER);
  for (uint64_t seq = 1; seq <= last; seq++) {
    natsMsg *msg = NULL;
    if (js_GetMsg(&msg, js, "SRC", seq, NULL, NULL) != NATS_OK) continue; /* lost by the -9 */
    sl_seqcheck_add(&src, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
  }
  uint64_t copied = stream_count("DST");
  for (uint64_t seq = 1; seq <= copied; seq++) {
    natsMsg *msg = stream_msg("DST", seq);
    sl_seqcheck_add(&dst, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
  }
  char report[256];
  cr_assert_eq(dst.duplicates, 0, "%s", sl_seqcheck_report(&dst, report, sizeof report));
  cr_assert_eq(copied, held, "%s", sl_seqcheck_report(&dst, report, sizeof report));
  for (uint64_t n = 1; n <= BEFORE + AFTER; n++)
    cr_assert_eq(src.seen[n - 1] > 0, dst.seen[n - 1] > 0, "%llu: in SRC %d, in DST %d",
                 (unsigned long long)n, src.seen[n - 1], dst.seen[n - 1]);
  sl_seqcheck_destroy(&src);
  sl_seqcheck_destroy(&dst);
}

/* --- bad configuration ------------------------------------------------------------ */

Test(nats, bad_configuration_is_a_clear_error) {
  const char *missing = write_pipeline("missing.yaml",
                                       "  - id: in\n"
                                       "    type: jetstream\n"
                                       "    url: %s\n"
                                       "    stream: NOPE\n"
                                       "  - id: out\n"
                                       "    type: stdout\n"
                                       "    inputs: [in]\n",
                                       server.url);
  cr_assert_eq(run_sluice(missing, "missing.log"), 2, "%s", log_text("missing.log"));
  cr_assert(log_has("missing.log", "stream NOPE does not exist"), "%s", log_text("missing.log"));

  const char *scheme = write_pipeline("scheme.yaml", "  - id: in\n"
                                                     "    type: nats\n"
                                                     "    url: http://127.0.0.1:4222\n"
                                                     "    subject: x\n"
                                                     "  - id: out\n"
                                                     "    type: stdout\n"
                                                     "    inputs: [in]\n");
  cr_assert_eq(run_sluice(scheme, "scheme.log"), 2, "%s", log_text("scheme.log"));
  cr_assert(log_has("scheme.log", "url: each server must look like nats://host:port"), "%s",
            log_text("scheme.log"));

  const char *tmpl = write_pipeline("template.yaml",
                                    "  - id: in\n"
                                    "    type: nats\n"
                                    "    url: %s\n"
                                    "    subject: x\n"
                                    "  - id: out\n"
                                    "    type: jetstream\n"
                                    "    url: %s\n"
                                    "    subject: 'out.{{region}}'\n"
                                    "    inputs: [in]\n",
                                    server.url, server.url);
  cr_assert_eq(run_sluice(tmpl, "template.log"), 2, "%s", log_text("template.log"));
  cr_assert(log_has("template.log", "unknown placeholder {{region}}"), "%s",
            log_text("template.log"));

  int port = sl_test_free_port();
  const char *nobody = write_pipeline("nobody.yaml",
                                      "  - id: in\n"
                                      "    type: nats\n"
                                      "    url: nats://127.0.0.1:%d\n"
                                      "    subject: x\n"
                                      "  - id: out\n"
                                      "    type: stdout\n"
                                      "    inputs: [in]\n",
                                      port);
  cr_assert_eq(run_sluice(nobody, "nobody.log"), 1, "%s", log_text("nobody.log"));
  char expected[128];
  snprintf(expected, sizeof expected, "cannot connect to nats://127.0.0.1:%d", port);
  cr_assert(log_has("nobody.log", expected), "%s", log_text("nobody.log"));
}

/* --- parts (no server) ------------------------------------------------------------ */

/* The placeholders themselves are tested in tests/unit/connectors/test_meta_template.c;
 * here, what the NATS sinks add: {{payload_sha256}} is allowed, and an event without a
 * key the template names is refused, naming the setting, the key and the template. */
Test(nats, parts_templates_allow_the_payload_hash_and_refuse_missing_metadata) {
  sl_meta_template tmpl;
  sl_error err = {{0}};
  cr_assert_eq(
      sl__nats_template_parse(&tmpl, "msg_id", "{{ meta.region }}.{{payload_sha256}}", &err), SL_OK,
      "%s", err.message);
  sl_meta meta[] = {{sl_bytes_from_cstr("region"), sl_bytes_from_cstr("eu")}};
  sl_event ev = {sl_bytes_from_cstr("abc"), meta, 1};
  sl_meta_template_buf out = {0};
  cr_assert_eq(sl__nats_template_render(&tmpl, &ev, &out, &err), SL_OK, "%s", err.message);
  cr_assert_str_eq(out.bytes,
                   "eu.ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ev.meta_count = 0;
  cr_assert_eq(sl__nats_template_render(&tmpl, &ev, &out, &err), SL_NOT_FOUND);
  cr_assert(strstr(err.message,
                   "msg_id: an event has no metadata 'region' (for \"{{ meta.region }}."
                   "{{payload_sha256}}\")"),
            "%s", err.message);
  sl_meta_template_destroy(&tmpl);
  sl_meta_template_buf_destroy(&out);
  cr_assert_eq(sl__nats_template_parse(&tmpl, "subject", "a.{{seq}}", &err), SL_CONFIG);
  cr_assert(strstr(err.message, "subject: unknown placeholder {{seq}}"), "%s", err.message);
}

Test(nats, parts_subjects) {
  cr_assert(sl__nats_subject_valid("orders.eu", false));
  cr_assert(sl__nats_subject_valid("orders.*.new", true));
  cr_assert(sl__nats_subject_valid("orders.>", true));
  cr_assert_not(sl__nats_subject_valid("orders.>", false));
  cr_assert_not(sl__nats_subject_valid("orders.>.x", true));
  cr_assert_not(sl__nats_subject_valid("orders..eu", false));
  cr_assert_not(sl__nats_subject_valid(".orders", false));
  cr_assert_not(sl__nats_subject_valid("orders.", false));
  cr_assert_not(sl__nats_subject_valid("two words", false));
  cr_assert_not(sl__nats_subject_valid("", false));
}

Test(nats, parts_urls_hide_passwords_and_backoff_doubles_to_its_cap) {
  char *shown = sl__nats_redact_url("nats://bob:s3cret@a:4222,tls://carol:pw@b:4223,nats://c");
  cr_assert_str_eq(shown, "nats://bob:***@a:4222,tls://carol:***@b:4223,nats://c");
  free(shown);
  nats_conn_config cfg = {.url = "nats://a", .backoff = 100, .max_backoff = 1000};
  cr_assert_eq(sl__nats_backoff_ms(&cfg, 1), 100);
  cr_assert_eq(sl__nats_backoff_ms(&cfg, 2), 200);
  cr_assert_eq(sl__nats_backoff_ms(&cfg, 4), 800);
  cr_assert_eq(sl__nats_backoff_ms(&cfg, 5), 1000);
  cr_assert_eq(sl__nats_backoff_ms(&cfg, 500), 1000);
  sl_error err = {{0}};
  cr_assert_eq(sl__nats_conn_check(&cfg, &err), SL_OK, "%s", err.message);
  cfg.url = "nats://a,http://b";
  cr_assert_eq(sl__nats_conn_check(&cfg, &err), SL_CONFIG);
  cfg.url = "nats://a";
  cfg.password = "pw";
  cr_assert_eq(sl__nats_conn_check(&cfg, &err), SL_CONFIG);
  cr_assert(strstr(err.message, "password: needs username"), "%s", err.message);
}
