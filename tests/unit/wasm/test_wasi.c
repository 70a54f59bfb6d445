/*
 * The WASI subset: wasi-libc programs print (as log lines tagged with the node id), read
 * their environment, clocks and randomness, cannot open files, and exit with a fault.
 */
#include "../../support/fixture.h"

static captured_log log_lines;

static sl_pool *wasi_pool(const sl_kv *env, size_t env_count) {
  sl_engine_options eopts = {.log = capture_log, .log_user = &log_lines};
  sl_engine *engine = test_engine_with(&eopts);
  sl_module *module = load_guest(engine, guest_path("wasi"));
  sl_pool_options opts = {.node_id = "enrich", .env = env, .env_count = env_count};
  sl_pool *pool = NULL;
  sl_fault fault;
  cr_assert_eq(sl_pool_new(module, &opts, &pool, &fault), SL_OK, "%s", fault.message);
  sl_module_release(module);
  sl_engine_destroy(engine);
  return pool;
}

Test(wasi, stdout_and_stderr_become_tagged_log_lines) {
  sl_pool *pool = wasi_pool(NULL, 0);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "abc", &out, &fault), SL_OK, "%s", fault.message);
  cr_assert(strstr(log_lines.text, "enrich|stdout|hello from wasi: abc\n"), "%s", log_lines.text);
  cr_assert(strstr(log_lines.text, "enrich|stderr|to stderr\n"), "%s", log_lines.text);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

Test(wasi, environment_clock_random_and_no_files) {
  sl_kv env[] = {{"GREETING", "bonjour"}};
  sl_pool *pool = wasi_pool(env, 1);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "x", &out, &fault), SL_OK, "%s", fault.message);
  cr_assert_eq(out.count, 1);
  char text[512];
  snprintf(text, sizeof text, "%.*s", (int)out.items[0].payload.len,
           (const char *)out.items[0].payload.ptr);
  cr_assert(strstr(text, "env=bonjour"), "%s", text);
  cr_assert(strstr(text, "time_ok=1"), "%s", text);
  cr_assert(strstr(text, "random_ok=1"), "%s", text);
  cr_assert_null(strstr(text, "open=ok"), "a processor must not open files: %s", text);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

Test(wasi, environment_is_empty_unless_configured) {
  sl_pool *pool = wasi_pool(NULL, 0);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "x", &out, &fault), SL_OK, "%s", fault.message);
  cr_assert(memmem(out.items[0].payload.ptr, out.items[0].payload.len, "env=none", 8));
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}

Test(wasi, proc_exit_ends_the_instance_with_an_exit_fault) {
  sl_pool *pool = wasi_pool(NULL, 0);
  expect_fault(pool, "exit", SL_FAULT_EXIT);
  sl_event_list out;
  sl_event_list_init(&out);
  sl_fault fault;
  cr_assert_eq(run_text(pool, "again", &out, &fault), SL_OK, "%s", fault.message);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
}
