/*
 * `sluice validate` as a user runs it: the ok line and exit 0, every problem on stderr
 * with exit 2, and modules that fail to load named by their node.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/e2e.h"
#include "../support/fixture.h"

static char *work_dir;

static void make_work_dir(void) { work_dir = e2e_tmpdir(); }
static void remove_work_dir(void) { e2e_rmdir(work_dir); }

TestSuite(validate, .init = make_work_dir, .fini = remove_work_dir);

static void put(const char *name, const char *text) { e2e_write(work_dir, name, "%s", text); }

/* A three-node pipeline around module `module`. */
static void put_pipeline(const char *name, const char *module) {
  char yaml[8192];
  snprintf(yaml, sizeof yaml,
           "name: demo\n"
           "nodes:\n"
           "  - {id: in, type: stdin}\n"
           "  - id: upper\n"
           "    type: wasm\n"
           "    module: %s\n"
           "    inputs: [in]\n"
           "  - {id: out, type: stdout, inputs: [upper]}\n"
           "tests:\n"
           "  - name: uppercases\n"
           "    inputs: {in: [hello]}\n"
           "    expect: {out: [HELLO]}\n"
           "  - name: empty\n"
           "    inputs: {in: ['']}\n"
           "    expect: {out: ['']}\n",
           module);
  put(name, yaml);
}

Test(validate, valid_pipeline_prints_the_ok_line) {
  put_pipeline("demo.yaml", example_path("upper"));
  e2e_result r = e2e_sluice(work_dir, "validate demo.yaml");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "demo.yaml: ok: pipeline 'demo', 3 nodes (1 source, 1 processor, 1 "
                          "sink), 2 tests\n");
  cr_assert_str_eq(r.err, "");
  e2e_result_free(&r);
}

Test(validate, problems_go_to_stderr_with_exit_2) {
  put("bad.yaml", "nodes:\n"
                  "  - {id: in, type: stdin}\n"
                  "  - {id: out, type: stdot, inputs: [in]}\n"
                  "  - {id: log, type: log, inputs: [uot]}\n");
  e2e_result r = e2e_sluice(work_dir, "validate bad.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_str_eq(r.out, "");
  cr_assert_str_eq(r.err, "bad.yaml:3:21: node 'out': unknown type 'stdot' (did you mean "
                          "'stdout'?)\n"
                          "bad.yaml:4:35: node 'log': input 'uot' is not a node (did you mean "
                          "'out'?)\n");
  e2e_result_free(&r);
}

Test(validate, yaml_syntax_errors_come_from_sluice_alone) {
  put("syn.yaml", "nodes: [\n  {id: in\n");
  e2e_result r = e2e_sluice(work_dir, "validate syn.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_str_eq(r.err, "syn.yaml:3:1: missing comma in flow mapping\n",
                   "libfyaml prints nothing itself");
  e2e_result_free(&r);
}

Test(validate, a_module_that_fails_to_load_names_its_node) {
  put("x.wasm", "junk");
  put_pipeline("x.yaml", "x.wasm");
  e2e_result r = e2e_sluice(work_dir, "validate x.yaml");
  cr_assert_eq(r.exit_code, 2, "stdout: %s stderr: %s", r.out, r.err);
  cr_assert_str_eq(r.out, "");
  char expected[PATH_MAX + 128];
  snprintf(expected, sizeof expected, "x.yaml:4:5: node 'upper': module %s/x.wasm: ", work_dir);
  cr_assert(strncmp(r.err, expected, strlen(expected)) == 0, "expected %s..., got %s", expected,
            r.err);
  cr_assert(strstr(r.err, "not a WebAssembly"), "%s", r.err);
  cr_assert_null(strstr(r.err + strlen(expected), work_dir), "the path is said once: %s", r.err);

  e2e_result_free(&r);
  r = e2e_sluice(work_dir, "validate --no-modules x.yaml");
  cr_assert_eq(r.exit_code, 0, "--no-modules skips loading: %s", r.err);
  cr_assert(strstr(r.out, "x.yaml: ok: "), "%s", r.out);
  e2e_result_free(&r);
}

Test(validate, a_missing_module_file) {
  put_pipeline("m.yaml", "missing.wasm");
  e2e_result r = e2e_sluice(work_dir, "validate m.yaml");
  cr_assert_eq(r.exit_code, 2);
  char expected[PATH_MAX + 128];
  snprintf(expected, sizeof expected,
           "m.yaml:4:5: node 'upper': module %s/missing.wasm: No such file or directory\n",
           work_dir);
  cr_assert_str_eq(r.err, expected);
  e2e_result_free(&r);
}

Test(validate, usage_and_unreadable_files) {
  e2e_result r = e2e_sluice(work_dir, "validate --help");
  cr_assert_eq(r.exit_code, 0);
  cr_assert(strncmp(r.out, "Usage: sluice validate", 22) == 0, "%s", r.out);
  e2e_result_free(&r);
  r = e2e_sluice(work_dir, "validate");
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "Usage: sluice validate"), "%s", r.err);
  e2e_result_free(&r);
  r = e2e_sluice(work_dir, "validate --bogus x.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "unknown option '--bogus'"), "%s", r.err);
  e2e_result_free(&r);
  r = e2e_sluice(work_dir, "validate nope.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_str_eq(r.err, "cannot read nope.yaml: No such file or directory\n");
  e2e_result_free(&r);
  r = e2e_sluice(work_dir, "--help");
  cr_assert_eq(r.exit_code, 0);
  cr_assert(strstr(r.out, "  validate "), "%s", r.out);
  e2e_result_free(&r);
}

Test(validate, secrets_stay_hidden) {
  put("s.yaml", "secrets: {T: {env: SLUICE_TEST_SECRET}}\n"
                "nodes:\n"
                "  - {id: in, type: generate, count: '${secret:T}'}\n"
                "  - {id: out, type: stdout, inputs: [in]}\n");
  e2e_result r = e2e_sluice(work_dir, "validate s.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "secret 'T': environment variable SLUICE_TEST_SECRET is not set"), "%s",
            r.err);
  setenv("SLUICE_TEST_SECRET", "hunter2", 1);
  e2e_result_free(&r);
  r = e2e_sluice(work_dir, "validate s.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_null(strstr(r.err, "hunter2"), "%s", r.err);
  cr_assert_str_eq(r.err, "s.yaml:3:37: count: expected an integer (value hidden: it contains a "
                          "secret)\n");
  e2e_result_free(&r);
}
