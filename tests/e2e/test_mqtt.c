/*
 * The `mqtt` source and sink as a user runs them: `sluice run PIPELINE.yaml` against a
 * real mosquitto (tests/support/servers.h) that this test starts, and feeds and watches
 * with its own libmosquitto clients.
 *
 *   flow           QoS 1 through passthrough, several topic filters, the sink's topic
 *                  from metadata; QoS 0 with the source's metadata (qos, retain); the
 *                  sink's retain flag; every number a QoS 1 sink accepted arrives
 *   delivery       a sink failing a batch: not acknowledged, so the broker sends it again
 *   faults         the broker killed and restarted: both ends reconnect and carry on; a
 *                  sink stuck on a dead broker gives up at shutdown; bad settings refused
 *                  naming the setting; an event without the topic's metadata fails
 *   login, TLS     a password from a secret against a broker that requires it; mqtts://
 *                  with a CA and a client certificate
 *   reliability    the host killed with SIGKILL mid-stream with QoS 1 and restarted: no
 *                  number is missing (duplicates are allowed and reported)
 *
 * Each test has its own broker, folder and pipeline name (so its own client ids and
 * broker sessions).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <mosquitto.h>
#include <pthread.h>
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
#include "connectors/mqtt/mqtt.h"

#define WAIT_MS 20000

static sl_test_server server;
static char folder[64];
static char pipeline_path[128];
static pid_t child = -1; /* a running `sluice run`, killed by the fini */
static char name[64];    /* the pipeline's name: the test's name and the pid */

/* The test's own MQTT clients, freed by the fini. */
typedef struct message {
  char *topic;
  char *payload;
  int qos;
  bool retain;
} message;

typedef struct test_client {
  struct mosquitto *mosq;
  char *filter; /* subscribed again on every connection when set */
  int qos;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  unsigned connects, subacks;
  unsigned long published, acknowledged;
  message *messages;
  size_t count, cap;
} test_client;

#define MAX_CLIENTS 8
static test_client *clients[MAX_CLIENTS];
static http_receiver *receiver;
static char *buffers[4]; /* freed by the fini, so a failed assertion leaks nothing */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void setup(void) {
  mosquitto_lib_init();
  snprintf(folder, sizeof folder, "/tmp/sluice-e2e-mqtt-XXXXXX");
  cr_assert_not_null(mkdtemp(folder));
  snprintf(pipeline_path, sizeof pipeline_path, "%s/p.yaml", folder);
  cr_assert(sl_test_server_start(&server, SL_TEST_MOSQUITTO), "mosquitto did not start");
}

static void client_free(test_client *c);

static void teardown(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
  }
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i]) client_free(clients[i]);
    clients[i] = NULL;
  }
  if (receiver) http_receiver_stop(receiver);
  receiver = NULL;
  sl_test_server_stop(&server);
  nftw(folder, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  for (int i = 0; i < 4; i++) {
    free(buffers[i]);
    buffers[i] = NULL;
  }
  mosquitto_lib_cleanup();
}

TestSuite(mqtt, .init = setup, .fini = teardown, .timeout = 120);

/* ---- time and files --------------------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static const char *in_folder(char *buf, const char *file) {
  snprintf(buf, 128, "%s/%s", folder, file);
  return buf;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("");
  size_t cap = 1 << 16, len = 0, n;
  char *buf = malloc(cap + 1);
  while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

static const char *log_text(const char *log_name) {
  static char text[32768];
  char path[128];
  char *all = slurp(in_folder(path, log_name));
  size_t len = strlen(all);
  /* The end matters most when a log is long. */
  snprintf(text, sizeof text, "%s", len >= sizeof text ? all + len - (sizeof text - 1) : all);
  free(all);
  return text;
}

static size_t occurrences(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *at = text; (at = strstr(at, needle)) != NULL; at += strlen(needle)) n++;
  return n;
}

/* Waits until the log holds `needle` at least `times` times; false after `timeout_ms`. */
static bool wait_log(const char *log_name, const char *needle, size_t times, long timeout_ms) {
  char path[128];
  in_folder(path, log_name);
  for (uint64_t deadline = now_ms() + (uint64_t)timeout_ms;;) {
    char *all = slurp(path);
    bool found = occurrences(all, needle) >= times;
    free(all);
    if (found) return true;
    if (now_ms() >= deadline) return false;
    sleep_ms(10);
  }
}

/* Writes FOLDER/p.yaml: "name: NAME" then `body` (printf-formatted). */
__attribute__((format(printf, 1, 2))) static const char *write_pipeline(const char *body, ...) {
  FILE *f = fopen(pipeline_path, "w");
  cr_assert_not_null(f);
  fprintf(f, "name: %s\n", name);
  va_list ap;
  va_start(ap, body);
  vfprintf(f, body, ap);
  va_end(ap);
  fclose(f);
  return pipeline_path;
}

static void set_name(const char *test) {
  snprintf(name, sizeof name, "%s-%d", test, (int)getpid());
}

/* ---- running sluice ----------------------------------------------------------------- */

/* Starts `sluice run PIPELINE` in the folder; stdout and stderr go to FOLDER/log_name. */
static pid_t start_sluice(const char *pipeline, const char *log_name) {
  child = e2e_run_child(folder, pipeline, NULL, log_name);
  return child;
}

/* Waits for the child; its exit status, or -1 if a signal killed it. */
static int wait_sluice(pid_t pid) {
  int code = e2e_wait(pid, NULL);
  child = -1;
  return code;
}

/* Like wait_sluice, but gives up (false) after `timeout_ms`. */
static bool wait_sluice_for(pid_t pid, long timeout_ms, int *code) {
  for (uint64_t deadline = now_ms() + (uint64_t)timeout_ms; now_ms() < deadline; sleep_ms(10)) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      child = -1;
      *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return true;
    }
  }
  return false;
}

