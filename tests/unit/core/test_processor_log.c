/*
 * Processor stdout/stderr goes to the log of the pipeline the processor runs in, tagged
 * with its node id and with the pipeline's secrets masked; without a pipeline log
 * function it goes to the engine's, as before.
 */
#include "core_fixture.h"

static char *wasi_pipeline(const char *name, const char *node) {
  return format("name: %s\n"
                "workers: 1\n"
                "secrets:\n"
                "  S: {env: TEST_SECRET}\n"
                "nodes:\n"
                "  - {id: gen, type: generate, count: 2, payload: '%s-${secret:S}-{{seq}}'}\n"
                "  - {id: %s, type: wasm, module: %s, inputs: [gen]}\n"
                "  - {id: out, type: null, inputs: [%s]}\n",
                name, name, node, guest_path("wasi"), node);
}

/* Two pipelines on one engine, as in the daemon: each hears only its own processors. */
Test(processor_log, reaches_the_pipeline_log_with_node_id) {
  log_lines engine_log, log_a, log_b;
  log_lines_init(&engine_log);
  log_lines_init(&log_a);
  log_lines_init(&log_b);
  sl_engine_options eopts = {.log = on_log_line, .log_user = &engine_log};
  sl_engine *engine = test_engine_with(&eopts);
  char *yaml_a = wasi_pipeline("a", "first"), *yaml_b = wasi_pipeline("b", "second");
  test_run a, b;
  run_new_on(&a, engine, yaml_a, &log_a);
  run_new_on(&b, engine, yaml_b, &log_b);
  run_start(&a);
  run_start(&b);
  run_wait(&a);
  run_wait(&b);
  run_free(&a);
  run_free(&b);

  cr_assert(log_has(&log_a, "first|stdout|hello from wasi: a-***-1\n"), "%s", log_a.text);
  cr_assert(log_has(&log_a, "first|stdout|hello from wasi: a-***-2\n"), "%s", log_a.text);
  cr_assert(log_has(&log_a, "first|stderr|to stderr\n"), "%s", log_a.text);
  cr_assert_not(log_has(&log_a, "second|"), "%s", log_a.text);
  cr_assert(log_has(&log_b, "second|stdout|hello from wasi: b-***-1\n"), "%s", log_b.text);
  cr_assert_not(log_has(&log_b, "first|"), "%s", log_b.text);
  cr_assert_not(log_has(&log_a, "hunter2") || log_has(&log_b, "hunter2"), "secrets are masked");
  cr_assert_not(log_has(&engine_log, "hello from wasi"), "nothing reaches the engine's log: %s",
                engine_log.text);
  sl_engine_destroy(engine);
  free(yaml_a);
  free(yaml_b);
}

Test(processor_log, without_a_pipeline_log_goes_to_the_engine) {
  log_lines engine_log;
  log_lines_init(&engine_log);
  sl_engine_options eopts = {.log = on_log_line, .log_user = &engine_log};
  sl_engine *engine = test_engine_with(&eopts);
  char *yaml = wasi_pipeline("c", "third");
  test_run run;
  run_new_on(&run, engine, yaml, NULL);
  run_start(&run);
  run_wait(&run);
  run_free(&run);
  cr_assert(log_has(&engine_log, "third|stdout|hello from wasi: c-hunter2-1\n"), "%s",
            engine_log.text);
  cr_assert(log_has(&engine_log, "third|stderr|to stderr\n"), "%s", engine_log.text);
  sl_engine_destroy(engine);
  free(yaml);
}

Test(processor_log, pool_option_overrides_the_engine) {
  log_lines engine_log, pool_log;
  log_lines_init(&engine_log);
  log_lines_init(&pool_log);
  sl_engine_options eopts = {.log = on_log_line, .log_user = &engine_log};
  sl_engine *engine = test_engine_with(&eopts);
  sl_module *module = load_guest(engine, guest_path("wasi"));
  sl_pool_options opts = {.node_id = "solo", .log = on_log_line, .log_user = &pool_log};
  sl_pool *pool = NULL;
  sl_fault fault = {0};
  cr_assert_eq(sl_pool_new(module, &opts, &pool, &fault), SL_OK, "%s", fault.message);
  sl_event_list out;
  sl_event_list_init(&out);
  cr_assert_eq(run_text(pool, "ping", &out, &fault), SL_OK, "%s", fault.message);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
  sl_module_release(module);
  sl_engine_destroy(engine);
  cr_assert(log_has(&pool_log, "solo|stdout|hello from wasi: ping\n"), "%s", pool_log.text);
  cr_assert_not(log_has(&engine_log, "hello from wasi"), "%s", engine_log.text);
}
