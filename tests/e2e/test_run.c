/*
 * `sluice run` and `sluice test` as a user runs them: pipeline files and quick mode,
 * fan-in and fan-out, error routes, draining on SIGTERM, interpolation and secrets.
 */
#include <signal.h>

#include "../support/e2e.h"
#include "../support/fixture.h"

#define EX(name) example_path(name)

Test(run, stdin_through_a_processor_to_stdout) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "in.txt", "hello\nworld\n");
  e2e_write(dir, "p.yaml",
            "name: contract\n"
            "nodes:\n"
            "  - {id: in, type: stdin}\n"
            "  - {id: upper, type: wasm, module: %s, inputs: [in]}\n"
            "  - {id: out, type: stdout, inputs: [upper]}\n",
            EX("upper"));
  e2e_result r = e2e_sluice(dir, "run p.yaml < in.txt");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "HELLO\nWORLD\n");
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(run, generate_ends_the_run_and_keeps_order) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: gen, type: generate, count: 5000, payload: 'n{{seq}}'}\n"
            "  - {id: pass, type: wasm, module: %s, inputs: [gen]}\n"
            "  - {id: out, type: stdout, inputs: [pass]}\n",
            EX("passthrough"));
  e2e_result r = e2e_sluice(dir, "run p.yaml");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_eq(e2e_count_lines(r.out), 5000);
  char *line = r.out;
  for (int i = 1; i <= 5000; i++) {
    char expected[32];
    int n = snprintf(expected, sizeof expected, "n%d\n", i);
    cr_assert(strncmp(line, expected, (size_t)n) == 0, "event %d out of order: %.20s", i, line);
    line += n;
  }
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(run, fan_in_and_fan_out) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "in.txt", "a\nb\n");
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: typed, type: stdin}\n"
            "  - {id: ticks, type: generate, count: 3, payload: 't{{seq}}'}\n"
            "  - {id: upper, type: wasm, module: %s, inputs: [typed, ticks]}\n"
            "  - {id: screen, type: stdout, inputs: [upper]}\n"
            "  - {id: journal, type: log, inputs: [upper]}\n",
            EX("upper"));
  e2e_result r = e2e_sluice(dir, "run p.yaml < in.txt");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_eq(e2e_count_lines(r.out), 5, "stdout: %s", r.out);
  const char *words[] = {"A\n", "B\n", "T1\n", "T2\n", "T3\n"};
  for (size_t i = 0; i < 5; i++)
    cr_assert(strstr(r.out, words[i]), "missing %s in %s", words[i], r.out);
  const char *logged[] = {"[journal] info: A", "[journal] info: B", "[journal] info: T1",
                          "[journal] info: T2", "[journal] info: T3"};
  for (size_t i = 0; i < 5; i++)
    cr_assert(strstr(r.err, logged[i]), "missing %s in %s", logged[i], r.err);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(run, failed_events_go_to_the_errors_output_while_others_flow) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "in.txt", "one\nunreachable\ntwo\ndiv0\nthree\n");
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: in, type: stdin}\n"
            "  - {id: traps, type: wasm, module: %s, inputs: [in]}\n"
            "  - {id: good, type: stdout, inputs: [traps]}\n"
            "  - {id: bad, type: log, inputs: [traps.errors]}\n",
            guest_path("traps"));
  e2e_result r = e2e_sluice(dir, "run p.yaml < in.txt");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert(strstr(r.out, "one\n") && strstr(r.out, "two\n") && strstr(r.out, "three\n"), "%s",
            r.out);
  cr_assert_eq(e2e_count_lines(r.out), 3, "%s", r.out);
  cr_assert(strstr(r.err, "[bad] info: unreachable error=unreachable instruction executed"), "%s",
            r.err);
  cr_assert(strstr(r.err, "fault=unreachable"), "%s", r.err);
  cr_assert(strstr(r.err, "[bad] info: div0 error=integer divide by zero"), "%s", r.err);
  cr_assert(strstr(r.err, "fault=divide-by-zero"), "%s", r.err);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(run, failed_events_without_a_reader_are_logged_and_counted) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "in.txt", "one\nunreachable\ntwo\n");
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: in, type: stdin}\n"
            "  - {id: traps, type: wasm, module: %s, inputs: [in]}\n"
            "  - {id: good, type: stdout, inputs: [traps]}\n",
            guest_path("traps"));
  e2e_result r = e2e_sluice(dir, "run p.yaml --stats < in.txt");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "one\ntwo\n");
  cr_assert(strstr(r.err, "nothing reads 'traps.errors'"), "%s", r.err);
  cr_assert(strstr(r.err, "node traps        in 3  out 2  errors 1"), "%s", r.err);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

