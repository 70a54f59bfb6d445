/*
 * Per-node stats of a running pipeline: counters, latency histograms for processors and
 * sinks, pool counters summed over workers, queue depth behind a sink that cannot keep
 * up, and the quantile estimate on histograms built by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_fixture.h"

Test(latency_quantile, empty_histogram_is_zero) {
  uint64_t buckets[SL_LATENCY_BUCKETS] = {0};
  cr_assert_eq(sl_latency_quantile(buckets, 0.5), 0);
  cr_assert_eq(sl_latency_quantile(buckets, 0.99), 0);
}

Test(latency_quantile, interpolates_inside_the_bucket) {
  uint64_t buckets[SL_LATENCY_BUCKETS] = {0};
  buckets[10] = 100; /* [1024, 2048) ns */
  cr_assert_eq(sl_latency_quantile(buckets, 0.5), 1536);
  cr_assert_eq(sl_latency_quantile(buckets, 0), 1024, "q = 0: the lowest bucket's lower bound");
  cr_assert_eq(sl_latency_quantile(buckets, 1), 2048, "q = 1: the highest bucket's upper bound");
  cr_assert_eq(sl_latency_quantile(buckets, 7), 2048, "q above 1 counts as 1");
  cr_assert_eq(sl_latency_quantile(buckets, -1), 1024, "q below 0 counts as 0");
}

Test(latency_quantile, finds_the_bucket_of_the_rank) {
  uint64_t buckets[SL_LATENCY_BUCKETS] = {0};
  buckets[3] = 90;  /* [8, 16) ns */
  buckets[20] = 10; /* [1 Mi, 2 Mi) ns */
  cr_assert_eq(sl_latency_quantile(buckets, 0.5), 12, "8 + 8 * 50/90, rounded down");
  cr_assert_eq(sl_latency_quantile(buckets, 0.8), 15, "8 + 8 * 80/90, rounded down");
  /* Rank 99 is the 9th of bucket 20's 10 samples: 2^20 + 0.9 * 2^20 (give or take the
   * rounding of 0.99 * 100). */
  uint64_t p99 = sl_latency_quantile(buckets, 0.99);
  cr_assert(p99 >= 1992293 && p99 <= 1992295, "p99 = %llu", (unsigned long long)p99);
}

Test(latency_quantile, first_and_last_buckets) {
  uint64_t buckets[SL_LATENCY_BUCKETS] = {0};
  buckets[0] = 4; /* 0 and 1 ns */
  cr_assert_eq(sl_latency_quantile(buckets, 0.5), 1);
  buckets[0] = 0;
  buckets[SL_LATENCY_BUCKETS - 1] = 3; /* 2^39 ns and more: no upper bound */
  cr_assert_eq(sl_latency_quantile(buckets, 0.99), (uint64_t)1 << (SL_LATENCY_BUCKETS - 1));
}

Test(node_stats, unknown_node) {
  test_run run;
  run_new(&run,
          "name: stats-unknown\n"
          "nodes:\n"
          "  - {id: gen, type: generate, count: 1}\n"
          "  - {id: out, type: null, inputs: [gen]}\n",
          NULL);
  sl_node_stats stats;
  cr_assert_not(sl_pipeline_node_stats(run.pipeline, "nope", &stats));
  run_free(&run);
}

