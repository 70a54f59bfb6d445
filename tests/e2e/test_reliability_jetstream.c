/*
 * Proof of JetStream's at-least-once delivery through Sluice (issue 5): numbered events
 * go into a stream on one nats-server, through `sluice run` (jetstream -> passthrough.wasm
 * -> jetstream) into a stream on another, while the host is killed with SIGKILL at
 * random moments and restarted, or while the sink's server is killed and restarted.
 * The checker then reads every message of the output stream: nothing may be missing.
 *
 * The sink sets Nats-Msg-Id from the input's stream sequence, so the output server's
 * duplicate window removes what a restarted host delivers again; duplicates that still
 * get through are counted and must stay within the in-flight window.
 *
 * CI runs 20 kills; `make reliability` (SLUICE_RELIABILITY=full) runs 100.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../support/e2e.h"
#include "../support/seqcheck.h"
#include "../support/servers.h"

#define RATE_PER_S 5000
#define MAX_IN_FLIGHT 2000 /* the pipeline's max_in_flight below */

typedef struct js_peer {
  natsConnection *nc;
  jsCtx *js;
} js_peer;

static void peer_connect(js_peer *peer, const char *url) {
  cr_assert_eq(natsConnection_ConnectTo(&peer->nc, url), NATS_OK, "connect %s", url);
  jsOptions o;
  jsOptions_Init(&o);
  o.PublishAsync.MaxPending = 1000;
  cr_assert_eq(natsConnection_JetStream(&peer->js, peer->nc, &o), NATS_OK);
}

static void peer_close(js_peer *peer) {
  jsCtx_Destroy(peer->js);
  natsConnection_Destroy(peer->nc);
}

static void add_stream(js_peer *peer, const char *name, const char *subject) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char *subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  cr_assert_eq(js_AddStream(&si, peer->js, &cfg, NULL, &jerr), NATS_OK, "add stream %s (%d)", name,
               (int)jerr);
  jsStreamInfo_Destroy(si);
}