static int run_sluice(const char *pipeline, const char *log_name) {
  return wait_sluice(start_sluice(pipeline, log_name));
}

/* SIGTERM: sluice drains and exits; its status. */
static int stop_sluice(pid_t pid) {
  cr_assert_eq(kill(pid, SIGTERM), 0);
  return wait_sluice(pid);
}

/* ---- the test's MQTT clients -------------------------------------------------------- */

static void on_connect(struct mosquitto *mosq, void *user, int rc) {
  test_client *c = user;
  if (rc != 0) return;
  if (c->filter) mosquitto_subscribe(mosq, NULL, c->filter, c->qos);
  pthread_mutex_lock(&c->lock);
  c->connects++;
  pthread_cond_broadcast(&c->changed);
  pthread_mutex_unlock(&c->lock);
}

static void on_subscribe(struct mosquitto *mosq, void *user, int mid, int count, const int *qos) {
  test_client *c = user;
  pthread_mutex_lock(&c->lock);
  c->subacks++;
  pthread_cond_broadcast(&c->changed);
  pthread_mutex_unlock(&c->lock);
}

static void on_publish(struct mosquitto *mosq, void *user, int mid) {
  test_client *c = user;
  pthread_mutex_lock(&c->lock);
  c->acknowledged++;
  pthread_cond_broadcast(&c->changed);
  pthread_mutex_unlock(&c->lock);
}

static void on_message(struct mosquitto *mosq, void *user, const struct mosquitto_message *msg) {
  test_client *c = user;
  pthread_mutex_lock(&c->lock);
  if (c->count == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 256;
    c->messages = realloc(c->messages, c->cap * sizeof *c->messages);
  }
  message *m = &c->messages[c->count++];
  m->topic = strdup(msg->topic);
  m->payload = strndup(msg->payload ? msg->payload : "", (size_t)msg->payloadlen);
  m->qos = msg->qos;
  m->retain = msg->retain;
  pthread_cond_broadcast(&c->changed);
  pthread_mutex_unlock(&c->lock);
}

/* Waits until `*counter` (under c->lock) reaches `target`; false after `timeout_ms`. */
static bool wait_counter(test_client *c, const unsigned long *ulong_counter,
                         const unsigned *uint_counter, const size_t *size_counter,
                         unsigned long target, long timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&c->lock);
  for (;;) {
    unsigned long value = ulong_counter  ? *ulong_counter
                          : uint_counter ? *uint_counter
                                         : (unsigned long)*size_counter;
    if (value >= target) break;
    if (pthread_cond_timedwait(&c->changed, &c->lock, &until) == ETIMEDOUT) {
      value = ulong_counter ? *ulong_counter : uint_counter ? *uint_counter : *size_counter;
      pthread_mutex_unlock(&c->lock);
      return value >= target;
    }
  }
  pthread_mutex_unlock(&c->lock);
  return true;
}

/*
 * A client with its own network thread; it reconnects by itself (after 1 s) and, when
 * `filter` is set, subscribes to it on every connection. `id` NULL: a random id and a
 * clean session; otherwise a persistent session.
 */
static test_client *client_new(const char *id, const char *filter, int qos, int port) {
  test_client *c = calloc(1, sizeof *c);
  int slot = 0;
  while (slot < MAX_CLIENTS && clients[slot]) slot++;
  cr_assert_lt(slot, MAX_CLIENTS);
  clients[slot] = c;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->changed, NULL);
  c->filter = filter ? strdup(filter) : NULL;
  c->qos = qos;
  c->mosq = mosquitto_new(id, id == NULL, c);
  cr_assert_not_null(c->mosq);
  mosquitto_max_inflight_messages_set(c->mosq, 0);
  mosquitto_reconnect_delay_set(c->mosq, 1, 1, false);
  mosquitto_connect_callback_set(c->mosq, on_connect);
  mosquitto_subscribe_callback_set(c->mosq, on_subscribe);
  mosquitto_publish_callback_set(c->mosq, on_publish);
  mosquitto_message_callback_set(c->mosq, on_message);
  int rc = mosquitto_connect(c->mosq, "127.0.0.1", port, 30);
  cr_assert_eq(rc, MOSQ_ERR_SUCCESS, "test client: connect: %s", mosquitto_strerror(rc));
  cr_assert_eq(mosquitto_loop_start(c->mosq), MOSQ_ERR_SUCCESS);
  cr_assert(wait_counter(c, NULL, &c->connects, NULL, 1, WAIT_MS), "test client: no CONNACK");
  if (filter)
    cr_assert(wait_counter(c, NULL, &c->subacks, NULL, 1, WAIT_MS), "test client: no SUBACK");
  return c;
}

