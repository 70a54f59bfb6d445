/*
 * The capability imports seen from a guest (tests/guests/caps_probe.c runs one import
 * call per event): config, logging levels, key-value over a memory bucket, HTTP without a
 * grant, and imports called wrongly, which must fault the event, not the host.
 */
#include "../../support/fixture.h"
#include "caps/node_caps.h"

typedef struct probe {
  sl_engine *engine;
  sl_module *module;
  sl_kv_registry *kv;
  sl_node_caps *caps;
  sl_pool *pool;
  captured_log log;
  char dir[64];
} probe;

static void probe_start(probe *p, const sl_capabilities *grants) {
  memset(p, 0, sizeof *p);
  snprintf(p->dir, sizeof p->dir, "/tmp/sluice-hostimports-XXXXXX");
  cr_assert_not_null(mkdtemp(p->dir));
  p->engine = test_engine();
  p->module = load_guest(p->engine, guest_path("caps_probe"));
  sl_error err = {{0}};
  cr_assert_eq(sl_kv_registry_new(p->dir, &p->kv, &err), SL_OK, "%s", err.message);
  cr_assert_eq(sl_node_caps_new(grants, p->kv, 0, &p->caps, &err), SL_OK, "%s", err.message);
  static const sl_kv config[] = {{"greeting", "hi"}, {"n", "2"}};
  sl_pool_options opts = {.node_id = "probe",
                          .config = config,
                          .config_count = 2,
                          .caps = p->caps,
                          .log = capture_log,
                          .log_user = &p->log};
  sl_fault fault = {0};
  cr_assert_eq(sl_pool_new(p->module, &opts, &p->pool, &fault), SL_OK, "%s", fault.message);
}

static void probe_stop(probe *p) {
  sl_pool_destroy(p->pool);
  sl_node_caps_destroy(p->caps);
  sl_kv_registry_destroy(p->kv);
  sl_module_release(p->module);
  sl_engine_destroy(p->engine);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", p->dir);
  cr_assert_eq(system(cmd), 0);
}

static sl_kv_grant memory_bucket[] = {{"cache", "memory", 1, 1}};

Test(host_imports, config_reads_the_nodes_map_at_any_time) {
  probe p;
  probe_start(&p, &(sl_capabilities){0});
  expect_one(p.pool, "config greeting", "some hi");
  expect_one(p.pool, "config missing", "none");
  expect_one(p.pool, "configall", "greeting=hi,n=2");
  probe_stop(&p);
}

Test(host_imports, logging_tags_lines_with_the_node_and_drops_lines_below_the_level) {
  probe p;
  probe_start(&p, &(sl_capabilities){.log_level = SL_GUEST_LOG_WARN});
  expect_one(p.pool, "log 2 quiet-info", "ok");
  expect_one(p.pool, "log 3 loud-warning", "ok");
  expect_one(p.pool, "log 5 fatal", "ok");
  cr_assert(strstr(p.log.text, "probe|warn|probe: loud-warning\n"), "log: %s", p.log.text);
  cr_assert(strstr(p.log.text, "probe|critical|probe: fatal\n"), "log: %s", p.log.text);
  cr_assert_null(strstr(p.log.text, "quiet-info"), "log: %s", p.log.text);
  probe_stop(&p);
}

Test(host_imports, keyvalue_operations_on_a_granted_memory_bucket) {
  probe p;
  probe_start(&p, &(sl_capabilities){.buckets = memory_bucket, .bucket_count = 1});
  expect_one(p.pool, "open cache", "ok");
  expect_one(p.pool, "open other", "err no-such-store");
  expect_one(p.pool, "get cache k", "none");
  expect_one(p.pool, "exists cache k", "false");
  expect_one(p.pool, "set cache k hello world", "ok");
  expect_one(p.pool, "get cache k", "some hello world");
  expect_one(p.pool, "exists cache k", "true");
  expect_one(p.pool, "incr cache n 40", "40");
  expect_one(p.pool, "incr cache n 2", "42");
  expect_one(p.pool, "incr cache n -50", "-8");
  expect_one(p.pool, "get cache n", "some -8");
  expect_one(p.pool, "incr cache k 1",
             "err other: bucket 'cache' (memory): increment of 'k': the value there is not a "
             "decimal integer");
  expect_one(p.pool, "list cache", "keys k,n cursor none");
  expect_one(p.pool, "delete cache k", "ok");
  expect_one(p.pool, "delete cache k", "ok");
  expect_one(p.pool, "list cache", "keys n cursor none");
  expect_one(p.pool, "drop cache", "ok");
  expect_one(p.pool, "get cache n", "some -8"); /* reopened: the data is the bucket's */
  probe_stop(&p);
}

Test(host_imports, http_without_a_grant_is_denied) {
  probe p;
  probe_start(&p, &(sl_capabilities){0});
  expect_one(p.pool, "http GET http://127.0.0.1:9/",
             "err denied: node 'probe' has no http grant (capabilities: {http: {allowed_hosts: "
             "[...]}})");
  probe_stop(&p);
}

Test(host_imports, wrong_calls_fault_the_event_and_the_next_one_works) {
  probe p;
  probe_start(&p, &(sl_capabilities){.buckets = memory_bucket, .bucket_count = 1});
  expect_fault(p.pool, "badptr", SL_FAULT_BAD_IMPORT_CALL);
  expect_fault(p.pool, "badhandle", SL_FAULT_BAD_IMPORT_CALL);
  expect_fault(p.pool, "badlevel", SL_FAULT_BAD_IMPORT_CALL);
  expect_one(p.pool, "set cache k v", "ok");
  expect_one(p.pool, "get cache k", "some v");
  probe_stop(&p);
}
