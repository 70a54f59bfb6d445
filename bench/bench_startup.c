/*
 * bench_startup.c - what it costs to get a processor running: instantiating a module,
 * compiling one from scratch, and loading one that is already in the cache.
 *
 *   instantiation  sl_pool_new + sl_pool_destroy of the passthrough guest: reserve and
 *                  commit linear memory, instantiate, tear down (the guest has no init;
 *                  a note gives the same for stats.wasm, which runs _initialize and init).
 *   cold compile   sl_module_load_file of guests/stats.wasm (a ~50 KB wasi-libc processor)
 *                  with an empty SLUICE_HOME: validate, wasm2c, instrument, cc, store, load.
 *   cached load    the same call again with the same SLUICE_HOME: hash, verify the
 *                  artifact's MAC, dlopen.
 *
 * The split of the cold compile into wasm2c and cc is measured by running wasm2c alone on
 * the same module, and shown as a note.
 */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

#define INSTANTIATE_TARGET_US 50.0
#define COLD_TARGET_MS 1000.0
#define CACHED_TARGET_MS 10.0

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static double instantiate_us(sl_module *module, const sl_pool_options *options, int count) {
  sl_fault fault;
  uint64_t start = bench_now_ns();
  for (int i = 0; i < count; i++) {
    sl_pool *pool = NULL;
    if (sl_pool_new(module, options, &pool, &fault) != SL_OK)
      bench_die("instantiation failed: %s", fault.message);
    sl_pool_destroy(pool);
  }
  return (double)(bench_now_ns() - start) / 1e3 / count;
}

static void bench_instantiation(const bench_config *config, sl_engine *engine) {
  char path[4096];
  bench_guest_path(config, "passthrough.wasm", path, sizeof path);
  sl_module *small = bench_load(engine, path, NULL);
  bench_guest_path(config, "stats.wasm", path, sizeof path);
  sl_module *stats = bench_load(engine, path, NULL);
  sl_pool_options small_options = {.node_id = "passthrough"};
  /* stats.wasm prints a line from init; bench_main.c's log callback drops this node's lines. */
  sl_pool_options stats_options = {.node_id = "bench-quiet"};
  int count = config->quick ? 200 : 2000;

  instantiate_us(small, &small_options, count / 10);
  instantiate_us(stats, &stats_options, count / 100);
  double small_us[64], stats_us[64];
  int runs = config->repeats < 64 ? config->repeats : 64;
  for (int r = 0; r < runs; r++) {
    small_us[r] = instantiate_us(small, &small_options, count);
    stats_us[r] = instantiate_us(stats, &stats_options, count / 10);
  }
  double us = bench_median(small_us, (size_t)runs);

  bench_row row = {.name = "instantiate (pool new + destroy)", .value = us, .unit = "us",
                   .ratio = NAN, .goal = BENCH_BELOW, .target = INSTANTIATE_TARGET_US,
                   .target_text = "< 50 us"};
  snprintf(row.baseline, sizeof row.baseline, "-");
  bench_report(&row);
  bench_note("instantiate: passthrough.wat (1 page of memory, no init export), %d pools per "
             "run; stats.wasm (wasi-libc: _initialize, init with printf) takes %.1f us",
             count, bench_median(stats_us, (size_t)runs));

  sl_module_release(stats);
  sl_module_release(small);
}

/* Runs wasm2c alone on `wasm` into `dir`; returns its wall time in ms and the size of
 * the C it wrote. */
static double wasm2c_alone_ms(const char *wasm, const char *dir, long *c_bytes) {
  char c_path[4096 + 16], command[2 * 4096 + 64];
  snprintf(c_path, sizeof c_path, "%s/guest.c", dir);
  snprintf(command, sizeof command, "wasm2c --no-debug-names -n guest -o '%s' '%s'", c_path, wasm);
  uint64_t start = bench_now_ns();
  if (system(command) != 0) bench_die("wasm2c failed: %s", command);
  double ms = (double)(bench_now_ns() - start) / 1e6;
  struct stat st;
  long total = 0;
  if (stat(c_path, &st) == 0) total += (long)st.st_size;
  snprintf(c_path, sizeof c_path, "%s/guest.h", dir);
  if (stat(c_path, &st) == 0) total += (long)st.st_size;
  *c_bytes = total;
  return ms;
}

static double load_ms(sl_engine *engine, const char *path, bool expect_cached) {
  sl_compile_info info;
  uint64_t start = bench_now_ns();
  sl_module *module = bench_load(engine, path, &info);
  double ms = (double)(bench_now_ns() - start) / 1e6;
  if (info.cached != expect_cached)
    bench_die("%s: expected a %s load", path, expect_cached ? "cached" : "cold");
  sl_module_release(module);
  return ms;
}

static void bench_compile(const bench_config *config) {
  char path[4096], home[4096];
  bench_guest_path(config, "stats.wasm", path, sizeof path);
  struct stat st;
  if (stat(path, &st) != 0) bench_die("%s: missing", path);
  int cold_runs = config->quick ? 1 : 5, cached_per_run = 10;
  double cold[8], cached[8 * 10], split_ms[8];
  long c_bytes = 0;
  for (int r = 0; r < cold_runs; r++) {
    snprintf(home, sizeof home, "%s/cold-home-XXXXXX", config->guests);
    if (!mkdtemp(home)) bench_die("cannot create a temporary SLUICE_HOME under %s", config->guests);
    sl_engine_options options = {.home = home, .cflags = config->cflags};
    sl_engine *engine = NULL;
    sl_error err;
    if (sl_engine_new(&options, &engine, &err) != SL_OK) bench_die("%s", err.message);
    cold[r] = load_ms(engine, path, false);
    for (int i = 0; i < cached_per_run; i++)
      cached[r * cached_per_run + i] = load_ms(engine, path, true);
    split_ms[r] = wasm2c_alone_ms(path, home, &c_bytes);
    sl_engine_destroy(engine);
    nftw(home, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  }
  double cold_ms = bench_median(cold, (size_t)cold_runs);
  double cached_ms = bench_median(cached, (size_t)(cold_runs * cached_per_run));
  double wasm2c_ms = bench_median(split_ms, (size_t)cold_runs);

  bench_row row = {.value = cold_ms, .unit = "ms", .ratio = NAN, .goal = BENCH_BELOW,
                   .target = COLD_TARGET_MS, .target_text = "< 1000 ms"};
  snprintf(row.name, sizeof row.name, "cold compile (%.1f KB module)", (double)st.st_size / 1000);
  snprintf(row.baseline, sizeof row.baseline, "wasm2c alone %.0f ms", wasm2c_ms);
  bench_report(&row);

  row = (bench_row){.name = "cached load (same module)", .value = cached_ms, .unit = "ms",
                    .ratio = NAN, .goal = BENCH_BELOW,
                    .target = CACHED_TARGET_MS, .target_text = "< 10 ms"};
  snprintf(row.baseline, sizeof row.baseline, "cold %.0f ms", cold_ms);
  bench_report(&row);
  bench_note("compile: stats.wasm is %lld bytes; wasm2c writes %ld bytes of C for it; %d cold "
             "runs in fresh SLUICE_HOMEs, %d cached loads each",
             (long long)st.st_size, c_bytes, cold_runs, cached_per_run);
}

void bench_startup(const bench_config *config, sl_engine *engine) {
  bench_instantiation(config, engine);
  bench_compile(config);
}