static void client_free(test_client *c) {
  mosquitto_disconnect(c->mosq);
  mosquitto_loop_stop(c->mosq, false);
  mosquitto_destroy(c->mosq);
  for (size_t i = 0; i < c->count; i++) {
    free(c->messages[i].topic);
    free(c->messages[i].payload);
  }
  free(c->messages);
  free(c->filter);
  pthread_cond_destroy(&c->changed);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

static void publish(test_client *c, const char *topic, const char *payload, int qos, bool retain) {
  pthread_mutex_lock(&c->lock);
  c->published++;
  pthread_mutex_unlock(&c->lock);
  int rc = mosquitto_publish(c->mosq, NULL, topic, (int)strlen(payload), payload, qos, retain);
  cr_assert_eq(rc, MOSQ_ERR_SUCCESS, "test client: publish: %s", mosquitto_strerror(rc));
}

/* Waits until the broker acknowledged everything `c` published. */
static void published_all(test_client *c) {
  pthread_mutex_lock(&c->lock);
  unsigned long target = c->published;
  pthread_mutex_unlock(&c->lock);
  cr_assert(wait_counter(c, &c->acknowledged, NULL, NULL, target, WAIT_MS),
            "test client: the broker did not acknowledge every message");
}

/* Publishes the numbers from..to (QoS 1) to `topic` and waits for the broker's PUBACKs. */
static void publish_numbers(test_client *c, const char *topic, int from, int to) {
  char payload[32];
  for (int n = from; n <= to; n++) {
    snprintf(payload, sizeof payload, "%d", n);
    publish(c, topic, payload, 1, false);
  }
  published_all(c);
}

static bool wait_messages(test_client *c, size_t count, long timeout_ms) {
  return wait_counter(c, NULL, NULL, &c->count, count, timeout_ms);
}

/* "topic payload retain" of message i, for comparisons. */
static const char *describe(test_client *c, size_t i) {
  static char text[512];
  pthread_mutex_lock(&c->lock);
  cr_assert_lt(i, c->count);
  snprintf(text, sizeof text, "%s %s%s", c->messages[i].topic, c->messages[i].payload,
           c->messages[i].retain ? " retained" : "");
  pthread_mutex_unlock(&c->lock);
  return text;
}

/* Feeds every payload `c` received to `check`. */
static void check_messages(test_client *c, sl_seqcheck *check) {
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < c->count; i++)
    sl_seqcheck_add(check, c->messages[i].payload, strlen(c->messages[i].payload));
  pthread_mutex_unlock(&c->lock);
}

/* ---- flow --------------------------------------------------------------------------- */

Test(mqtt, qos1_through_passthrough_with_several_filters_and_the_topic_from_metadata) {
  set_name("flow");
  test_client *out = client_new(NULL, "out/#", 1, server.port);
  const char *pipeline = write_pipeline("nodes:\n"
                                        "  - id: in\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topics: [in/+/x, more/#]\n"
                                        "  - id: pass\n"
                                        "    type: wasm\n"
                                        "    module: %s\n"
                                        "    inputs: [in]\n"
                                        "  - id: out\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topic: 'out/{{meta.topic}}'\n"
                                        "    inputs: [pass]\n",
                                        server.url, example_path("passthrough"), server.url);
  pid_t pid = start_sluice(pipeline, "run.log");
  cr_assert(wait_log("run.log", "subscribed to in/+/x, more/# at QoS 1", 1, WAIT_MS), "%s",
            log_text("run.log"));

  test_client *in = client_new(NULL, NULL, 1, server.port);
  publish(in, "in/1/x", "a", 1, false);
  publish(in, "more/deep/er", "b", 1, false);
  publish(in, "in/2/y", "not subscribed", 1, false);
  publish(in, "in/3/x", "d", 1, false);
  published_all(in);

  /* One source keeps its order, so "d" arriving third proves "in/2/y" was left out. */
  cr_assert(wait_messages(out, 3, WAIT_MS), "%s", log_text("run.log"));
  cr_assert_str_eq(describe(out, 0), "out/in/1/x a");
  cr_assert_str_eq(describe(out, 1), "out/more/deep/er b");
  cr_assert_str_eq(describe(out, 2), "out/in/3/x d");
  cr_assert_eq(out->messages[0].qos, 1);
  cr_assert_eq(stop_sluice(pid), 0, "%s", log_text("run.log"));
  cr_assert_eq(out->count, 3, "more arrived than was published to in/+/x and more/#");
}

Test(mqtt, qos0_at_most_once_carries_topic_qos_and_retain_metadata) {
  set_name("qos0");
  /* A retained message waits on the broker before the pipeline subscribes. */
  test_client *in = client_new(NULL, NULL, 1, server.port);
  publish(in, "in/kept", "kept", 1, true);
  published_all(in);
  test_client *out = client_new(NULL, "out/#", 1, server.port);
  const char *pipeline =
      write_pipeline("nodes:\n"
                     "  - id: in\n"
                     "    type: mqtt\n"
                     "    url: %s\n"
                     "    topics: in/#\n"
                     "    qos: 0\n"
                     "  - id: out\n"
                     "    type: mqtt\n"
                     "    url: %s\n"
                     "    topic: 'out/{{meta.qos}}/{{ meta.retain }}/{{meta.topic}}'\n"
                     "    qos: 0\n"
                     "    inputs: [in]\n",
                     server.url, server.url);
  pid_t pid = start_sluice(pipeline, "run.log");
  cr_assert(wait_messages(out, 1, WAIT_MS), "%s", log_text("run.log"));
  cr_assert_str_eq(describe(out, 0), "out/0/true/in/kept kept");

  /* Published at QoS 1, delivered at the subscription's QoS 0. */
  publish(in, "in/live", "live", 1, false);
  published_all(in);
  cr_assert(wait_messages(out, 2, WAIT_MS), "%s", log_text("run.log"));
  cr_assert_str_eq(describe(out, 1), "out/0/false/in/live live");
  cr_assert_eq(out->messages[1].qos, 0, "the sink published at QoS 0");
  cr_assert_eq(stop_sluice(pid), 0, "%s", log_text("run.log"));
}

Test(mqtt, sink_retain_keeps_the_last_message_for_later_subscribers) {
  set_name("retain");
  const char *pipeline = write_pipeline("nodes:\n"
                                        "  - id: gen\n"
                                        "    type: generate\n"
                                        "    count: 3\n"
                                        "    payload: 'v{{seq}}'\n"
                                        "  - id: out\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topic: state/x\n"
                                        "    retain: true\n"
                                        "    inputs: [gen]\n",
                                        server.url);
  cr_assert_eq(run_sluice(pipeline, "run.log"), 0, "%s", log_text("run.log"));
  /* Subscribed only now: the broker hands over what it kept. */
  test_client *late = client_new(NULL, "state/#", 1, server.port);
  cr_assert(wait_messages(late, 1, WAIT_MS));
  cr_assert_str_eq(describe(late, 0), "state/x v3 retained");
}

