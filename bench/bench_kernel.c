/*
 * bench_kernel.c - compute-bound guests: the string kernel (kernel.c) run three ways, and
 * what Sluice's interruption checks cost.
 *
 *   native     kernel.c compiled by gcc -O2 into this program
 *   sluice     the same file compiled to guests/kernel.wasm, run through sl_pool_process
 *   unchecked  the same .wasm from an engine with `no_interrupt_checks`
 *   v8         the same .wasm in node (v8_kernel.mjs), after V8 has tiered it up
 *
 * One kernel call runs K passes over the guest's own 1 MiB buffers and returns an 8-byte
 * checksum, so the canonical-ABI copies are negligible. Every runner's checksum must
 * match the native one, so all of them provably did the same work.
 *
 * The checks sit at loop headers (a load and a branch) and function entries (a stack
 * pointer compare). The kernel exercises the first; guests/calls_guest.c (recursive
 * fib) the second. Both are measured with and without checks, interleaved.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "kernel.h"

#define FIB_N 36

static uint8_t source[KERNEL_BUFFER_BYTES];
static uint8_t output[KERNEL_BUFFER_BYTES];

static double gb_per_s(unsigned passes, double seconds) {
  return (double)passes * KERNEL_BUFFER_BYTES / seconds / 1e9;
}

static double time_native(unsigned passes, char checksum[17]) {
  uint64_t start = bench_now_ns();
  for (unsigned p = 0; p < passes; p++) kernel_upper(output, source, sizeof output);
  double seconds = (double)(bench_now_ns() - start) / 1e9;
  snprintf(checksum, 17, "%016" PRIx64, kernel_sample(output, sizeof output));
  return seconds;
}

/* The same recursion as guests/calls_guest.c, for its expected result. */
static uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* One call with payload `input`; the single output payload must equal `expected`.
 * Returns the call's wall time in seconds. */
static double time_call(sl_pool *pool, const char *input, const char *expected, const char *who) {
  sl_event in = {sl_bytes_from_cstr(input), NULL, 0};
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  uint64_t start = bench_now_ns();
  sl_status status = sl_pool_process(pool, &in, &out, &fault);
  double seconds = (double)(bench_now_ns() - start) / 1e9;
  if (status != SL_OK) bench_die("%s: %s: %s", who, sl_fault_name(fault.kind), fault.message);
  size_t len = strlen(expected);
  if (out.count != 1 || out.items[0].payload.len != len ||
      memcmp(out.items[0].payload.ptr, expected, len) != 0)
    bench_die("%s: the guest's result differs from the native one", who);
  sl_event_list_destroy(&out);
  return seconds;
}

static sl_pool *compute_pool(sl_engine *engine, const bench_config *config, const char *guest,
                             const char *node_id) {
  char path[4096];
  bench_guest_path(config, guest, path, sizeof path);
  sl_module *module = bench_load(engine, path, NULL);
  /* A call runs for up to a few hundred milliseconds, beyond the 100 ms default. */
  sl_pool_options options = {.node_id = node_id, .limits = {.time_ms = 60000}};
  sl_pool *pool = NULL;
  sl_fault fault;
  if (sl_pool_new(module, &options, &pool, &fault) != SL_OK)
    bench_die("%s: %s", node_id, fault.message);
  sl_module_release(module); /* the pool holds its own reference */
  return pool;
}

/* Runs v8_kernel.mjs; returns the median seconds per call of `passes` passes. */
static double time_v8(const bench_config *config, unsigned passes, const char *expected) {
  char path[4096], command[8192 + 512], line[512], checksum[64] = "";
  bench_guest_path(config, "kernel.wasm", path, sizeof path);
  snprintf(command, sizeof command, "'%s' '%s' '%s' %u %d", config->node, config->v8_script, path,
           passes, config->repeats);
  FILE *p = popen(command, "r");
  if (!p) bench_die("cannot run %s", config->node);
  double seconds = NAN;
  while (fgets(line, sizeof line, p))
    if (sscanf(line, "v8 median_seconds=%lf checksum=%63s", &seconds, checksum) == 2) break;
  int status = pclose(p);
  if (status != 0 || isnan(seconds))
    bench_die("node could not run the kernel (exit status %d): %s", status, command);
  if (strcmp(checksum, expected) != 0)
    bench_die("v8: the kernel's checksum %s differs from the native %s", checksum, expected);
  return seconds;
}

static void report_check_cost(const char *name, double checked_s, double unchecked_s,
                              const char *baseline) {
  bench_row row = {.value = (checked_s / unchecked_s - 1) * 100, .unit = "%",
                   .ratio = checked_s / unchecked_s, .goal = BENCH_BELOW, .target = 10,
                   .target_text = "< 10%"};
  snprintf(row.name, sizeof row.name, "%s", name);
  snprintf(row.baseline, sizeof row.baseline, "%s", baseline);
  bench_report(&row);
}

