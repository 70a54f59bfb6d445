/*
 * Warm instances: state persists between calls, instances are recycled by call count and
 * memory high-water mark, init receives the config, and several threads run guests at
 * once with traps mixed in.
 */
#include <pthread.h>

#include "../../support/fixture.h"

Test(pool, instance_state_persists_between_calls) {
  sl_pool *pool = guest_pool("counter", NULL);
  expect_one(pool, "", "1");
  expect_one(pool, "", "2");
  expect_one(pool, "", "3");
  sl_pool_destroy(pool);
}

Test(pool, recycled_after_configured_number_of_calls) {
  sl_limits limits = {.recycle_calls = 2};
  sl_pool *pool = guest_pool("counter", &limits);
  expect_one(pool, "", "1");
  expect_one(pool, "", "2");
  expect_one(pool, "", "1");
  expect_one(pool, "", "2");
  sl_pool_stats stats;
  sl_pool_stats_get(pool, &stats);
  cr_assert_eq(stats.recycled, 2);
  cr_assert_eq(stats.faults, 0);
  sl_pool_destroy(pool);
}

Test(pool, recycled_when_memory_passes_the_high_water_mark) {
  /* leak.wat grows by 1 MiB (16 pages) per call and reports its page count. */
  sl_limits limits = {.recycle_memory = 3u << 20};
  sl_pool *pool = guest_pool("leak", &limits);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  long max_pages = 0;
  for (int i = 0; i < 20; i++) {
    cr_assert_eq(run_text(pool, "", &out, &fault), SL_OK, "%s", fault.message);
    long pages = payload_number(&out.items[out.count - 1]);
    if (pages > max_pages) max_pages = pages;
  }
  sl_pool_stats stats;
  sl_pool_stats_get(pool, &stats);
  cr_assert_gt(stats.recycled, 3, "recycled only %llu times", (unsigned long long)stats.recycled);
  cr_assert_leq(max_pages, (3 << 4) + 16 + 16, "memory grew to %ld pages despite recycling",
                max_pages);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

Test(pool, init_receives_config_in_order) {
  sl_engine *engine = test_engine();
  sl_module *module = load_guest(engine, guest_path("init"));
  sl_kv config[] = {{"greeting", "hi"}, {"n", "2"}};
  sl_pool_options opts = {.config = config, .config_count = 2};
  sl_pool *pool = NULL;
  sl_fault fault;
  cr_assert_eq(sl_pool_new(module, &opts, &pool, &fault), SL_OK, "%s", fault.message);
  sl_event_list out;
  sl_event_list_init(&out);
  cr_assert_eq(run_text(pool, "", &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 2);
  cr_assert(memcmp(out.items[0].payload.ptr, "greeting=hi", 11) == 0);
  cr_assert(memcmp(out.items[1].payload.ptr, "n=2", 3) == 0);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
  sl_module_release(module);
  sl_engine_destroy(engine);
}

Test(pool, init_error_is_reported_and_no_pool_is_made) {
  sl_engine *engine = test_engine();
  sl_module *module = load_guest(engine, guest_path("init"));
  sl_kv config[] = {{"fail", "missing api key"}};
  sl_pool_options opts = {.config = config, .config_count = 1};
  sl_pool *pool = NULL;
  sl_fault fault;
  cr_assert_eq(sl_pool_new(module, &opts, &pool, &fault), SL_INIT);
  cr_assert_null(pool);
  cr_assert_eq(fault.kind, SL_FAULT_PROCESSOR_ERROR);
  cr_assert(strstr(fault.message, "init refused: missing api key"), "%s", fault.message);
  sl_module_release(module);
  sl_engine_destroy(engine);
}

/* ---- threads ----------------------------------------------------------------------- */

typedef struct worker {
  sl_module *module;
  int index;
  int ok, faults, wrong;
} worker;

static void *run_worker(void *arg) {
  worker *w = arg;
  static const struct {
    const char *payload;
    sl_fault_kind kind;
  } mix[] = {{"ok", SL_FAULT_NONE},
             {"oob", SL_FAULT_OUT_OF_BOUNDS},
             {"hello", SL_FAULT_NONE},
             {"div0", SL_FAULT_DIVIDE_BY_ZERO},
             {"unreachable", SL_FAULT_UNREACHABLE},
             {"stack", SL_FAULT_STACK_EXHAUSTED},
             {"x", SL_FAULT_NONE},
             {"indirect-null", SL_FAULT_BAD_INDIRECT_CALL}};
  sl_pool_options opts = {.node_id = "worker"};
  sl_pool *pool = NULL;
  sl_fault fault;
  if (sl_pool_new(w->module, &opts, &pool, &fault) != SL_OK) {
    w->wrong = -1;
    return NULL;
  }
  sl_event_list out;
  sl_event_list_init(&out);
  for (int i = 0; i < 1000; i++) {
    int k = (i + w->index) % (int)(sizeof mix / sizeof mix[0]);
    sl_status status = run_text(pool, mix[k].payload, &out, &fault);
    if (mix[k].kind == SL_FAULT_NONE) {
      bool same = status == SL_OK && out.count == 1 &&
                  out.items[0].payload.len == strlen(mix[k].payload) &&
                  memcmp(out.items[0].payload.ptr, mix[k].payload, strlen(mix[k].payload)) == 0;
      same ? w->ok++ : w->wrong++;
    } else {
      status == SL_FAULT &&fault.kind == mix[k].kind ? w->faults++ : w->wrong++;
    }
    sl_event_list_clear(&out);
  }
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
  return NULL;
}

Test(pool, four_threads_with_traps_mixed_in, .timeout = 120) {
  sl_engine *engine = test_engine();
  sl_module *module = load_guest(engine, guest_path("traps"));
  enum { THREADS = 4 };
  pthread_t threads[THREADS];
  worker workers[THREADS];
  for (int i = 0; i < THREADS; i++) {
    workers[i] = (worker){.module = module, .index = i};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    cr_assert_eq(pthread_create(&threads[i], &attr, run_worker, &workers[i]), 0);
    pthread_attr_destroy(&attr);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < THREADS; i++) {
    cr_assert_eq(workers[i].wrong, 0, "thread %d: %d wrong outcomes", i, workers[i].wrong);
    cr_assert_eq(workers[i].ok + workers[i].faults, 1000);
    cr_assert_gt(workers[i].faults, 400);
  }
  sl_module_release(module);
  sl_engine_destroy(engine);
}