Test(mqtt, every_number_a_qos1_sink_accepted_reaches_a_subscriber) {
  set_name("sinkqos1");
  enum { COUNT = 3000 };
  test_client *out = client_new(NULL, "numbers", 1, server.port);
  const char *pipeline = write_pipeline("batch_size: 500\n"
                                        "nodes:\n"
                                        "  - id: gen\n"
                                        "    type: generate\n"
                                        "    count: %d\n"
                                        "    payload: '{{seq}}'\n"
                                        "  - id: out\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topic: numbers\n"
                                        "    inputs: [gen]\n",
                                        COUNT, server.url);
  cr_assert_eq(run_sluice(pipeline, "run.log"), 0, "%s", log_text("run.log"));
  cr_assert(wait_messages(out, COUNT, WAIT_MS), "%zu of %d: %s", out->count, COUNT,
            log_text("run.log"));
  sl_seqcheck check;
  sl_seqcheck_init(&check, COUNT);
  check_messages(out, &check);
  char report[256];
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s",
               sl_seqcheck_report(&check, report, sizeof report));
  cr_assert_eq(check.duplicates, 0, "%s", report);
  cr_assert_eq(check.reordered, 0, "%s", sl_seqcheck_report(&check, report, sizeof report));
  sl_seqcheck_destroy(&check);
}

/* ---- delivery ------------------------------------------------------------------------ */

Test(mqtt, a_failed_delivery_is_not_acknowledged_so_the_broker_sends_it_again) {
  set_name("redeliver");
  enum { COUNT = 10 };
  receiver = http_receiver_start();
  /* The first three requests fail; the sink gives up on its batch at once. */
  http_receiver_script(receiver, (hr_reply){.status = 500}, 3);
  char url[128];
  http_receiver_url(receiver, "/in", url, sizeof url);
  const char *pipeline = write_pipeline("nodes:\n"
                                        "  - id: in\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topics: in\n"
                                        "  - id: out\n"
                                        "    type: http\n"
                                        "    url: %s\n"
                                        "    max_retries: 0\n"
                                        "    inputs: [in]\n",
                                        server.url, url);
  pid_t pid = start_sluice(pipeline, "run.log");
  cr_assert(wait_log("run.log", "subscribed to in at QoS 1", 1, WAIT_MS), "%s",
            log_text("run.log"));
  test_client *in = client_new(NULL, NULL, 1, server.port);
  publish_numbers(in, "in", 1, COUNT);

  /* Every number is eventually answered 200: the requests after the scripted failures. */
  sl_seqcheck check;
  sl_seqcheck_init(&check, COUNT);
  for (uint64_t deadline = now_ms() + WAIT_MS; now_ms() < deadline; sleep_ms(20)) {
    sl_seqcheck_destroy(&check);
    sl_seqcheck_init(&check, COUNT);
    size_t requests = http_receiver_count(receiver);
    for (size_t i = 3; i < requests; i++) {
      const hr_request *req = http_receiver_request(receiver, i);
      sl_seqcheck_add(&check, req->body, req->body_len);
    }
    if (sl_seqcheck_missing(&check) == 0) break;
  }
  char report[256];
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s\n%s",
               sl_seqcheck_report(&check, report, sizeof report), log_text("run.log"));
  sl_seqcheck_destroy(&check);
  const char *log = log_text("run.log");
  cr_assert(strstr(log, "messages were not delivered"), "%s", log);
  cr_assert(strstr(log, "mqtt source: connected again"), "no reconnection: %s", log);
  /* The failed attempts are counted and reported: the run failed, though nothing is lost. */
  cr_assert_eq(stop_sluice(pid), 1, "%s", log_text("run.log"));
  cr_assert(strstr(log_text("run.log"), "could not be delivered"), "%s", log_text("run.log"));
}

/* ---- faults -------------------------------------------------------------------------- */

Test(mqtt, broker_restart_both_ends_reconnect_and_carry_on) {
  set_name("restart");
  /* The test's subscriber has a session of its own, and subscribes on each connection. */
  char id[96];
  snprintf(id, sizeof id, "%s-reader", name);
  test_client *out = client_new(id, "out/#", 1, server.port);
  const char *pipeline = write_pipeline("nodes:\n"
                                        "  - id: in\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topics: in/#\n"
                                        "  - id: out\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topic: 'out/{{meta.topic}}'\n"
                                        "    inputs: [in]\n",
                                        server.url, server.url);
  pid_t pid = start_sluice(pipeline, "run.log");
  cr_assert(wait_log("run.log", "subscribed to in/#", 1, WAIT_MS), "%s", log_text("run.log"));
  test_client *in = client_new(NULL, NULL, 1, server.port);
  publish_numbers(in, "in/n", 1, 100);
  cr_assert(wait_messages(out, 100, WAIT_MS), "%s", log_text("run.log"));

  sl_test_server_kill(&server);
  cr_assert(wait_log("run.log", "mqtt source: connection to", 1, WAIT_MS), "%s",
            log_text("run.log"));
  cr_assert(wait_log("run.log", "mqtt sink: connection to", 1, WAIT_MS), "%s", log_text("run.log"));
  cr_assert(sl_test_server_restart(&server), "mosquitto did not restart");
  cr_assert(wait_log("run.log", "mqtt source: connected again", 1, WAIT_MS), "%s",
            log_text("run.log"));
  cr_assert(wait_log("run.log", "subscribed to in/#", 2, WAIT_MS), "%s", log_text("run.log"));
  cr_assert(wait_log("run.log", "mqtt sink: connected again", 1, WAIT_MS), "%s",
            log_text("run.log"));
  cr_assert(wait_counter(out, NULL, &out->subacks, NULL, 2, WAIT_MS), "the reader is back");

  test_client *in2 = client_new(NULL, NULL, 1, server.port);
  publish_numbers(in2, "in/n", 101, 200);
  sl_seqcheck check;
  sl_seqcheck_init(&check, 200);
  char report[256];
  for (uint64_t deadline = now_ms() + WAIT_MS; now_ms() < deadline; sleep_ms(20)) {
    sl_seqcheck_destroy(&check);
    sl_seqcheck_init(&check, 200);
    check_messages(out, &check);
    if (sl_seqcheck_missing(&check) == 0) break;
  }
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s\n%s",
               sl_seqcheck_report(&check, report, sizeof report), log_text("run.log"));
  sl_seqcheck_destroy(&check);
  cr_assert_eq(stop_sluice(pid), 0, "%s", log_text("run.log"));
}

