/*
 * The binary as a user runs it: `sluice invoke` and `sluice compile`, their output and
 * their exit codes (contracts.md §1: 0 ok, 1 runtime failure, 2 usage/configuration).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../support/fixture.h"

typedef struct run_result {
  int exit_code;
  char out[8192];
  char err[8192];
} run_result;

static void slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
  buf[n] = '\0';
  if (f) fclose(f);
}

/* Runs `sluice ARGS` through the shell (args are trusted test text). */
static run_result sluice(const char *args) {
  static run_result r;
  const char *bin = getenv("SLUICE_BIN");
  cr_assert(bin, "SLUICE_BIN is not set: run the tests with `make test`");
  char out_path[64], err_path[64], cmd[16384];
  snprintf(out_path, sizeof out_path, "/tmp/sluice-e2e-%d.out", (int)getpid());
  snprintf(err_path, sizeof err_path, "/tmp/sluice-e2e-%d.err", (int)getpid());
  snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", bin, args, out_path, err_path);
  int status = system(cmd);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  slurp(out_path, r.out, sizeof r.out);
  slurp(err_path, r.err, sizeof r.err);
  remove(out_path);
  remove(err_path);
  return r;
}

Test(cli, invoke_upper_example_prints_HELLO) {
  char args[12288];
  snprintf(args, sizeof args, "invoke %s --payload hello", example_path("upper"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "HELLO\n");
}

Test(cli, invoke_prints_one_line_per_event_with_metadata) {
  char args[12288];
  snprintf(args, sizeof args, "invoke %s --payload a,b,,c --meta source=test --show-meta",
           example_path("split"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert(strncmp(r.out, "a\n", 2) == 0, "%s", r.out);
  cr_assert(strstr(r.out, "  source=test\n"), "%s", r.out);
  cr_assert(strstr(r.out, "\nb\n"), "%s", r.out);
  cr_assert(strstr(r.out, "\nc\n"), "%s", r.out);
}

Test(cli, invoke_filter_drops_by_config) {
  char args[12288];
  snprintf(args, sizeof args,
           "invoke %s --payload '{\"level\":\"debug\"}' && %s invoke %s --config "
           "drop_if_contains=secret --payload 'no secret here'",
           example_path("filter"), getenv("SLUICE_BIN"), example_path("filter"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "", "both events should have been dropped: %s", r.out);
}

Test(cli, invoke_redact_masks_fields) {
  char args[12288];
  snprintf(
      args, sizeof args,
      "invoke %s --payload '{\"user\":\"ann\",\"password\":\"hunter2\",\"n\":{\"token\":\"t\"}}'",
      example_path("redact"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert(strstr(r.out, "\"user\":\"ann\""), "%s", r.out);
  cr_assert_null(strstr(r.out, "hunter2"), "%s", r.out);
  cr_assert_null(strstr(r.out, "\"t\""), "%s", r.out);
}

Test(cli, invoke_rust_and_assemblyscript_examples) {
  const char *names[] = {"upper_rust", "upper_as"};
  for (int i = 0; i < 2; i++) {
    char args[12288];
    snprintf(args, sizeof args, "invoke %s --payload hello", example_path(names[i]));
    run_result r = sluice(args);
    cr_assert_eq(r.exit_code, 0, "%s: stderr: %s", names[i], r.err);
    cr_assert(strncmp(r.out, "HELLO", 5) == 0, "%s: %s", names[i], r.out);
  }
}

Test(cli, invoke_trap_is_a_typed_error_with_exit_1) {
  char args[12288];
  snprintf(args, sizeof args, "invoke %s --payload div0", guest_path("traps"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 1);
  cr_assert_str_eq(r.out, "");
  cr_assert(strstr(r.err, "error: divide-by-zero: "), "%s", r.err);
}

Test(cli, invoke_processor_error_shows_its_message) {
  char args[12288];
  snprintf(args, sizeof args, "invoke %s --payload nope", guest_path("fail"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 1);
  cr_assert(strstr(r.err, "error: processor-error: bad input: nope"), "%s", r.err);
}

Test(cli, invoke_time_limit_option) {
  char args[12288];
  snprintf(args, sizeof args, "invoke %s --payload loop --time-limit 20ms", guest_path("traps"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 1);
  cr_assert(strstr(r.err, "error: timeout: ") && strstr(r.err, "20 ms"), "%s", r.err);
}

Test(cli, invoke_bad_module_is_a_configuration_error) {
  char args[12288];
  snprintf(args, sizeof args, "invoke %s --payload x", guest_path("unknown_import"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "`env`.`mystery`"), "%s", r.err);
}

Test(cli, usage_errors_exit_2) {
  cr_assert_eq(sluice("").exit_code, 2);
  cr_assert_eq(sluice("frobnicate").exit_code, 2);
  cr_assert_eq(sluice("invoke").exit_code, 2);
  cr_assert_eq(sluice("invoke x.wasm --memory lots").exit_code, 2);
  run_result r = sluice("invoke --help");
  cr_assert_eq(r.exit_code, 0);
  cr_assert(strstr(r.out, "--payload TEXT"));
  cr_assert_eq(sluice("--help").exit_code, 0);
}

Test(cli, compile_prints_time_and_artifact) {
  char args[12288];
  snprintf(args, sizeof args, "compile %s", guest_path("counter"));
  run_result r = sluice(args);
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert(strstr(r.out, "/cache/modules/") && strstr(r.out, ".art"), "%s", r.out);
  cr_assert(strstr(r.err, " ms"), "%s", r.err);
}