/* Every generated sequence number 1..n exactly once, in order. */
static size_t check_sequence(const char *out) {
  size_t expected = 1;
  for (const char *line = out; *line;) {
    char *end;
    unsigned long got = strtoul(line, &end, 10);
    cr_assert(*end == '\n', "malformed line near '%.20s'", line);
    cr_assert_eq(got, expected, "expected %zu, got %lu (lost or duplicated)", expected, got);
    expected++;
    line = end + 1;
  }
  return expected - 1;
}

Test(run, sigterm_drains_without_loss_or_duplicates) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: gen, type: generate, rate: 20000, payload: '{{seq}}'}\n"
            "  - {id: pass, type: wasm, module: %s, inputs: [gen]}\n"
            "  - {id: out, type: stdout, inputs: [pass]}\n",
            EX("passthrough"));
  pid_t pid = e2e_spawn(dir, "run p.yaml --stats");
  char out_path[512];
  snprintf(out_path, sizeof out_path, "%s/.stdout", dir);
  cr_assert(e2e_wait_lines(out_path, 2000, 20000), "the pipeline produced too little");
  kill(pid, SIGTERM);
  int sig;
  int code = e2e_wait(pid, &sig);
  char *out = e2e_read(out_path);
  char err_path[512];
  snprintf(err_path, sizeof err_path, "%s/.stderr", dir);
  char *err = e2e_read(err_path);
  cr_assert_eq(code, 0, "exit %d signal %d: %s", code, sig, err);
  size_t n = check_sequence(out);
  cr_assert(n >= 2000);
  char stats[128];
  snprintf(stats, sizeof stats, "node out          in %zu  out %zu", n, n);
  cr_assert(strstr(err, stats), "stats disagree with the output (%zu lines): %s", n, err);
  free(out);
  free(err);
  e2e_rmdir(dir);
}