Test(mqtt, a_sink_stuck_on_a_dead_broker_gives_up_at_shutdown) {
  set_name("stuck");
  const char *pipeline = write_pipeline("drain_timeout: 500ms\n"
                                        "nodes:\n"
                                        "  - id: gen\n"
                                        "    type: generate\n"
                                        "    rate: 100\n"
                                        "  - id: out\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topic: t\n"
                                        "    inputs: [gen]\n",
                                        server.url);
  pid_t pid = start_sluice(pipeline, "run.log");
  cr_assert(wait_log("run.log", "mqtt sink: connected to", 1, WAIT_MS), "%s", log_text("run.log"));
  sl_test_server_kill(&server);
  cr_assert(wait_log("run.log", "cannot connect to", 1, WAIT_MS), "%s", log_text("run.log"));
  uint64_t asked = now_ms();
  cr_assert_eq(kill(pid, SIGTERM), 0);
  int code = 0;
  cr_assert(wait_sluice_for(pid, 10000, &code), "sluice did not exit within 10 s: %s",
            log_text("run.log"));
  cr_assert_eq(code, 1, "%s", log_text("run.log"));
  cr_assert_lt(now_ms() - asked, 5000);
  const char *log = log_text("run.log");
  cr_assert(strstr(log, "gave up draining"), "%s", log);
}

/*
 * `sluice run` leaves a stuck sink behind when the drain deadline passes (_exit), but a
 * daemon tearing down a pipeline calls stop() and then waits for the sink's thread: so
 * stop() must make a write blocked on an unreachable broker return. Driven here through
 * the connector table, as the runtime does.
 */
static void *write_on_thread(void *arg) {
  void **args = arg;
  const sl_event_list *batch = args[1];
  sl_error *err = args[2];
  sl_status *st = args[3];
  *st = sl_mqtt_sink.write(args[0], batch, err);
  return NULL;
}

Test(mqtt, sink_stop_makes_a_write_blocked_on_a_dead_broker_return) {
  mqtt_sink_config cfg = {
      .common = {.url = server.url, .keepalive = 30000, .backoff = 100, .max_backoff = 500},
      .topic = "t",
      .qos = 1};
  sl_node_ctx node = {.pipeline = "direct", .id = "out", .workers = 1};
  void *sink = NULL;
  sl_error err = {{0}};
  cr_assert_eq(sl_mqtt_sink.init(&node, &cfg, &sink, &err), SL_OK, "%s", err.message);
  sl_test_server_kill(&server);

  sl_event_list batch;
  sl_event_list_init(&batch);
  uint8_t *payload;
  sl_meta *meta;
  cr_assert_eq(sl_event_list_push(&batch, 5, 0, &payload, &meta), SL_OK);
  memcpy(payload, "hello", 5);
  sl_status st = SL_OK;
  void *args[] = {sink, &batch, &err, &st};
  pthread_t writer;
  cr_assert_eq(pthread_create(&writer, NULL, write_on_thread, args), 0);
  /* Retrying against a dead broker, the write does not return by itself. */
  sleep_ms(300);
  cr_assert_eq(pthread_tryjoin_np(writer, NULL), EBUSY, "the write returned: %s", err.message);

  uint64_t asked = now_ms();
  sl_mqtt_sink.stop(sink);
  cr_assert_eq(pthread_join(writer, NULL), 0);
  cr_assert_lt(now_ms() - asked, 2000);
  cr_assert_eq(st, SL_CLOSED, "%s", err.message);
  cr_assert(strstr(err.message, "mqtt sink: stopped before"), "%s", err.message);
  cr_assert(strstr(err.message, "accepted 1 of 1 messages"), "%s", err.message);
  /* A later write is refused at once. */
  cr_assert_eq(sl_mqtt_sink.write(sink, &batch, &err), SL_CLOSED);
  sl_mqtt_sink.destroy(sink);
  sl_event_list_destroy(&batch);
}

/* Runs a pipeline that must be refused; its log must hold `expected`. */
__attribute__((format(printf, 3, 4))) static void
refused(const char *log_name, const char *expected, const char *body, ...) {
  FILE *f = fopen(pipeline_path, "w");
  cr_assert_not_null(f);
  fprintf(f, "name: %s\n", name);
  va_list ap;
  va_start(ap, body);
  vfprintf(f, body, ap);
  va_end(ap);
  fclose(f);
  int code = run_sluice(pipeline_path, log_name);
  const char *log = log_text(log_name);
  cr_assert_eq(code, 2, "expected exit 2 for \"%s\": %s", expected, log);
  cr_assert(strstr(log, expected), "expected \"%s\" in: %s", expected, log);
}