void bench_kernel(const bench_config *config, sl_engine *engine) {
  char checksum[17], input[16];
  unsigned passes = config->quick ? 16 : 128;
  int runs = config->repeats < 64 ? config->repeats : 64;
  kernel_fill(source, sizeof source);

  sl_engine_options unchecked_options = {.home = config->home, .cflags = config->cflags,
                                         .no_interrupt_checks = true};
  sl_engine *unchecked_engine = NULL;
  sl_error err;
  if (sl_engine_new(&unchecked_options, &unchecked_engine, &err) != SL_OK)
    bench_die("%s", err.message);
  sl_pool *checked = compute_pool(engine, config, "kernel.wasm", "kernel");
  sl_pool *unchecked = compute_pool(unchecked_engine, config, "kernel.wasm", "kernel-unchecked");

  /* Warm-up: fills the guests' source buffers and the CPU caches. */
  time_native(passes, checksum);
  snprintf(input, sizeof input, "%u", passes / 4);
  time_native(passes / 4, checksum);
  time_call(checked, input, checksum, "sluice");
  time_call(unchecked, input, checksum, "sluice without checks");

  double native_s[64], checked_s[64], unchecked_s[64];
  snprintf(input, sizeof input, "%u", passes);
  for (int r = 0; r < runs; r++) { /* interleaved, so all three share machine conditions */
    native_s[r] = time_native(passes, checksum);
    checked_s[r] = time_call(checked, input, checksum, "sluice");
    unchecked_s[r] = time_call(unchecked, input, checksum, "sluice without checks");
  }
  double kernel_checked = bench_median(checked_s, (size_t)runs);
  double kernel_unchecked = bench_median(unchecked_s, (size_t)runs);
  double native = gb_per_s(passes, bench_median(native_s, (size_t)runs));
  double sluice = gb_per_s(passes, kernel_checked);
  double sluice_unchecked = gb_per_s(passes, kernel_unchecked);
  double v8 = gb_per_s(passes, time_v8(config, passes, checksum));

  bench_row row = {.name = "upper kernel: Sluice vs native gcc", .value = sluice,
                   .unit = "GB/s", .ratio = sluice / native, .goal = BENCH_AT_LEAST,
                   .target = 0.7, .target_text = ">= 0.7x"};
  snprintf(row.baseline, sizeof row.baseline, "native %.2f GB/s", native);
  bench_report(&row);

  row = (bench_row){.name = "upper kernel: Sluice vs node V8", .value = sluice, .unit = "GB/s",
                    .ratio = sluice / v8, .goal = BENCH_AT_LEAST, .target = 1.0,
                    .target_text = ">= 1.0x"};
  snprintf(row.baseline, sizeof row.baseline, "V8 %.2f GB/s", v8);
  bench_report(&row);

  char baseline[48];
  snprintf(baseline, sizeof baseline, "unchecked %.2f GB/s", sluice_unchecked);
  report_check_cost("interruption checks: loops (kernel)", kernel_checked, kernel_unchecked,
                    baseline);
  bench_note("kernel: %u passes over %u KiB per call; checksum %s identical for native, "
             "Sluice (with and without checks) and V8", passes, KERNEL_BUFFER_BYTES >> 10,
             checksum);
  sl_pool_destroy(checked);
  sl_pool_destroy(unchecked);

  /* The call-heavy guest: every fib call passes a function-entry check. */
  checked = compute_pool(engine, config, "calls.wasm", "calls");
  unchecked = compute_pool(unchecked_engine, config, "calls.wasm", "calls-unchecked");
  unsigned n = config->quick ? FIB_N - 4 : FIB_N;
  char expected[9];
  snprintf(expected, sizeof expected, "%08x", fib(n));
  snprintf(input, sizeof input, "%u", n);
  time_call(checked, input, expected, "calls");
  time_call(unchecked, input, expected, "calls without checks");
  for (int r = 0; r < runs; r++) {
    checked_s[r] = time_call(checked, input, expected, "calls");
    unchecked_s[r] = time_call(unchecked, input, expected, "calls without checks");
  }
  double calls_checked = bench_median(checked_s, (size_t)runs);
  double calls_unchecked = bench_median(unchecked_s, (size_t)runs);
  snprintf(baseline, sizeof baseline, "unchecked %.1f ms", calls_unchecked * 1e3);
  report_check_cost("interruption checks: calls (fib)", calls_checked, calls_unchecked, baseline);
  bench_note("calls: fib(%u) by double recursion (%.0f M calls in the source) per call", n,
             (2 * fib(n + 1) - 1) / 1e6);

  sl_pool_destroy(checked);
  sl_pool_destroy(unchecked);
  sl_engine_destroy(unchecked_engine);
}