Test(node_stats, processor_and_sink_counters_and_histograms) {
  char *yaml = format("name: stats\n"
                      "workers: 2\n"
                      "batch_size: 100\n"
                      "nodes:\n"
                      "  - {id: gen, type: generate, count: 2000}\n"
                      "  - id: up\n"
                      "    type: wasm\n"
                      "    module: %s\n"
                      "    recycle_calls: 300\n"
                      "    inputs: [gen]\n"
                      "  - {id: out, type: null, inputs: [up]}\n",
                      guest_path("echo"));
  test_run run;
  run_new(&run, yaml, NULL);
  /* Before any event: each worker's pool already holds its first instance. */
  sl_node_stats up = stats_of(&run, "up");
  cr_assert_eq(up.instances, 2, "one warm instance per worker, got %llu",
               (unsigned long long)up.instances);
  cr_assert_geq(up.memory_bytes, 2 * 65536, "echo has one 64 KiB page per instance");
  cr_assert_eq(histogram_count(up.latency), 0);

  run_start(&run);
  run_wait(&run);

  up = stats_of(&run, "up");
  cr_assert_eq(up.events_in, 2000);
  cr_assert_eq(up.events_out, 2000);
  cr_assert_eq(up.errors, 0);
  cr_assert_eq(histogram_count(up.latency), up.batches,
               "one latency sample per batch: %llu samples, %llu batches",
               (unsigned long long)histogram_count(up.latency), (unsigned long long)up.batches);
  cr_assert_gt(sl_latency_quantile(up.latency, 0.5), 0);
  /* One source: every batch ran on one worker, which recycled after calls 300, 600, ...,
   * 1800 and started a fresh instance for call 1801. */
  cr_assert_eq(up.recycles, 6, "recycles: %llu", (unsigned long long)up.recycles);
  cr_assert_eq(up.instances, 2);
  cr_assert_geq(up.memory_bytes, 2 * 65536);
  cr_assert_eq(up.queue_depth, 0);

  sl_node_stats out = stats_of(&run, "out");
  cr_assert_eq(out.events_in, 2000);
  cr_assert_eq(out.events_out, 2000);
  cr_assert_gt(out.batches, 0);
  cr_assert_eq(histogram_count(out.latency), out.batches, "one sample per written batch");
  cr_assert_eq(out.queue_depth, 0, "everything was written");
  cr_assert_eq(out.instances + out.recycles + out.memory_bytes, 0, "processors only");

  sl_node_stats gen = stats_of(&run, "gen");
  cr_assert_eq(gen.events_out, 2000);
  cr_assert_eq(gen.queue_depth, 0, "every event was acknowledged");
  cr_assert_eq(histogram_count(gen.latency), 0, "sources have no latency");
  cr_assert_eq(gen.instances, 0);
  run_free(&run);
  free(yaml);
}

/* Reads from `fd` until `lines` newlines arrived (or 20 s passed); returns the count. */
static size_t read_lines(int fd, size_t lines) {
  char buf[65536];
  size_t seen = 0;
  time_t give_up = time(NULL) + 20;
  while (seen < lines && time(NULL) < give_up) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) {
      sleep_ms(1);
      continue;
    }
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) seen += buf[i] == '\n';
  }
  return seen;
}

/* A file sink writing into a FIFO nobody reads blocks in write(2): a real slow sink. */
Test(node_stats, queue_depth_behind_a_slow_sink) {
  char dir[] = "/tmp/sluice-stats-XXXXXX", fifo[64];
  cr_assert(mkdtemp(dir));
  snprintf(fifo, sizeof fifo, "%s/out.fifo", dir);
  cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
  /* A reader must exist before the sink opens the FIFO, or its open would block. */
  int reader = open(fifo, O_RDONLY | O_NONBLOCK);
  cr_assert_geq(reader, 0);
  char *yaml = format("name: slow-sink\n"
                      "workers: 1\n"
                      "batch_size: 100\n"
                      "max_in_flight: 5000\n"
                      "nodes:\n"
                      "  - id: gen\n"
                      "    type: generate\n"
                      "    count: 20000\n"
                      "    payload: '{{seq}} a line long enough to fill the pipe quickly ......'\n"
                      "  - {id: out, type: file, path: %s, inputs: [gen]}\n",
                      fifo);
  test_run run;
  run_new(&run, yaml, NULL);
  run_start(&run);
  sl_node_stats out = {0}, gen = {0};
  for (int i = 0; i < 500; i++) {
    out = stats_of(&run, "out");
    gen = stats_of(&run, "gen");
    if (out.queue_depth >= 2 && gen.queue_depth > 0) break;
    sleep_ms(10);
  }
  cr_assert_geq(out.queue_depth, 2, "batches wait behind the blocked write: %llu",
                (unsigned long long)out.queue_depth);
  cr_assert_gt(gen.queue_depth, 0, "the source has events in flight");
  cr_assert_leq(gen.queue_depth, 5000 + 100, "bounded by max_in_flight (plus one batch)");
  sleep_ms(20); /* the blocked write now takes at least this long */

  cr_assert_eq(read_lines(reader, 20000), 20000);
  run_wait(&run);
  out = stats_of(&run, "out");
  gen = stats_of(&run, "gen");
  cr_assert_eq(out.events_in, 20000);
  cr_assert_eq(out.queue_depth, 0);
  cr_assert_eq(gen.queue_depth, 0);
  cr_assert_eq(histogram_count(out.latency), out.batches);
  cr_assert_geq(sl_latency_quantile(out.latency, 1.0), 10 * 1000 * 1000,
                "the slowest write waited for the reader: %llu ns",
                (unsigned long long)sl_latency_quantile(out.latency, 1.0));
  run_free(&run);
  close(reader);
  unlink(fifo);
  rmdir(dir);
  free(yaml);
}