static uint64_t stream_count(js_peer *peer, const char *name) {
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  if (js_GetStreamInfo(&si, peer->js, name, NULL, &jerr) != NATS_OK) return 0;
  uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

/* --- the numbered producer ----------------------------------------------------------- */

typedef struct producer {
  js_peer peer;
  pthread_t thread;
  atomic_bool stop;
  uint64_t produced; /* acknowledged by the server; read after join */
  natsStatus failed; /* the first publish error; asserted on the test's thread */
} producer;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Publishes 1, 2, 3... at RATE_PER_S in bursts every 10 ms, waiting for each burst's
 * acknowledgements, until told to stop. */
static void *produce(void *arg) {
  producer *p = arg;
  uint64_t start = now_ms(), n = 0;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 10000;
  while (!atomic_load(&p->stop)) {
    uint64_t due = (now_ms() - start) * RATE_PER_S / 1000;
    for (; n < due; n++) {
      char payload[32];
      int len = snprintf(payload, sizeof payload, "%llu", (unsigned long long)n + 1);
      natsStatus s = js_PublishAsync(p->peer.js, "rel.in", payload, len, NULL);
      if (s != NATS_OK) p->failed = s;
    }
    natsStatus s = js_PublishAsyncComplete(p->peer.js, &po);
    if (s != NATS_OK) p->failed = s;
    if (p->failed) break;
    usleep(10 * 1000);
  }
  p->produced = n;
  return NULL;
}

static void producer_start(producer *p, const char *url) {
  memset(p, 0, sizeof *p);
  peer_connect(&p->peer, url);
  cr_assert_eq(pthread_create(&p->thread, NULL, produce, p), 0);
}

static uint64_t producer_stop(producer *p) {
  atomic_store(&p->stop, true);
  pthread_join(p->thread, NULL);
  peer_close(&p->peer);
  cr_assert_eq(p->failed, NATS_OK, "publishing the input: %s", natsStatus_GetText(p->failed));
  return p->produced;
}

/* --- reading the output back --------------------------------------------------------- */

/* Waits (up to `timeout_ms`) until OUT holds at least `expected` messages, then feeds
 * every message in it to a checker. */
static void check_output(js_peer *out, uint64_t expected, int timeout_ms, sl_seqcheck *check) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  while (stream_count(out, "OUT") < expected && now_ms() < deadline) usleep(50 * 1000);
  uint64_t stored = stream_count(out, "OUT");
  sl_seqcheck_init(check, expected);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "OUT";
  so.Config.AckPolicy = js_AckNone;
  so.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription *sub = NULL;
  jsErrCode jerr = 0;
  cr_assert_eq(js_PullSubscribe(&sub, out->js, "rel.out", "checker", NULL, &so, &jerr), NATS_OK,
               "checker consumer (%d)", (int)jerr);
  uint64_t read = 0;
  while (read < stored) {
    natsMsgList list = {0};
    natsStatus s = natsSubscription_Fetch(&list, sub, 1000, 2000, &jerr);
    if (s == NATS_TIMEOUT) break;
    cr_assert_eq(s, NATS_OK, "fetch from OUT");
    for (int i = 0; i < list.Count; i++)
      sl_seqcheck_add(check, natsMsg_GetData(list.Msgs[i]),
                      (size_t)natsMsg_GetDataLength(list.Msgs[i]));
    read += (uint64_t)list.Count;
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Destroy(sub);
}

/* --- the pipeline under test --------------------------------------------------------- */

static void write_pipeline(const char *dir, const sl_test_server *in, const sl_test_server *out) {
  const char *examples = getenv("SLUICE_EXAMPLES");
  cr_assert(examples, "SLUICE_EXAMPLES is not set: run the tests with `make test`");
  /* ack_wait is short so that what a killed host held is delivered again within the
   * test's patience; the consumer is created by the first run and kept by the rest. */
  e2e_write(dir, "p.yaml",
            "name: reliability\n"
            "max_in_flight: %d\n"
            "nodes:\n"
            "  - {id: in, type: jetstream, url: '%s', stream: IN, durable: rel, ack_wait: 2s}\n"
            "  - {id: pass, type: wasm, module: %s/passthrough.wasm, inputs: [in]}\n"
            "  - {id: out, type: jetstream, url: '%s', subject: rel.out,\n"
            "     msg_id: '{{meta.stream_seq}}', inputs: [pass]}\n",
            MAX_IN_FLIGHT, in->url, examples, out->url);
}

static void setup(sl_test_server *in, sl_test_server *out, js_peer *in_peer, js_peer *out_peer) {
  cr_assert(sl_test_server_start(in, SL_TEST_NATS));
  cr_assert(sl_test_server_start(out, SL_TEST_NATS));
  peer_connect(in_peer, in->url);
  peer_connect(out_peer, out->url);
  add_stream(in_peer, "IN", "rel.in");
  add_stream(out_peer, "OUT", "rel.out");
}

static void report(const char *what, const sl_seqcheck *check) {
  char line[512];
  fprintf(stderr, "%s: %s\n", what, sl_seqcheck_report(check, line, sizeof line));
}

Test(reliability, jetstream_kill_9_at_random_moments_loses_nothing, .timeout = 900) {
  sl_test_server in, out;
  js_peer in_peer, out_peer;
  setup(&in, &out, &in_peer, &out_peer);
  char *dir = e2e_tmpdir();
  write_pipeline(dir, &in, &out);

  unsigned kills = (unsigned)sl_reliability_count(20, 100);
  unsigned seed = (unsigned)time(NULL);
  fprintf(stderr, "jetstream kill -9: %u kills, seed %u\n", kills, seed);
  srand(seed);
  producer p;
  producer_start(&p, in.url);
  for (unsigned k = 0; k < kills; k++) {
    pid_t host = e2e_run_child(dir, "p.yaml", NULL, "host.log");
    usleep((useconds_t)(150 + rand() % 450) * 1000); /* a random moment mid-stream */
    cr_assert_eq(kill(host, SIGKILL), 0);
    int sig = 0;
    e2e_wait(host, &sig);
    char err_path[256];
    snprintf(err_path, sizeof err_path, "%s/host.log", dir);
    cr_assert_eq(sig, SIGKILL, "run %u ended before it was killed: %s", k, e2e_read(err_path));
  }
  uint64_t produced = producer_stop(&p);
  cr_assert_gt(produced, 1000u);

  /* One last run delivers what is left, including what the last kill left unacked. */
  pid_t host = e2e_run_child(dir, "p.yaml", NULL, "host.log");
  sl_seqcheck check;
  check_output(&out_peer, produced, 60000, &check);
  kill(host, SIGTERM);
  e2e_wait(host, NULL);
  report("jetstream kill -9", &check);
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "events lost");
  cr_assert_eq(check.unparsable + check.out_of_range, 0);
  cr_assert_leq(check.duplicates, (uint64_t)kills * MAX_IN_FLIGHT,
                "duplicates beyond the in-flight window");

  sl_seqcheck_destroy(&check);
  peer_close(&in_peer);
  peer_close(&out_peer);
  sl_test_server_stop(&in);
  sl_test_server_stop(&out);
  e2e_rmdir(dir);
}

Test(reliability, jetstream_sink_server_restarted_mid_stream_loses_nothing, .timeout = 300) {
  sl_test_server in, out;
  js_peer in_peer, out_peer;
  setup(&in, &out, &in_peer, &out_peer);
  char *dir = e2e_tmpdir();
  write_pipeline(dir, &in, &out);

  producer p;
  producer_start(&p, in.url);
  pid_t host = e2e_run_child(dir, "p.yaml", NULL, "host.log");
  /* Let events flow, then take the output server away for a second and bring it back
   * with its data; the sink retries and the source holds what was not accepted. */
  uint64_t deadline = now_ms() + 10000;
  while (stream_count(&out_peer, "OUT") < 2000 && now_ms() < deadline) usleep(20 * 1000);
  cr_assert_geq(stream_count(&out_peer, "OUT"), 2000u, "events flow before the restart");
  peer_close(&out_peer);
  sl_test_server_kill(&out);
  usleep(1000 * 1000);
  cr_assert(sl_test_server_restart(&out));
  peer_connect(&out_peer, out.url);
  usleep(1000 * 1000);
  uint64_t produced = producer_stop(&p);

  sl_seqcheck check;
  check_output(&out_peer, produced, 60000, &check);
  cr_assert_eq(kill(host, 0), 0, "the host survived its sink's server going away");
  kill(host, SIGTERM);
  cr_assert_eq(e2e_wait(host, NULL), 0, "clean exit after SIGTERM");
  report("jetstream sink server restart", &check);
  cr_assert_eq(sl_seqcheck_missing(&check), 0, "events lost");
  cr_assert_eq(check.unparsable + check.out_of_range, 0);

  sl_seqcheck_destroy(&check);
  peer_close(&in_peer);
  peer_close(&out_peer);
  sl_test_server_stop(&in);
  sl_test_server_stop(&out);
  e2e_rmdir(dir);
}