#define SOURCE_WITH(extra)                                                                         \
  "nodes:\n  - id: in\n    type: mqtt\n    topics: in\n" extra                                     \
  "  - id: out\n    type: stdout\n    inputs: [in]\n"
#define SINK_WITH(extra)                                                                           \
  "nodes:\n  - id: in\n    type: generate\n    count: 1\n"                                         \
  "  - id: out\n    type: mqtt\n    inputs: [in]\n" extra

Test(mqtt, bad_settings_are_refused_naming_the_setting) {
  set_name("bad");
  char not_pem[128];
  FILE *f = fopen(in_folder(not_pem, "ca.txt"), "w");
  fputs("not a certificate\n", f);
  fclose(f);
  refused("1.log", "url: must start with mqtt:// or mqtts://",
          SOURCE_WITH("    url: tcp://127.0.0.1:%d\n"), server.port);
  refused("2.log", "url: credentials do not go in the url",
          SOURCE_WITH("    url: mqtt://me:secret@127.0.0.1:%d\n"), server.port);
  refused("3.log", "url: \"mqtt://127.0.0.1:99999\": the port must be a number from 1 to 65535",
          SOURCE_WITH("    url: mqtt://127.0.0.1:99999\n"));
  refused("4.log", "topics: \"a/#/b\" is not a topic filter",
          "nodes:\n  - id: in\n    type: mqtt\n    url: %s\n    topics: 'ok, a/#/b'\n"
          "  - id: out\n    type: stdout\n    inputs: [in]\n",
          server.url);
  refused("5.log", "topics: needs at least one topic filter",
          "nodes:\n  - id: in\n    type: mqtt\n    url: %s\n    topics: []\n"
          "  - id: out\n    type: stdout\n    inputs: [in]\n",
          server.url);
  refused("6.log", "qos: must be 0 (at most once) or 1 (at least once), got 2",
          SOURCE_WITH("    url: %s\n    qos: 2\n"), server.url);
  refused("7.log", "password: needs a username", SOURCE_WITH("    url: %s\n    password: x\n"),
          server.url);
  refused("8.log", "tls_ca: only for TLS connections; write the url as mqtts://",
          SOURCE_WITH("    url: %s\n    tls_ca: ca.txt\n"), server.url);
  refused("9.log", "tls_ca: ", SOURCE_WITH("    url: mqtts://127.0.0.1:%d\n    tls_ca: ca.txt\n"),
          server.port);
  cr_assert(strstr(log_text("9.log"), "cannot load CA certificates"), "%s", log_text("9.log"));
  refused("10.log", "tls_key: a client certificate needs both tls_cert and tls_key",
          SOURCE_WITH("    url: mqtts://127.0.0.1:%d\n    tls_cert: ca.txt\n"), server.port);
  refused("11.log", "topic: unknown placeholder {{foo}}",
          SINK_WITH("    url: %s\n    topic: 'x/{{foo}}'\n"), server.url);
  refused("12.log", "topic: \"x/#\" cannot be published to: it holds + or #",
          SINK_WITH("    url: %s\n    topic: 'x/#'\n"), server.url);
  refused("13.log", "topic: \"{{\" at character 3 is never closed by \"}}\"",
          SINK_WITH("    url: %s\n    topic: 'x/{{meta.a'\n"), server.url);
  refused("14.log", "keepalive: must be from 5s to 65535s",
          SINK_WITH("    url: %s\n    topic: x\n    keepalive: 1s\n"), server.url);
  refused("15.log", "missing required key 'topics'",
          "nodes:\n  - id: in\n    type: mqtt\n"
          "    url: %s\n"
          "  - id: out\n    type: stdout\n"
          "    inputs: [in]\n",
          server.url);
}

Test(mqtt, an_event_without_the_topics_metadata_fails_its_batch) {
  set_name("nometa");
  test_client *out = client_new(NULL, "#", 1, server.port);
  const char *pipeline = write_pipeline("nodes:\n"
                                        "  - id: gen\n"
                                        "    type: generate\n"
                                        "    count: 2\n"
                                        "  - id: out\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topic: 'out/{{meta.device}}'\n"
                                        "    inputs: [gen]\n",
                                        server.url);
  cr_assert_eq(run_sluice(pipeline, "run.log"), 1, "%s", log_text("run.log"));
  const char *log = log_text("run.log");
  cr_assert(
      strstr(log, "event 1 of 2 has no metadata 'device' for the topic \"out/{{meta.device}}\""),
      "%s", log);
  cr_assert(strstr(log, "nothing of this batch was published"), "%s", log);
  cr_assert_eq(out->count, 0);
}

/* ---- login and TLS -------------------------------------------------------------------- */

/*
 * Rewrites the test broker's configuration (servers.c keeps it in DIR/mosquitto.conf and
 * reads it again on restart) to add a second listener on `port` with `settings`; the
 * first one stays anonymous, so servers.c can still see that the broker answers.
 */
static void add_listener(int port, const char *settings) {
  char path[256];
  snprintf(path, sizeof path, "%s/mosquitto.conf", server.dir);
  char *conf = slurp(path);
  cr_assert(strstr(conf, "listener "), "no listener in %s", path);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  /* servers.c's file already says `user root` when run as root, so the broker can read
   * the test's files. */
  fprintf(f, "per_listener_settings true\n%slistener %d 127.0.0.1\n%s", conf, port, settings);
  fclose(f);
  free(conf);
  cr_assert(sl_test_server_restart(&server), "mosquitto did not restart: see %s/server.log",
            server.dir);
}

