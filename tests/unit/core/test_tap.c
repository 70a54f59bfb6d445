/*
 * Taps: a source's batches, a processor's outputs and failed events, and a sink's input,
 * seen exactly (count, payload, order) while the pipeline delivers everything as before;
 * errors for unknown nodes and outputs; and removal while events flow.
 */
#include <stdatomic.h>

#include "core_fixture.h"

/* Asserts that `seen` holds exactly e1 .. e<count>, in order. */
static void expect_sequence(tap_seen *seen, size_t count, const char *where) {
  cr_assert_eq(seen->events.count, count, "%s: saw %zu events, expected %zu", where,
               seen->events.count, count);
  for (size_t i = 0; i < count; i++) {
    char want[32];
    snprintf(want, sizeof want, "e%zu", i + 1);
    const sl_event *ev = &seen->events.items[i];
    cr_assert(payload_is(ev, want), "%s: event %zu is '%.*s', expected '%s'", where, i,
              (int)ev->payload.len, (const char *)ev->payload.ptr, want);
  }
}

static sl_tap *add_tap(test_run *run, const char *node, bool errors, tap_seen *seen) {
  sl_tap *tap = NULL;
  sl_error err = {{0}};
  sl_status st = sl_pipeline_tap_add(run->pipeline, node, errors, on_tap_copy, seen, &tap, &err);
  cr_assert_eq(st, SL_OK, "tap on %s%s: %s", node, errors ? ".errors" : "", err.message);
  cr_assert_not_null(tap);
  return tap;
}

/* gen -> up (echo) -> out; gen -> bad (fail); bad.errors -> dlq. */
Test(tap, every_kind_of_node_sees_exactly_its_events) {
  char echo[4096];
  snprintf(echo, sizeof echo, "%s", guest_path("echo")); /* guest_path reuses its buffer */
  char *yaml = format("name: taps\n"
                      "workers: 2\n"
                      "batch_size: 64\n"
                      "nodes:\n"
                      "  - {id: gen, type: generate, count: 1000, payload: 'e{{seq}}'}\n"
                      "  - {id: up, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: bad, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: out, type: null, inputs: [up]}\n"
                      "  - {id: dlq, type: null, inputs: [bad.errors]}\n",
                      echo, guest_path("fail"));
  test_run run;
  log_lines log;
  log_lines_init(&log);
  run_new(&run, yaml, &log);
  tap_seen gen, up, bad, bad_out, out, dlq;
  tap_seen *all[] = {&gen, &up, &bad, &bad_out, &out, &dlq};
  for (size_t i = 0; i < 6; i++) tap_seen_init(all[i]);
  add_tap(&run, "gen", false, &gen);
  sl_tap *up_tap = add_tap(&run, "up", false, &up);
  add_tap(&run, "bad", true, &bad);
  add_tap(&run, "bad", false, &bad_out);
  add_tap(&run, "out", false, &out);
  add_tap(&run, "dlq", false, &dlq);
  run_start(&run);
  run_wait(&run);

  expect_sequence(&gen, 1000, "gen");
  expect_sequence(&up, 1000, "up");
  expect_sequence(&out, 1000, "out");
  cr_assert_eq(bad_out.events.count, 0, "fail.wat has no outputs");
  cr_assert_eq(bad_out.calls, 0, "a tap is never called with no events");
  cr_assert_eq(bad.events.count, 1000);
  cr_assert_eq(dlq.events.count, 1000);
  for (size_t i = 0; i < 1000; i++) {
    char want[32], error[64];
    snprintf(want, sizeof want, "e%zu", i + 1);
    snprintf(error, sizeof error, "bad input: e%zu", i + 1);
    cr_assert(payload_is(&bad.events.items[i], want), "bad.errors event %zu", i);
    cr_assert_str_eq(meta_of(&bad.events.items[i], "error"), error);
    cr_assert_str_eq(meta_of(&bad.events.items[i], "fault"), "processor-error");
    cr_assert(payload_is(&dlq.events.items[i], want), "dlq event %zu", i);
    cr_assert_str_eq(meta_of(&dlq.events.items[i], "error"), error);
  }
  /* Watching changed nothing downstream. */
  cr_assert_eq(stats_of(&run, "out").events_out, 1000);
  cr_assert_eq(stats_of(&run, "dlq").events_out, 1000);
  cr_assert_eq(stats_of(&run, "bad").errors, 1000);
  cr_assert_geq(gen.calls, 1000 / 64, "one call per batch");

  /* Removing one tap and leaving the rest for sl_pipeline_destroy to free. */
  sl_pipeline_tap_remove(run.pipeline, up_tap);
  run_free(&run);
  for (size_t i = 0; i < 6; i++) tap_seen_destroy(all[i]);
  free(yaml);
}

/* Outputs nobody reads still reach a tap; failed events are still logged and dropped. */
Test(tap, outputs_nobody_reads) {
  char echo[4096];
  snprintf(echo, sizeof echo, "%s", guest_path("echo"));
  char *yaml = format("name: taps-unread\n"
                      "workers: 1\n"
                      "batch_size: 50\n"
                      "nodes:\n"
                      "  - {id: gen, type: generate, count: 300, payload: 'e{{seq}}'}\n"
                      "  - {id: lonely, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: bad, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: out, type: null, inputs: [gen]}\n",
                      echo, guest_path("fail"));
  test_run run;
  log_lines log;
  log_lines_init(&log);
  run_new(&run, yaml, &log);
  tap_seen lonely, bad;
  tap_seen_init(&lonely);
  tap_seen_init(&bad);
  add_tap(&run, "lonely", false, &lonely);
  add_tap(&run, "bad", true, &bad);
  run_start(&run);
  run_wait(&run);
  expect_sequence(&lonely, 300, "lonely");
  cr_assert_eq(bad.events.count, 300);
  cr_assert_str_eq(meta_of(&bad.events.items[299], "error"), "bad input: e300");
  cr_assert_eq(stats_of(&run, "bad").errors, 300);
  cr_assert_eq(stats_of(&run, "out").events_out, 300);
  cr_assert(log_has(&log, "nothing reads 'bad.errors', so it is counted and dropped"), "%s",
            log.text);
  run_free(&run);
  tap_seen_destroy(&lonely);
  tap_seen_destroy(&bad);
  free(yaml);
}

