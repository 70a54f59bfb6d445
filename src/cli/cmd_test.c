/*
 * cmd_test.c - `sluice test PIPELINE.yaml`: runs the test cases declared in the pipeline's
 * `tests:` section (see sl_pipeline_run_test) and prints PASS/FAIL with a diff.
 * Exit 0 when every case passes, 1 when one fails, 2 for a configuration problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sluice/pipeline.h"

static void usage(FILE *out) {
  fprintf(out,
          "Usage: sluice test PIPELINE.yaml [--only NAME]\n"
          "\n"
          "Runs the cases in the pipeline's `tests:` section: each case's input events are fed to\n"
          "its sources, the real processors run, and the events reaching each expected node are\n"
          "compared with the expectation. Real sources and sinks are not started.\n"
          "\n"
          "  --only NAME   run only the case called NAME\n");
}

int sl_cmd_test(int argc, char **argv) {
  const char *file = NULL, *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else if (argv[i][0] == '-' || file) {
      fprintf(stderr, "sluice test: unexpected argument '%s' (see sluice test --help)\n", argv[i]);
      return SL_EXIT_USAGE;
    } else {
      file = argv[i];
    }
  }
  if (!file) {
    usage(stderr);
    return SL_EXIT_USAGE;
  }
  sl_error err = {{0}};
  sl_pipeline_spec *spec = NULL;
  sl_engine *engine = NULL;
  sl_status st = sl_pipeline_load(file, NULL, &spec, &err);
  if (st == SL_OK && spec->test_count == 0)
    st = sl_error_set(&err, SL_CONFIG,
                      "%s: no test cases (add a `tests:` section; see docs/reference/pipeline.md)",
                      file);
  if (st == SL_OK) {
    sl_engine_options eopts = {.log = sl__cli_pipeline_log, .log_user = spec};
    st = sl_engine_new(&eopts, &engine, &err);
  }
  if (st != SL_OK) {
    fprintf(stderr, "%s\n", err.message);
    if (spec) sl_pipeline_spec_free(spec);
    return sl_exit_code_for(st);
  }
  size_t ran = 0, failed = 0;
  int exit_code = SL_EXIT_OK;
  sl_pipeline_options popts = {.log = sl__cli_pipeline_log, .log_user = spec};
  for (size_t t = 0; t < spec->test_count; t++) {
    const sl_test_case *tc = &spec->tests[t];
    if (only && strcmp(only, tc->name) != 0) continue;
    ran++;
    bool passed = false;
    char *report = NULL;
    size_t report_len = 0;
    st = sl_pipeline_run_test(engine, spec, t, &popts, &passed, &report, &report_len, &err);
    if (st != SL_OK) {
      sl_pipeline_spec_redact(spec, err.message, sizeof err.message);
      printf("ERROR %s\n  %s\n", tc->name, err.message);
      failed++;
      if (exit_code == SL_EXIT_OK) exit_code = sl_exit_code_for(st);
    } else if (passed) {
      printf("PASS  %s\n", tc->name);
    } else {
      printf("FAIL  %s (%s:%d)\n%s", tc->name, tc->loc.file, tc->loc.line, report ? report : "");
      failed++;
      exit_code = SL_EXIT_FAILURE;
    }
    free(report);
  }
  if (only && ran == 0) {
    fprintf(stderr, "sluice test: no case named '%s' in %s\n", only, file);
    exit_code = SL_EXIT_USAGE;
  } else {
    printf("%zu case%s, %zu passed, %zu failed\n", ran, ran == 1 ? "" : "s", ran - failed, failed);
  }
  sl_engine_destroy(engine);
  sl_pipeline_spec_free(spec);
  return exit_code;
}
