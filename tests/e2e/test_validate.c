/*
 * `sluice validate` as a user runs it: the ok line and exit 0, every problem on stderr
 * with exit 2, and modules that fail to load named by their node.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/fixture.h"

typedef struct run_result {
  int exit_code;
  char out[8192];
  char err[8192];
} run_result;

static char work_dir[PATH_MAX];

static void make_work_dir(void) {
  snprintf(work_dir, sizeof work_dir, "/tmp/sluice-validate-XXXXXX");
  cr_assert(mkdtemp(work_dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  return remove(path);
}

static void remove_work_dir(void) { nftw(work_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

TestSuite(validate, .init = make_work_dir, .fini = remove_work_dir);

static void put(const char *name, const char *text) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", work_dir, name);
  FILE *f = fopen(path, "w");
  cr_assert(f, "cannot create %s", path);
  fputs(text, f);
  fclose(f);
}

static void slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = '\0';
  if (f) fclose(f);
}

/* Runs `sluice ARGS` in the work folder (args are trusted test text). */
static run_result sluice_in_dir(const char *args) {
  static run_result r;
  const char *bin = getenv("SLUICE_BIN");
  cr_assert(bin, "SLUICE_BIN is not set: run the tests with `make test`");
  char out_path[PATH_MAX + 16], err_path[PATH_MAX + 16], cmd[16384];
  snprintf(out_path, sizeof out_path, "%s/.out", work_dir);
  snprintf(err_path, sizeof err_path, "%s/.err", work_dir);
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s' 2>'%s'", work_dir, bin, args, out_path,
           err_path);
  int status = system(cmd);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  slurp(out_path, r.out, sizeof r.out);
  slurp(err_path, r.err, sizeof r.err);
  remove(out_path);
  remove(err_path);
  return r;
}

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
  run_result r = sluice_in_dir("validate demo.yaml");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "demo.yaml: ok: pipeline 'demo', 3 nodes (1 source, 1 processor, 1 "
                          "sink), 2 tests\n");
  cr_assert_str_eq(r.err, "");
}

Test(validate, problems_go_to_stderr_with_exit_2) {
  put("bad.yaml", "nodes:\n"
                  "  - {id: in, type: stdin}\n"
                  "  - {id: out, type: stdot, inputs: [in]}\n"
                  "  - {id: log, type: log, inputs: [uot]}\n");
  run_result r = sluice_in_dir("validate bad.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_str_eq(r.out, "");
  cr_assert_str_eq(r.err, "bad.yaml:3:21: node 'out': unknown type 'stdot' (did you mean "
                          "'stdout'?)\n"
                          "bad.yaml:4:35: node 'log': input 'uot' is not a node (did you mean "
                          "'out'?)\n");
}

Test(validate, yaml_syntax_errors_come_from_sluice_alone) {
  put("syn.yaml", "nodes: [\n  {id: in\n");
  run_result r = sluice_in_dir("validate syn.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_str_eq(r.err, "syn.yaml:3:1: missing comma in flow mapping\n",
                   "libfyaml prints nothing itself");
}

Test(validate, a_module_that_fails_to_load_names_its_node) {
  put("x.wasm", "junk");
  put_pipeline("x.yaml", "x.wasm");
  run_result r = sluice_in_dir("validate x.yaml");
  cr_assert_eq(r.exit_code, 2, "stdout: %s stderr: %s", r.out, r.err);
  cr_assert_str_eq(r.out, "");
  char expected[PATH_MAX + 128];
  snprintf(expected, sizeof expected, "x.yaml:4:5: node 'upper': module %s/x.wasm: ", work_dir);
  cr_assert(strncmp(r.err, expected, strlen(expected)) == 0, "expected %s..., got %s", expected,
            r.err);
  cr_assert(strstr(r.err, "not a WebAssembly"), "%s", r.err);
  cr_assert_null(strstr(r.err + strlen(expected), work_dir), "the path is said once: %s", r.err);

  r = sluice_in_dir("validate --no-modules x.yaml");
  cr_assert_eq(r.exit_code, 0, "--no-modules skips loading: %s", r.err);
  cr_assert(strstr(r.out, "x.yaml: ok: "), "%s", r.out);
}

Test(validate, a_missing_module_file) {
  put_pipeline("m.yaml", "missing.wasm");
  run_result r = sluice_in_dir("validate m.yaml");
  cr_assert_eq(r.exit_code, 2);
  char expected[PATH_MAX + 128];
  snprintf(expected, sizeof expected,
           "m.yaml:4:5: node 'upper': module %s/missing.wasm: No such file or directory\n",
           work_dir);
  cr_assert_str_eq(r.err, expected);
}

Test(validate, usage_and_unreadable_files) {
  run_result r = sluice_in_dir("validate --help");
  cr_assert_eq(r.exit_code, 0);
  cr_assert(strncmp(r.out, "Usage: sluice validate", 22) == 0, "%s", r.out);
  r = sluice_in_dir("validate");
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "Usage: sluice validate"), "%s", r.err);
  r = sluice_in_dir("validate --bogus x.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "unknown option '--bogus'"), "%s", r.err);
  r = sluice_in_dir("validate nope.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_str_eq(r.err, "cannot read nope.yaml: No such file or directory\n");
  r = sluice_in_dir("--help");
  cr_assert_eq(r.exit_code, 0);
  cr_assert(strstr(r.out, "  validate "), "%s", r.out);
}

Test(validate, secrets_stay_hidden) {
  put("s.yaml", "secrets: {T: {env: SLUICE_TEST_SECRET}}\n"
                "nodes:\n"
                "  - {id: in, type: generate, count: '${secret:T}'}\n"
                "  - {id: out, type: stdout, inputs: [in]}\n");
  run_result r = sluice_in_dir("validate s.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "secret 'T': environment variable SLUICE_TEST_SECRET is not set"), "%s",
            r.err);
  setenv("SLUICE_TEST_SECRET", "hunter2", 1);
  r = sluice_in_dir("validate s.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert_null(strstr(r.err, "hunter2"), "%s", r.err);
  cr_assert_str_eq(r.err, "s.yaml:3:37: count: expected an integer (value hidden: it contains a "
                          "secret)\n");
}