Test(mqtt, a_password_from_a_secret_logs_in) {
  set_name("login");
  char passwords[128], cmd[512];
  in_folder(passwords, "passwords");
  snprintf(cmd, sizeof cmd, "mosquitto_passwd -c -b '%s' sluice 's3cret-pw' 2>&1", passwords);
  cr_assert_eq(system(cmd), 0);
  int port = sl_test_free_port();
  char settings[256];
  snprintf(settings, sizeof settings, "allow_anonymous false\npassword_file %s\n", passwords);
  add_listener(port, settings);
  test_client *out = client_new(NULL, "out", 1, server.port);

  const char *body = "drain_timeout: 500ms\n"
                     "secrets:\n"
                     "  pw: {env: MQTT_TEST_PASSWORD}\n"
                     "nodes:\n"
                     "  - id: gen\n"
                     "    type: generate\n"
                     "    count: 1\n"
                     "    payload: hello\n"
                     "  - id: out\n"
                     "    type: mqtt\n"
                     "    url: mqtt://127.0.0.1:%d\n"
                     "    topic: out\n"
                     "    username: sluice\n"
                     "    password: ${secret:pw}\n"
                     "    max_backoff: 200ms\n"
                     "    inputs: [gen]\n";
  /* A wrong password: refused, said plainly, and retried until shutdown. */
  setenv("MQTT_TEST_PASSWORD", "wr0ng-pw-9", 1);
  pid_t pid = start_sluice(write_pipeline(body, port), "wrong.log");
  cr_assert(wait_log("wrong.log", "the broker refused the connection", 1, WAIT_MS), "%s",
            log_text("wrong.log"));
  cr_assert_eq(stop_sluice(pid) != 0, 1);
  cr_assert_null(strstr(log_text("wrong.log"), "wr0ng-pw-9"), "the password is in the log");

  setenv("MQTT_TEST_PASSWORD", "s3cret-pw", 1);
  cr_assert_eq(run_sluice(write_pipeline(body, port), "right.log"), 0, "%s", log_text("right.log"));
  cr_assert(wait_messages(out, 1, WAIT_MS));
  cr_assert_str_eq(describe(out, 0), "out hello");
  cr_assert_null(strstr(log_text("right.log"), "s3cret"), "the password is in the log");
  unsetenv("MQTT_TEST_PASSWORD");
}

Test(mqtt, mqtts_with_a_ca_and_a_client_certificate) {
  set_name("tls");
  /* A CA, a broker certificate for 127.0.0.1 and a client certificate, all from it. */
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && exec >openssl.log 2>&1 && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout ca.key -out ca.crt -subj /CN=sluice-test-ca -days 2 && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
           "printf 'subjectAltName=IP:127.0.0.1\\n' >server.ext && "
           "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
           "-out server.crt -days 2 -extfile server.ext && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout client.key -out client.csr -subj /CN=sluice-client && "
           "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
           "-out client.crt -days 2",
           folder);
  cr_assert_eq(system(cmd), 0, "openssl: %s", log_text("openssl.log"));
  int port = sl_test_free_port();
  char settings[1024];
  snprintf(settings, sizeof settings,
           "allow_anonymous true\ncafile %s/ca.crt\ncertfile %s/server.crt\nkeyfile "
           "%s/server.key\nrequire_certificate true\n",
           folder, folder, folder);
  add_listener(port, settings);
  const char *body = "drain_timeout: 500ms\n"
                     "nodes:\n"
                     "  - id: gen\n"
                     "    type: generate\n"
                     "    count: 1\n"
                     "    payload: over-tls\n"
                     "  - id: out\n"
                     "    type: mqtt\n"
                     "    url: mqtts://127.0.0.1:%d\n"
                     "    topic: out\n"
                     "    tls_ca: ca.crt\n"
                     "    inputs: [gen]\n";
  /* Without a client certificate the broker hangs up. */
  pid_t pid = start_sluice(write_pipeline(body, port), "nocert.log");
  cr_assert(wait_log("nocert.log", "mqtt sink: cannot connect to mqtts://127.0.0.1:", 1, WAIT_MS),
            "%s", log_text("nocert.log"));
  cr_assert_neq(stop_sluice(pid), 0);

  /* With one, both ends over TLS: a burst read by the source, published by the sink. */
  enum { COUNT = 2000 };
  test_client *numbers = client_new(NULL, "numbers", 1, server.port);
  pid = start_sluice(write_pipeline("nodes:\n"
                                    "  - id: in\n"
                                    "    type: mqtt\n"
                                    "    url: mqtts://127.0.0.1:%d\n"
                                    "    topics: in\n"
                                    "    tls_ca: ca.crt\n"
                                    "    tls_cert: client.crt\n"
                                    "    tls_key: client.key\n"
                                    "  - id: out\n"
                                    "    type: mqtt\n"
                                    "    url: mqtts://127.0.0.1:%d\n"
                                    "    topic: numbers\n"
                                    "    tls_ca: ca.crt\n"
                                    "    tls_cert: client.crt\n"
                                    "    tls_key: client.key\n"
                                    "    inputs: [in]\n",
                                    port, port),
                     "tls.log");
  cr_assert(wait_log("tls.log", "subscribed to in at QoS 1", 1, WAIT_MS), "%s",
            log_text("tls.log"));
  test_client *in = client_new(NULL, NULL, 1, server.port);
  publish_numbers(in, "in", 1, COUNT);
  cr_assert(wait_messages(numbers, COUNT, WAIT_MS), "%zu of %d: %s", numbers->count, COUNT,
            log_text("tls.log"));
  sl_seqcheck check;
  sl_seqcheck_init(&check, COUNT);
  check_messages(numbers, &check);
  char report[256];
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s",
               sl_seqcheck_report(&check, report, sizeof report));
  sl_seqcheck_destroy(&check);
  cr_assert_eq(stop_sluice(pid), 0, "%s", log_text("tls.log"));
  cr_assert(strstr(log_text("tls.log"), "connected to mqtts://127.0.0.1:"), "%s",
            log_text("tls.log"));
}

