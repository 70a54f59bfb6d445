/*
 * The pipeline on the engine: processors with different modules each run their own
 * module's code, and a pipeline may be built on a thread that exits before it runs.
 */
#include "core_fixture.h"

/* src/wasm/module.c keeps each artifact's memfd open: a closed fd's "/proc/self/fd/N",
 * reused by the next module, made dlopen hand back the module loaded before. */
Test(pipeline_modules, each_processor_runs_its_own_module) {
  char echo[4096];
  snprintf(echo, sizeof echo, "%s", guest_path("echo"));
  char *yaml = format("name: two-modules\n"
                      "workers: 1\n"
                      "nodes:\n"
                      "  - {id: gen, type: generate, count: 10}\n"
                      "  - {id: same, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: bad, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: out, type: null, inputs: [same]}\n"
                      "  - {id: dlq, type: null, inputs: [bad.errors]}\n",
                      echo, guest_path("fail"));
  test_run run;
  run_new(&run, yaml, NULL);
  run_start(&run);
  run_wait(&run);
  sl_node_stats same = stats_of(&run, "same"), bad = stats_of(&run, "bad");
  cr_assert_eq(same.events_out, 10);
  cr_assert_eq(same.errors, 0);
  cr_assert_eq(bad.events_out, 0, "fail.wat returns no events");
  cr_assert_eq(bad.errors, 10, "fail.wat fails every event");
  cr_assert_eq(stats_of(&run, "dlq").events_in, 10);
  run_free(&run);
  free(yaml);
}

typedef struct build_job {
  sl_engine *engine;
  const char *yaml;
  sl_pipeline_spec *spec;
  sl_pipeline *pipeline;
  sl_status status;
  sl_error err;
} build_job;

static void *build_on_thread(void *arg) {
  build_job *job = arg;
  job->status = sl_pipeline_load_text(job->yaml, strlen(job->yaml), "test.yaml", "/tmp", NULL,
                                      &job->spec, &job->err);
  if (job->status == SL_OK)
    job->status = sl_pipeline_new(job->engine, job->spec, NULL, &job->pipeline, &job->err);
  return NULL;
}

/* The daemon builds pipelines on its API threads, which come and go; the pools' first
 * instances must not keep the builder's thread state (under ASan: a use after free when
 * a worker destroys an instance that never ran, as the second worker's here). */
Test(pipeline_engine, built_on_a_thread_that_exits) {
  char *yaml = format("name: built-elsewhere\n"
                      "workers: 2\n"
                      "nodes:\n"
                      "  - {id: gen, type: generate, count: 100}\n"
                      "  - {id: up, type: wasm, module: %s, inputs: [gen]}\n"
                      "  - {id: out, type: null, inputs: [up]}\n",
                      guest_path("echo"));
  build_job job = {.engine = test_engine(), .yaml = yaml};
  pthread_t builder;
  cr_assert_eq(pthread_create(&builder, NULL, build_on_thread, &job), 0);
  pthread_join(builder, NULL);
  cr_assert_eq(job.status, SL_OK, "%s", job.err.message);
  test_run run = {
      .engine = job.engine, .own_engine = true, .spec = job.spec, .pipeline = job.pipeline};
  run_start(&run);
  run_wait(&run);
  cr_assert_eq(stats_of(&run, "out").events_in, 100);
  run_free(&run);
  free(yaml);
}