Test(run, quick_mode_from_flags_and_environment) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "in.txt", "a b\n");
  e2e_result r = e2e_sluice(dir, "run --source stdin --wasm %s --wasm %s --sink stdout < in.txt",
                            EX("upper"), EX("split"));
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "A B\n", "split's default separator is ','");
  e2e_result_free(&r);
  r = e2e_sluice(dir, "run --wasm %s < in.txt", EX("upper"));
  cr_assert_eq(r.exit_code, 2, "without a source or sink: %s", r.err);
  cr_assert(strstr(r.err, "give a pipeline file, or --source and --sink"), "%s", r.err);
  e2e_result_free(&r);
  setenv("SOURCE_URI", "stdin", 1);
  setenv("SINK_URI", "stdout", 1);
  r = e2e_sluice(dir, "run --wasm %s < in.txt", EX("upper"));
  unsetenv("SOURCE_URI");
  unsetenv("SINK_URI");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "A B\n");
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(run, interpolation_from_the_environment) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - id: gen\n"
            "    type: generate\n"
            "    count: ${COUNT:-2}\n"
            "    payload: ${GREETING:?set GREETING}\n"
            "  - {id: out, type: stdout, inputs: [gen]}\n");
  e2e_result r = e2e_sluice(dir, "run p.yaml");
  cr_assert_eq(r.exit_code, 2);
  cr_assert(strstr(r.err, "p.yaml:5:") && strstr(r.err, "GREETING: set GREETING"), "%s", r.err);
  e2e_result_free(&r);
  setenv("GREETING", "hey", 1);
  setenv("COUNT", "3", 1);
  r = e2e_sluice(dir, "run p.yaml");
  unsetenv("GREETING");
  unsetenv("COUNT");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  cr_assert(strstr(r.out, "hey\nhey\nhey\n"), "%s", r.out);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(run, a_module_that_does_not_load_names_the_node) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "junk.wasm", "not wasm at all");
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: in, type: stdin}\n"
            "  - {id: broken, type: wasm, module: junk.wasm, inputs: [in]}\n"
            "  - {id: out, type: stdout, inputs: [broken]}\n");
  e2e_result r = e2e_sluice(dir, "run p.yaml < /dev/null");
  cr_assert_eq(r.exit_code, 2, "stderr: %s", r.err);
  cr_assert(strstr(r.err, "p.yaml:3:") && strstr(r.err, "node 'broken'"), "%s", r.err);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(test_command, passes_and_fails_with_a_diff) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: in, type: stdin}\n"
            "  - {id: upper, type: wasm, module: %s, inputs: [in]}\n"
            "  - {id: out, type: stdout, inputs: [upper]}\n"
            "tests:\n"
            "  - name: shouts\n"
            "    inputs: {in: [hi, there]}\n"
            "    expect: {out: [HI, THERE]}\n"
            "  - name: wrong on purpose\n"
            "    inputs: {in: [a, b, c]}\n"
            "    expect: {out: [A, X, C]}\n",
            EX("upper"));
  e2e_result r = e2e_sluice(dir, "test p.yaml --only shouts");
  cr_assert_eq(r.exit_code, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "PASS  shouts"), "%s", r.out);
  e2e_result_free(&r);
  r = e2e_sluice(dir, "test p.yaml");
  cr_assert_eq(r.exit_code, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "FAIL  wrong on purpose"), "%s", r.out);
  cr_assert(strstr(r.out, "at 'out': expected 3 events, got 3"), "%s", r.out);
  cr_assert(strstr(r.out, "    - \"X\"\n    + \"B\"\n") ||
                strstr(r.out, "    + \"B\"\n    - \"X\"\n"),
            "%s", r.out);
  cr_assert(strstr(r.out, "2 cases, 1 passed, 1 failed"), "%s", r.out);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(test_command, checks_the_errors_output_and_metadata) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "p.yaml",
            "nodes:\n"
            "  - {id: in, type: stdin}\n"
            "  - {id: traps, type: wasm, module: %s, inputs: [in]}\n"
            "  - {id: out, type: stdout, inputs: [traps]}\n"
            "tests:\n"
            "  - name: routes failures\n"
            "    inputs: {in: [ok, div0]}\n"
            "    expect:\n"
            "      out: [ok]\n"
            "      traps.errors:\n"
            "        - {payload: div0, meta: {fault: divide-by-zero}}\n",
            guest_path("traps"));
  e2e_result r = e2e_sluice(dir, "test p.yaml");
  cr_assert_eq(r.exit_code, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "PASS  routes failures"), "%s", r.out);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(run, a_secret_never_appears_in_output_or_logs) {
  char *dir = e2e_tmpdir();
  e2e_write(dir, "token.txt", "s3cr3t-t0ken\n");
  /* Port 9 (discard) on loopback refuses: the sink fails and logs the URL it used. */
  e2e_write(dir, "p.yaml",
            "secrets:\n"
            "  token: {file: token.txt}\n"
            "nodes:\n"
            "  - {id: gen, type: generate, count: 1, payload: 'hello'}\n"
            "  - id: post\n"
            "    type: http\n"
            "    url: 'http://127.0.0.1:9/ingest?key=${secret:token}'\n"
            "    headers: {Authorization: 'Bearer ${secret:token}'}\n"
            "    max_retries: 0\n"
            "    inputs: [gen]\n");
  e2e_result r = e2e_sluice(dir, "run p.yaml --stats");
  cr_assert_eq(r.exit_code, 1, "the event could not be delivered: %s", r.err);
  cr_assert(strstr(r.err, "could not be delivered"), "%s", r.err);
  cr_assert(strstr(r.err, "key=***"), "the URL should be logged with the secret masked: %s", r.err);
  cr_assert_null(strstr(r.err, "s3cr3t"), "%s", r.err);
  cr_assert_null(strstr(r.out, "s3cr3t"), "%s", r.out);
  e2e_result_free(&r);
  /* Nor in validation errors about a value that contains it. */
  e2e_write(dir, "q.yaml",
            "secrets:\n"
            "  token: {file: token.txt}\n"
            "nodes:\n"
            "  - {id: gen, type: generate, count: '${secret:token}'}\n"
            "  - {id: out, type: stdout, inputs: [gen]}\n");
  r = e2e_sluice(dir, "validate q.yaml");
  cr_assert_eq(r.exit_code, 2, "%s", r.err);
  cr_assert(strstr(r.err, "value hidden"), "%s", r.err);
  cr_assert_null(strstr(r.err, "s3cr3t"), "%s", r.err);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(types, the_generated_reference_matches_the_tables) {
  char *dir = e2e_tmpdir();
  e2e_result r = e2e_sluice(dir, "types --markdown");
  cr_assert_eq(r.exit_code, 0);
  char *doc = e2e_read("docs/reference/node-types.md"); /* make test runs in the repository */
  cr_assert_str_eq(r.out, doc, "docs/reference/node-types.md is stale: run `make docs`");
  free(doc);
  e2e_result_free(&r);
  r = e2e_sluice(dir, "types file");
  cr_assert_eq(r.exit_code, 0);
  cr_assert(strstr(r.out, "file (source)") && strstr(r.out, "file (sink)"), "%s", r.out);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

/* The http sink of one sluice posting to the http source of another, into a file. */
Test(run, http_sink_to_http_source_to_file) {
  char *dir = e2e_tmpdir();
  int port = e2e_free_port();
  pid_t receiver = e2e_spawn(
      dir, "run --source http://127.0.0.1:%d/in?split=lines --wasm %s --sink file:got.txt", port,
      EX("upper"));
  cr_assert(e2e_wait_port(port, 20000), "the receiving sluice did not start listening");
  e2e_write(dir, "send.yaml",
            "nodes:\n"
            "  - {id: gen, type: generate, count: 500, payload: 'event {{seq}}'}\n"
            "  - {id: post, type: http, url: 'http://127.0.0.1:%d/in', batch: 50, inputs: [gen]}\n"
            "  - {id: one, type: http, url: 'http://127.0.0.1:%d/in', inputs: [gen]}\n",
            port, port);
  e2e_result r = e2e_sluice(dir, "run send.yaml --stats");
  cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
  char stats[128];
  snprintf(stats, sizeof stats, "node %-12s in 500  out 500  errors 0", "post");
  cr_assert(strstr(r.err, stats), "%s", r.err);
  e2e_result_free(&r);
  kill(receiver, SIGTERM);
  cr_assert_eq(e2e_wait(receiver, NULL), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/got.txt", dir);
  char *got = e2e_read(path);
  cr_assert_eq(e2e_count_lines(got), 1000, "500 events by two sinks: %zu lines",
               e2e_count_lines(got));
  cr_assert(strstr(got, "EVENT 1\n") && strstr(got, "EVENT 500\n"), "%.200s", got);
  free(got);
  e2e_rmdir(dir);
}

/* A sink that can never deliver (nothing listens on the port; retries forever). */
static const char *stuck_pipeline(char *dir, const char *extra) {
  return e2e_write(
      dir, "stuck.yaml",
      "%s"
      "nodes:\n"
      "  - {id: gen, type: generate, count: 3}\n"
      "  - {id: post, type: http, url: 'http://127.0.0.1:%d/x', backoff: 10ms, inputs: [gen]}\n"
      "  - {id: sink, type: null, inputs: [gen]}\n",
      extra, e2e_free_port());
}

Test(run, drain_gives_up_after_drain_timeout) {
  char *dir = e2e_tmpdir();
  stuck_pipeline(dir, "drain_timeout: 300ms\n");
  pid_t pid = e2e_spawn(dir, "run stuck.yaml");
  usleep(300 * 1000);
  kill(pid, SIGTERM);
  int code = e2e_wait(pid, NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/.stderr", dir);
  char *err = e2e_read(path);
  cr_assert_eq(code, 1, "%s", err);
  cr_assert(strstr(err, "gave up draining after 300 ms"), "%s", err);
  free(err);
  e2e_rmdir(dir);
}

Test(run, a_second_signal_exits_at_once) {
  char *dir = e2e_tmpdir();
  stuck_pipeline(dir, "");
  pid_t pid = e2e_spawn(dir, "run stuck.yaml");
  usleep(300 * 1000);
  kill(pid, SIGINT);
  usleep(200 * 1000);
  kill(pid, SIGINT);
  int code = e2e_wait(pid, NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/.stderr", dir);
  char *err = e2e_read(path);
  cr_assert_eq(code, 130, "%s", err);
  cr_assert(strstr(err, "again: exiting without draining"), "%s", err);
  free(err);
  e2e_rmdir(dir);
}

Test(run, null_sink_accepts_everything) {
  char *dir = e2e_tmpdir();
  e2e_result r =
      e2e_sluice(dir, "run --source 'generate://?count=20000' --wasm %s --sink null --stats",
                 EX("passthrough"));
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  char stats[128];
  snprintf(stats, sizeof stats, "node %-12s in 20000  out 20000  errors 0", "sink");
  cr_assert(strstr(r.err, stats), "%s", r.err);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}