/* ---- reliability ------------------------------------------------------------------------ */

/* Reads what the FIFO holds into buffers[0]; false at end of input (no writer left). */
static bool drain_fifo(int fd, size_t *len, size_t *cap, size_t max_bytes) {
  if (*len + max_bytes + 1 > *cap) {
    *cap = (*len + max_bytes + 1) * 2;
    buffers[0] = realloc(buffers[0], *cap);
    cr_assert_not_null(buffers[0]);
  }
  ssize_t n = read(fd, buffers[0] + *len, max_bytes);
  if (n > 0) *len += (size_t)n;
  buffers[0][*len] = '\0';
  return n != 0;
}

/* Feeds the complete lines in buffers[0] from *fed on to `check`. */
static void feed_lines(sl_seqcheck *check, size_t len, size_t *fed) {
  for (;;) {
    char *end = memchr(buffers[0] + *fed, '\n', len - *fed);
    if (!end) return;
    sl_seqcheck_add(check, buffers[0] + *fed, (size_t)(end - (buffers[0] + *fed)));
    *fed = (size_t)(end - buffers[0]) + 1;
  }
}

/*
 * The file sink writes to a FIFO that the test reads at its own pace, so the pipeline
 * (and with it the PUBACKs) waits for the test: the kill lands while messages are in
 * flight, whatever the speed of the machine. What the sink wrote before the kill is
 * still in the pipe. Half of the numbers are published while the host is dead: the
 * broker keeps them for its session.
 */
Test(reliability, mqtt_qos1_host_killed_mid_stream_then_restarted_loses_nothing, .init = setup,
     .fini = teardown, .timeout = 300) {
  set_name("kill");
  uint64_t count = sl_reliability_count(3000, 30000);
  char fifo[128];
  in_folder(fifo, "out.fifo");
  cr_assert_eq(mkfifo(fifo, 0644), 0);
  int fd = open(fifo, O_RDONLY | O_NONBLOCK); /* before sluice: its open does not wait */
  cr_assert_geq(fd, 0);
  /* Padded to about 200 bytes, so that the pipe (64 KiB) holds about 300 numbers. */
  const char *pipeline = write_pipeline("batch_size: 100\n"
                                        "nodes:\n"
                                        "  - id: in\n"
                                        "    type: mqtt\n"
                                        "    url: %s\n"
                                        "    topics: numbers\n"
                                        "  - id: pass\n"
                                        "    type: wasm\n"
                                        "    module: %s\n"
                                        "    inputs: [in]\n"
                                        "  - id: out\n"
                                        "    type: file\n"
                                        "    path: out.fifo\n"
                                        "    inputs: [pass]\n",
                                        server.url, example_path("passthrough"));
  pid_t pid = start_sluice(pipeline, "run1.log");
  cr_assert(wait_log("run1.log", "subscribed to numbers at QoS 1", 1, WAIT_MS), "%s",
            log_text("run1.log"));

  test_client *in = client_new(NULL, NULL, 1, server.port);
  char payload[256];
  for (uint64_t n = 1; n <= count / 2; n++) {
    snprintf(payload, sizeof payload, "%llu %0200d", (unsigned long long)n, 0);
    publish(in, "numbers", payload, 1, false);
  }
  published_all(in);

  /* Run 1: read until a sixth of the numbers came out, then kill -9. */
  sl_seqcheck check;
  sl_seqcheck_init(&check, count);
  size_t len = 0, cap = 0, fed = 0;
  for (uint64_t deadline = now_ms() + 60000; check.received < count / 6;) {
    cr_assert_lt(now_ms(), deadline, "too slow: %s", log_text("run1.log"));
    sleep_ms(1); /* about 4 MB/s: slower than the pipeline, so the pipe stays full */
    drain_fifo(fd, &len, &cap, 4096);
    feed_lines(&check, len, &fed);
  }
  cr_assert_eq(kill(pid, SIGKILL), 0);
  cr_assert_eq(wait_sluice(pid), -1);
  while (drain_fifo(fd, &len, &cap, 1 << 16)) continue;
  feed_lines(&check, len, &fed);
  uint64_t before_restart = check.received;
  cr_assert_lt(before_restart, count / 2, "the kill did not land mid-stream");

  /* The rest while the host is dead. */
  for (uint64_t n = count / 2 + 1; n <= count; n++) {
    snprintf(payload, sizeof payload, "%llu %0200d", (unsigned long long)n, 0);
    publish(in, "numbers", payload, 1, false);
  }
  published_all(in);

  /* Run 2: until every number came out. */
  pid = start_sluice(pipeline, "run2.log");
  for (uint64_t deadline = now_ms() + 60000; sl_seqcheck_missing(&check) > 0;) {
    cr_assert_lt(now_ms(), deadline, "run 2 did not deliver everything in 60 s: %s",
                 log_text("run2.log"));
    size_t before = len;
    drain_fifo(fd, &len, &cap, 1 << 16);
    feed_lines(&check, len, &fed);
    if (len == before) sleep_ms(1);
  }
  cr_assert_eq(stop_sluice(pid), 0, "%s", log_text("run2.log"));
  while (drain_fifo(fd, &len, &cap, 1 << 16)) continue;
  feed_lines(&check, len, &fed);
  close(fd);

  char report[256];
  sl_seqcheck_report(&check, report, sizeof report);
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "%s", report);
  cr_assert_eq(check.unparsable + check.out_of_range, 0, "%s", report);
  cr_log_info("mqtt kill -9 after %llu numbers: %s", (unsigned long long)before_restart, report);
  fprintf(stderr, "mqtt: kill -9 after %llu of %llu numbers came out; %s\n",
          (unsigned long long)before_restart, (unsigned long long)count, report);
  sl_seqcheck_destroy(&check);
}
