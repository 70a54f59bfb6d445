/*
 * A sink whose flush fails: the events it had accepted by `write` but not yet made
 * durable count as that sink's errors, not as delivered, and their sources hear of it.
 */
#include "core_fixture.h"

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  *state = NULL;
  return SL_OK;
}

static sl_status accepting_write(void *state, const sl_event_list *batch, sl_error *err) {
  return SL_OK;
}

static sl_status failing_flush(void *state, sl_error *err) {
  return sl_error_set(err, SL_IO, "disk on fire");
}

static const sl_conf_field no_fields[] = {{NULL}};
static const sl_connector unflushable = {
    .version = SL_CONNECTOR_VERSION,
    .name = "unflushable",
    .kind = SL_NODE_SINK,
    .fields = no_fields,
    .init = init,
    .write = accepting_write,
    .flush = failing_flush,
};

Test(sink_flush, a_failed_flush_counts_the_written_events_as_errors) {
  const char *yaml = "name: flush\n"
                     "workers: 1\n"
                     "nodes:\n"
                     "  - {id: gen, type: generate, count: 50}\n"
                     "  - {id: out, type: null, inputs: [gen]}\n";
  test_run run;
  memset(&run, 0, sizeof run);
  run.engine = test_engine();
  run.own_engine = true;
  sl_error err = {{0}};
  cr_assert_eq(sl_pipeline_load_text(yaml, strlen(yaml), "t.yaml", "/tmp", NULL, &run.spec, &err),
               SL_OK, "%s", err.message);
  run.spec->nodes[1].connector = &unflushable;
  log_lines log;
  log_lines_init(&log);
  sl_pipeline_options popts = {.log = on_log_line, .log_user = &log};
  cr_assert_eq(sl_pipeline_new(run.engine, run.spec, &popts, &run.pipeline, &err), SL_OK, "%s",
               err.message);
  run_start(&run);
  sl_pipeline_wait(run.pipeline, &err); /* reports the failed deliveries */
  sl_node_stats out = stats_of(&run, "out");
  cr_assert_eq(out.events_in, 50);
  cr_assert_eq(out.events_out, 0, "nothing was made durable");
  cr_assert_eq(out.errors, 50);
  cr_assert(log_has(&log, "disk on fire"));
  run_free(&run);
}