Test(tap, unknown_node_and_missing_errors_output) {
  char *yaml = format("name: taps-errors\n"
                      "nodes:\n"
                      "  - {id: gen, type: generate, count: 1}\n"
                      "  - {id: up, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: out, type: null, inputs: [up]}\n",
                      guest_path("echo"));
  test_run run;
  run_new(&run, yaml, NULL);
  tap_seen seen;
  tap_seen_init(&seen);
  sl_tap *tap = (sl_tap *)&seen;
  sl_error err = {{0}};
  cr_assert_eq(sl_pipeline_tap_add(run.pipeline, "nope", false, on_tap_copy, &seen, &tap, &err),
               SL_NOT_FOUND);
  cr_assert_null(tap);
  cr_assert(strstr(err.message, "no node 'nope'"), "%s", err.message);
  cr_assert_eq(sl_pipeline_tap_add(run.pipeline, "gen", true, on_tap_copy, &seen, &tap, &err),
               SL_INVALID);
  cr_assert(strstr(err.message, "'gen' is a source"), "%s", err.message);
  cr_assert_eq(sl_pipeline_tap_add(run.pipeline, "out", true, on_tap_copy, &seen, &tap, &err),
               SL_INVALID);
  cr_assert(strstr(err.message, "'out' is a sink"), "%s", err.message);
  cr_assert_eq(sl_pipeline_tap_add(run.pipeline, "up", true, on_tap_copy, &seen, &tap, &err),
               SL_OK);
  sl_pipeline_tap_remove(run.pipeline, tap);
  run_free(&run);
  tap_seen_destroy(&seen);
  free(yaml);
}

/* A watcher that notices any call after its removal returned, or one still running. */
typedef struct watcher {
  atomic_bool removed;
  atomic_bool in_call;
  atomic_uint_fast64_t events;
  atomic_uint late_calls;
} watcher;

static void on_watch(void *user, const sl_event *events, size_t count) {
  watcher *w = user;
  if (atomic_load(&w->removed)) atomic_fetch_add(&w->late_calls, 1);
  atomic_store(&w->in_call, true);
  /* Stay a little, so a removal is likely to find a call running. */
  volatile uint64_t spin = 0;
  for (size_t i = 0; i < count * 20; i++) spin = spin + events[i % count].payload.len;
  atomic_fetch_add(&w->events, count);
  atomic_store(&w->in_call, false);
}

Test(tap, removed_while_events_flow, .timeout = 60) {
  char *yaml = format("name: taps-remove\n"
                      "workers: 2\n"
                      "batch_size: 32\n"
                      "nodes:\n"
                      "  - {id: gen, type: generate, count: 0, payload: 'e{{seq}}'}\n"
                      "  - {id: up, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: out, type: null, inputs: [up]}\n",
                      guest_path("echo"));
  test_run run;
  run_new(&run, yaml, NULL);
  run_start(&run);
  static const char *const nodes[] = {"gen", "up", "out"};
  uint64_t seen = 0;
  for (int round = 0; round < 150; round++) {
    watcher *w = calloc(1, sizeof *w);
    cr_assert_not_null(w);
    /* Two taps on one node at once, removed in turn, so the list changes under calls. */
    watcher *other = calloc(1, sizeof *other);
    cr_assert_not_null(other);
    const char *node = nodes[round % 3];
    sl_tap *tap = NULL, *other_tap = NULL;
    cr_assert_eq(sl_pipeline_tap_add(run.pipeline, node, false, on_watch, w, &tap, NULL), SL_OK);
    cr_assert_eq(sl_pipeline_tap_add(run.pipeline, node, false, on_watch, other, &other_tap, NULL),
                 SL_OK);
    for (int i = 0; i < 200 && atomic_load(&w->events) == 0; i++) sleep_ms(1);
    sl_pipeline_tap_remove(run.pipeline, tap);
    atomic_store(&w->removed, true);
    cr_assert_not(atomic_load(&w->in_call), "round %d: a call still runs after remove", round);
    sl_pipeline_tap_remove(run.pipeline, other_tap);
    atomic_store(&other->removed, true);
    cr_assert_not(atomic_load(&other->in_call));
    sleep_ms(round % 4); /* let batches pass that must not reach the removed taps */
    cr_assert_eq(atomic_load(&w->late_calls), 0, "round %d: called after removal", round);
    cr_assert_eq(atomic_load(&other->late_calls), 0, "round %d: called after removal", round);
    seen += atomic_load(&w->events);
    free(w); /* under ASan, a later call would be a use after free */
    free(other);
  }
  cr_assert_gt(seen, 0, "the taps saw events");
  sl_node_stats before = stats_of(&run, "out");
  sleep_ms(50);
  cr_assert_gt(stats_of(&run, "out").events_out, before.events_out, "the pipeline keeps flowing");
  sl_pipeline_stop(run.pipeline);
  run_wait(&run);
  sl_node_stats gen = stats_of(&run, "gen"), out = stats_of(&run, "out");
  cr_assert_eq(out.events_in, gen.events_out, "every event delivered");
  run_free(&run);
  free(yaml);
}
