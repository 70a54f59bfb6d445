/*
 * Every trap kind and every limit fails exactly one event, with the right fault kind,
 * and the same pool handles the next event normally.
 */
#include <time.h>

#include "../../support/fixture.h"

static void check_trap_then_recover(const char *payload, sl_fault_kind kind) {
  sl_pool *pool = guest_pool("traps", NULL);
  expect_fault(pool, payload, kind);
  expect_one(pool, "still-alive", "still-alive");
  sl_pool_stats stats;
  sl_pool_stats_get(pool, &stats);
  cr_assert_eq(stats.faults, 1);
  cr_assert_eq(stats.instances_created, 2, "the trapped instance must be replaced");
  sl_pool_destroy(pool);
}

Test(traps, unreachable) { check_trap_then_recover("unreachable", SL_FAULT_UNREACHABLE); }
Test(traps, out_of_bounds) { check_trap_then_recover("oob", SL_FAULT_OUT_OF_BOUNDS); }
Test(traps, divide_by_zero) { check_trap_then_recover("div0", SL_FAULT_DIVIDE_BY_ZERO); }
Test(traps, integer_overflow) { check_trap_then_recover("overflow", SL_FAULT_INTEGER_OVERFLOW); }
Test(traps, invalid_conversion) {
  check_trap_then_recover("conversion", SL_FAULT_INVALID_CONVERSION);
}
Test(traps, indirect_call_to_null) {
  check_trap_then_recover("indirect-null", SL_FAULT_BAD_INDIRECT_CALL);
}
Test(traps, indirect_call_wrong_type) {
  check_trap_then_recover("indirect-type", SL_FAULT_BAD_INDIRECT_CALL);
}
Test(traps, unbounded_recursion) { check_trap_then_recover("stack", SL_FAULT_STACK_EXHAUSTED); }

static double elapsed_ms(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static double cpu_ms_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* The limit is a behaviour, not a speed: the call must be stopped, and within 2x of the
 * CPU time it may use (the limit counts CPU time, so a busy test machine cannot make a
 * call fail early, nor this test fail). */
Test(limits, runaway_loop_is_stopped_within_twice_the_limit) {
  sl_limits limits = {.time_ms = 200};
  sl_pool *pool = guest_pool("traps", &limits);
  struct timespec start, cpu_start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_start);
  expect_fault(pool, "loop", SL_FAULT_TIMEOUT);
  double ms = elapsed_ms(&start), cpu_ms = cpu_ms_since(&cpu_start);
  cr_assert(cpu_ms >= 200.0 * 0.9, "stopped too early: %.1f ms of CPU", cpu_ms);
  cr_assert(cpu_ms < 400.0, "stopped after %.1f ms of CPU; the limit is 200 ms", cpu_ms);
  cr_assert(ms < 200.0 * 10 * 1.5, "the wall-time backstop did not hold: %.1f ms", ms);
  expect_one(pool, "after", "after");
  sl_pool_destroy(pool);
}

Test(limits, runaway_c_loop_built_at_O2_is_stopped) {
  sl_limits limits = {.time_ms = 50};
  sl_pool *pool = guest_pool("spin", &limits);
  expect_fault(pool, "spin", SL_FAULT_TIMEOUT);
  expect_one(pool, "next", "next");
  sl_pool_destroy(pool);
}

Test(limits, c_recursion_built_at_O2_traps_instead_of_hanging) {
  sl_pool *pool = guest_pool("recurse", NULL);
  expect_fault(pool, "deep", SL_FAULT_STACK_EXHAUSTED);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "shallow", &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

Test(limits, smaller_stack_limit_traps_sooner) {
  sl_limits limits = {.stack_bytes = 64 * 1024};
  sl_pool *pool = guest_pool("traps", &limits);
  expect_fault(pool, "stack", SL_FAULT_STACK_EXHAUSTED);
  sl_pool_destroy(pool);
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  if (f) fclose(f);
  return kib;
}

Test(limits, memory_bomb_is_capped_and_host_rss_stays_within_limit) {
  sl_limits limits = {.memory_bytes = 64u << 20};
  sl_pool *pool = guest_pool("traps", &limits);
  long before = rss_kib();
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  /* The guest grows one page at a time, touching each, until memory.grow fails. */
  cr_assert_eq(run_text(pool, "bomb", &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  long pages = payload_number(&out.items[0]);
  cr_assert(pages > 0 && pages <= 1024, "the guest got %ld pages; the limit is 1024", pages);
  long grown_kib = rss_kib() - before;
  cr_assert(grown_kib <= (64 << 10) * 11 / 10, "host RSS grew by %ld KiB", grown_kib);
  sl_event_list_destroy(&out);

  /* A 4 GiB grow in one step is refused, not granted. */
  expect_one(pool, "grow-big", "denied");
  sl_pool_destroy(pool);
}

Test(limits, allocator_abort_after_failed_grow_is_out_of_memory) {
  sl_limits limits = {.memory_bytes = 8u << 20};
  sl_pool *pool = guest_pool("traps", &limits);
  expect_fault(pool, "bomb-trap", SL_FAULT_OUT_OF_MEMORY);
  expect_one(pool, "ok", "ok");
  sl_pool_destroy(pool);
}

Test(limits, module_needing_more_initial_memory_than_the_limit_fails_init) {
  sl_engine *engine = test_engine();
  /* A wasi-libc module starts with more than one 64 KiB page (stack and data). */
  sl_module *module = load_guest(engine, guest_path("wasi"));
  sl_pool_options opts = {.limits = {.memory_bytes = 65536}};
  sl_pool *pool = NULL;
  sl_fault fault;
  cr_assert_eq(sl_pool_new(module, &opts, &pool, &fault), SL_INIT);
  cr_assert_null(pool);
  cr_assert_eq(fault.kind, SL_FAULT_OUT_OF_MEMORY, "%s", fault.message);
  cr_assert(strstr(fault.message, "initial memory"), "%s", fault.message);
  sl_module_release(module);
  sl_engine_destroy(engine);
}
