/*
 * js_bench.c - the JetStream benchmark's tools (bench/brokers/run.sh drives them):
 *
 *   js_bench setup URL            recreate streams BENCH_IN (bench.in) and BENCH_OUT (bench.out)
 *   js_bench load URL N SIZE      publish N messages of SIZE bytes to bench.in, acked
 *   js_bench native URL N BATCH   the baseline: what Sluice does, without Sluice. Pull
 *                                 BATCH at a time from BENCH_IN, publish each to
 *                                 bench.out, wait for every publish ack, then ack the
 *                                 inputs (the same at-least-once order Sluice keeps)
 *   js_bench wait URL N           poll BENCH_OUT until it holds N messages
 *
 * `native` and `wait` print "seconds=S events_per_sec=R". Plain nats.c, gcc -O2.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(natsStatus s, const char *what) {
  if (s == NATS_OK) return;
  fprintf(stderr, "js_bench: %s: %s\n", what, natsStatus_GetText(s));
  nats_PrintLastErrorStack(stderr);
  exit(1);
}

static jsCtx *connect_js(const char *url, natsConnection **nc) {
  check(natsConnection_ConnectTo(nc, url), "connect");
  jsOptions o;
  jsOptions_Init(&o);
  o.PublishAsync.MaxPending = 4096;
  jsCtx *js;
  check(natsConnection_JetStream(&js, *nc, &o), "jetstream context");
  return js;
}

static void recreate(jsCtx *js, const char *name, const char *subject) {
  jsErrCode jerr = 0;
  js_DeleteStream(js, name, NULL, &jerr); /* absent the first time */
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char *subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo *si = NULL;
  check(js_AddStream(&si, js, &cfg, NULL, &jerr), "add stream");
  jsStreamInfo_Destroy(si);
}

static uint64_t stream_count(jsCtx *js, const char *name) {
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  check(js_GetStreamInfo(&si, js, name, NULL, &jerr), "stream info");
  uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

static void load(jsCtx *js, long n, int size) {
  char *payload = malloc((size_t)size + 32);
  for (long i = 1; i <= n; i++) {
    int len = snprintf(payload, (size_t)size + 32, "%ld ", i);
    while (len < size) payload[len++] = 'x';
    check(js_PublishAsync(js, "bench.in", payload, len, NULL), "publish");
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  check(js_PublishAsyncComplete(js, &po), "publish acks");
  free(payload);
}

static void native(jsCtx *js, long n, int batch) {
  jsErrCode jerr = 0;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "BENCH_IN";
  /* The server's default (1000) would stall fetches of more; Sluice's consumer uses
   * 20000 (the jetstream source's max_ack_pending). */
  so.Config.MaxAckPending = 20000;
  natsSubscription *sub = NULL;
  check(js_PullSubscribe(&sub, js, "bench.in", "native", NULL, &so, &jerr), "pull subscribe");
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  long done = 0;
  double start = now_s();
  while (done < n) {
    natsMsgList list = {0};
    natsStatus s = natsSubscription_Fetch(&list, sub, batch, 1000, &jerr);
    if (s == NATS_TIMEOUT) continue;
    check(s, "fetch");
    for (int i = 0; i < list.Count; i++)
      check(js_PublishAsync(js, "bench.out", natsMsg_GetData(list.Msgs[i]),
                            natsMsg_GetDataLength(list.Msgs[i]), NULL),
            "publish");
    check(js_PublishAsyncComplete(js, &po), "publish acks");
    for (int i = 0; i < list.Count; i++) check(natsMsg_Ack(list.Msgs[i], NULL), "ack");
    done += list.Count;
    natsMsgList_Destroy(&list);
  }
  double took = now_s() - start;
  printf("seconds=%.3f events_per_sec=%.0f\n", took, (double)n / took);
  natsSubscription_Destroy(sub);
}

static void wait_for(jsCtx *js, long n) {
  double start = now_s();
  while (stream_count(js, "BENCH_OUT") < (uint64_t)n) nats_Sleep(2);
  double took = now_s() - start;
  printf("seconds=%.3f events_per_sec=%.0f\n", took, (double)n / took);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: js_bench setup|load|native|wait URL ...\n");
    return 2;
  }
  natsConnection *nc = NULL;
  jsCtx *js = connect_js(argv[2], &nc);
  const char *mode = argv[1];
  if (strcmp(mode, "setup") == 0) {
    recreate(js, "BENCH_IN", "bench.in");
    recreate(js, "BENCH_OUT", "bench.out");
  } else if (strcmp(mode, "load") == 0 && argc == 5) {
    load(js, atol(argv[3]), atoi(argv[4]));
  } else if (strcmp(mode, "native") == 0 && argc == 5) {
    native(js, atol(argv[3]), atoi(argv[4]));
  } else if (strcmp(mode, "wait") == 0 && argc == 4) {
    wait_for(js, atol(argv[3]));
  } else {
    fprintf(stderr, "js_bench: bad arguments for %s\n", mode);
    return 2;
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return 0;
}
