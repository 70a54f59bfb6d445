/*
 * A source's errors output (sl_source_emit_errors): events a source gives up on reach
 * the nodes reading `ID.errors` and nothing else, count as the source's errors, and are
 * acknowledged like any batch, also when nothing reads them (logged and dropped).
 */
#include <stdatomic.h>

#include "core_fixture.h"

/* A source that emits two batches: two good events, then one it gives up on. */
typedef struct giving_up {
  atomic_int acked_ok, acked_failed;
} giving_up;

static giving_up outcome;

static void on_ack(void *cookie, sl_status delivered) {
  if (delivered == SL_OK)
    atomic_fetch_add(&outcome.acked_ok, 1);
  else
    atomic_fetch_add(&outcome.acked_failed, 1);
}

static sl_status giving_up_init(const sl_node_ctx *node, const void *config, void **state,
                                sl_error *err) {
  *state = &outcome;
  return SL_OK;
}

static sl_event_list *batch_of(const char *const *payloads, size_t count, bool failed) {
  sl_event_list *batch = malloc(sizeof *batch);
  sl_event_list_init(batch);
  for (size_t i = 0; i < count; i++) {
    uint8_t *p;
    sl_meta *meta;
    size_t len = strlen(payloads[i]);
    cr_assert_eq(sl_event_list_push(batch, len, failed ? 1 : 0, &p, &meta), SL_OK);
    memcpy(p, payloads[i], len);
    if (failed) meta[0] = (sl_meta){sl_bytes_from_cstr("error"), sl_bytes_from_cstr("gave up")};
  }
  return batch;
}

static sl_status giving_up_start(void *state, sl_source_port *port, sl_error *err) {
  static const char *const good[] = {"a", "b"}, *const bad[] = {"poison"};
  sl_event_list *batch = batch_of(good, 2, false);
  cr_assert_eq(sl_source_emit(port, &batch, on_ack, NULL), SL_OK);
  batch = batch_of(bad, 1, true);
  cr_assert_eq(sl_source_emit_errors(port, &batch, on_ack, NULL), SL_OK);
  sl_source_end(port);
  return SL_OK;
}

static const sl_conf_field no_fields[] = {{NULL}};
static const sl_connector giving_up_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "giving-up",
    .kind = SL_NODE_SOURCE,
    .fields = no_fields,
    .init = giving_up_init,
    .start = giving_up_start,
    .errors_output = true,
};

/* The loader knows only registered connectors, so the test loads a pipeline whose source
 * is a generate node and then puts its own source (and the `.errors` edge) in place,
 * as `sluice test` swaps in its feeders. */
static void run_with(bool read_errors, test_run *run, log_lines *log) {
  memset(&outcome, 0, sizeof outcome);
  char *yaml = format("name: source-errors\n"
                      "workers: 1\n"
                      "nodes:\n"
                      "  - {id: src, type: generate, count: 1}\n"
                      "  - {id: up, type: wasm, module: %s, inputs: [src]}\n"
                      "  - {id: out, type: null, inputs: [up]}\n"
                      "  - {id: dlq, type: null, inputs: [src]}\n",
                      guest_path("echo"));
  memset(run, 0, sizeof *run);
  run->engine = test_engine();
  run->own_engine = true;
  sl_error err = {{0}};
  cr_assert_eq(sl_pipeline_load_text(yaml, strlen(yaml), "t.yaml", "/tmp", NULL, &run->spec, &err),
               SL_OK, "%s", err.message);
  run->spec->nodes[0].connector = &giving_up_source;
  sl_node_spec *dlq = &run->spec->nodes[3];
  if (read_errors)
    dlq->inputs[0].errors = true;
  else
    dlq->inputs[0].index = 1; /* dlq reads `up` instead: nothing reads src.errors */
  sl_pipeline_options popts = {.log = on_log_line, .log_user = log};
  cr_assert_eq(sl_pipeline_new(run->engine, run->spec, &popts, &run->pipeline, &err), SL_OK, "%s",
               err.message);
  free(yaml);
  run_start(run);
  run_wait(run);
}

Test(source_errors, reach_only_the_nodes_reading_id_errors) {
  test_run run;
  log_lines log;
  log_lines_init(&log);
  run_with(true, &run, &log);
  cr_assert_eq(stats_of(&run, "up").events_in, 2, "the processor sees only the good events");
  cr_assert_eq(stats_of(&run, "out").events_in, 2);
  cr_assert_eq(stats_of(&run, "dlq").events_in, 1, "src.errors gets the one given up on");
  sl_node_stats src = stats_of(&run, "src");
  cr_assert_eq(src.events_out, 2);
  cr_assert_eq(src.errors, 1);
  cr_assert_eq(atomic_load(&outcome.acked_ok), 2, "both batches are acknowledged as delivered");
  cr_assert_eq(atomic_load(&outcome.acked_failed), 0);
  cr_assert_not(log_has(&log, "nothing reads"));
  run_free(&run);
}

Test(source_errors, unread_are_counted_logged_and_acknowledged) {
  test_run run;
  log_lines log;
  log_lines_init(&log);
  run_with(false, &run, &log);
  cr_assert_eq(stats_of(&run, "out").events_in, 2);
  cr_assert_eq(stats_of(&run, "dlq").events_in, 2, "dlq now reads `up`");
  cr_assert_eq(stats_of(&run, "src").errors, 1);
  cr_assert_eq(atomic_load(&outcome.acked_ok), 2);
  cr_assert(log_has(&log, "gave up; nothing reads 'src.errors', so it is counted and dropped"));
  run_free(&run);
}
