/*
 * The client commands against a real daemon, as a user runs them: every test starts its
 * own `sluice up --listen 127.0.0.1:PORT` with a fresh SLUICE_HOME (its compile cache
 * shared with the test run's, so modules are compiled once), runs `sluice deploy`, `ls`,
 * `get`, `rm`, `logs`, `tap`, `top`, `rollback` against it, and stops it with SIGTERM.
 * Two more check the messages a user sees when the daemon is not running and when the
 * token is wrong.
 *
 * Map: the daemon | client runs | pipelines | tests.
 *
 * The daemon is started here rather than through tests/support/daemon_fixture.h because
 * these tests also need the child to die with the test (PR_SET_PDEATHSIG), a clean exit
 * checked after SIGTERM, and the shared compile cache.
 */
#include <errno.h>
#include <jansson.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>

#include "../support/daemon_fixture.h"
#include "../support/e2e.h"
#include "../support/fixture.h"

/* --- the daemon ------------------------------------------------------------------- */

typedef daemon_fixture daemon_run;

static daemon_run daemon_under_test;

/* out = "a/b"; the test fails rather than truncate. */
static void join(char *out, size_t cap, const char *a, const char *b) {
  int n = snprintf(out, cap, "%s/%s", a, b);
  cr_assert(n > 0 && (size_t)n < cap, "path too long: %s/%s", a, b);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Starts `sluice ARGV...` with stdout and stderr in dir/NAME.out and dir/NAME.err; the
 * child dies with the test. */
static pid_t spawn(const char *dir, const char *name, const char *const *args) {
  char out[256], err[256];
  snprintf(out, sizeof out, "%s/%s.out", dir, name);
  snprintf(err, sizeof err, "%s/%s.err", dir, name);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr) || chdir(dir) != 0) _exit(127);
    const char *argv[16] = {e2e_bin()};
    for (size_t i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
    execv(argv[0], (char **)argv);
    _exit(127);
  }
  return pid;
}

/* Waits up to `ms` for `pid`; its exit code, 128 + signal, or -1 while it still runs. */
static int wait_exit(pid_t pid, long ms) {
  for (long waited = 0; waited <= ms; waited += 20) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    sleep_ms(20);
  }
  return -1;
}

/* A fresh folder and home and `sluice up` on a free port (support/daemon_fixture.h). */
static daemon_run *up_start(void) {
  daemon_run *d = &daemon_under_test;
  memset(d, 0, sizeof *d);
  daemon_start(d);
  return d;
}

/* SIGTERM: the daemon must drain and exit 0. */
static void up_stop(daemon_run *d) { daemon_finish(d); }

static void kill_leftover_daemon(void) {
  if (daemon_under_test.pid > 0) {
    kill(daemon_under_test.pid, SIGKILL);
    waitpid(daemon_under_test.pid, NULL, 0);
    daemon_under_test.pid = 0;
  }
}

TestSuite(cli_daemon, .fini = kill_leftover_daemon, .timeout = 120);

/* --- client runs ------------------------------------------------------------------ */

/* Runs `sluice ARGS` in the test's folder (shell text; a minute at most). */
__attribute__((format(printf, 2, 3))) static e2e_result cli(const daemon_run *d, const char *fmt,
                                                            ...) {
  char args[4096], cmd[8192], out[256], err[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  join(out, sizeof out, d->dir, "cli.out");
  join(err, sizeof err, d->dir, "cli.err");
  snprintf(cmd, sizeof cmd, "cd '%s' && timeout 60 '%s' %s >'%s' 2>'%s'", d->dir, e2e_bin(), args,
           out, err);
  int status = system(cmd);
  return (e2e_result){WIFEXITED(status) ? WEXITSTATUS(status) : -1, e2e_read(out), e2e_read(err)};
}

/* JSON output of a client, parsed (the test fails if it is not JSON). */
static json_t *parse(const char *text) {
  json_error_t jerr;
  json_t *value = json_loads(text, JSON_DECODE_ANY, &jerr);
  cr_assert(value, "not JSON (%s): %s", jerr.text, text);
  return value;
}

/* Polls `sluice ARGS` until its stdout contains `want` (10 s at most); its last result. */
static e2e_result cli_until(const daemon_run *d, const char *want, const char *args) {
  e2e_result r = {0};
  for (int tries = 0; tries < 100; tries++) {
    if (tries) {
      e2e_result_free(&r);
      sleep_ms(100);
    }
    r = cli(d, "%s", args);
    if (r.exit_code == 0 && strstr(r.out, want)) break;
  }
  return r;
}

static bool wait_file_lines(const daemon_run *d, const char *name, size_t lines) {
  char path[256];
  join(path, sizeof path, d->dir, name);
  return e2e_wait_lines(path, lines, 20000);
}

static char *read_in(const daemon_run *d, const char *name) {
  char path[256];
  join(path, sizeof path, d->dir, name);
  return e2e_read(path);
}

/* --- pipelines -------------------------------------------------------------------- */

/* Copies a built module into the test's folder, so pipelines can name it relatively
 * (what `sluice deploy` resolves and uploads). */
static void copy_module(const daemon_run *d, const char *from, const char *name) {
  char to[256];
  join(to, sizeof to, d->dir, name);
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  cr_assert(in && out, "copying %s to %s", from, to);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) cr_assert_eq(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
}

/* generate (count events of `payload`) -> upper.wasm -> file `out`. */
static void write_upper_pipeline(const daemon_run *d, const char *file, const char *name, int count,
                                 const char *payload, const char *out) {
  e2e_write(d->dir, file,
            "name: %s\n"
            "nodes:\n"
            "  - id: gen\n"
            "    type: generate\n"
            "    count: %d\n"
            "    payload: '%s'\n"
            "  - id: upper\n"
            "    type: wasm\n"
            "    module: upper.wasm\n"
            "    inputs: [gen]\n"
            "  - id: out\n"
            "    type: file\n"
            "    path: %s\n"
            "    inputs: [upper]\n",
            name, count, payload, out);
}

/* A pipeline that keeps going: generate forever (`rate` events a second) -> upper -> null. */
static void write_endless_pipeline(const daemon_run *d, const char *file, const char *name,
                                   int rate) {
  e2e_write(d->dir, file,
            "name: %s\n"
            "nodes:\n"
            "  - {id: gen, type: generate, count: 0, rate: %d, payload: 'e{{seq}}'}\n"
            "  - {id: upper, type: wasm, module: upper.wasm, inputs: [gen]}\n"
            "  - {id: out, type: null, inputs: [upper]}\n",
            name, rate);
}

static void deploy_ok(const daemon_run *d, const char *file) {
  e2e_result r = cli(d, "deploy %s", file);
  cr_assert_eq(r.exit_code, 0, "deploy %s: %s%s", file, r.out, r.err);
  e2e_result_free(&r);
}

/* --- tests ------------------------------------------------------------------------ */

Test(cli_daemon, deploy_uploads_modules_runs_and_redeploys) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  write_upper_pipeline(d, "p.yaml", "t-deploy", 3, "hello {{seq}}", "out.txt");

  e2e_result r = cli(d, "deploy p.yaml --server %s", d->url);
  cr_assert_eq(r.exit_code, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "deployed t-deploy version 1"), "%s", r.out);
  cr_assert(strstr(r.err, "upper.wasm: ready ("), "progress lines: %s", r.err);
  cr_assert(wait_file_lines(d, "out.txt", 3), "out.txt: %s", read_in(d, "out.txt"));
  char *out = read_in(d, "out.txt");
  cr_assert_str_eq(out, "HELLO 1\nHELLO 2\nHELLO 3\n");
  free(out);
  e2e_result_free(&r);

  /* A new version of the same pipeline: the next number, swapped in. */
  write_upper_pipeline(d, "p.yaml", "t-deploy", 2, "again {{seq}}", "out.txt");
  r = cli(d, "deploy p.yaml");
  cr_assert_eq(r.exit_code, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "deployed t-deploy version 2 ("), "%s", r.out);
  cr_assert(wait_file_lines(d, "out.txt", 5), "out.txt: %s", read_in(d, "out.txt"));
  out = read_in(d, "out.txt");
  cr_assert(strstr(out, "AGAIN 1\nAGAIN 2\n"), "%s", out);
  free(out);
  e2e_result_free(&r);
  up_stop(d);
}

/* Every source of an http pipeline can be shared, so a new version starts before the old
 * one drains, and deploy says so. */
Test(cli_daemon, redeploying_an_http_pipeline_says_overlap_swap) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  e2e_write(d->dir, "web.yaml",
            "name: t-web\n"
            "nodes:\n"
            "  - {id: in, type: http, listen: '127.0.0.1:%d', path: /in}\n"
            "  - {id: upper, type: wasm, module: upper.wasm, inputs: [in]}\n"
            "  - {id: out, type: null, inputs: [upper]}\n",
            e2e_free_port());
  e2e_result r = cli(d, "deploy web.yaml");
  cr_assert_eq(r.exit_code, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "deployed t-web version 1 (started, "), "%s", r.out);
  e2e_result_free(&r);
  r = cli(d, "deploy web.yaml");
  cr_assert_eq(r.exit_code, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "deployed t-web version 2 (overlap swap, "), "%s", r.out);
  cr_assert(strstr(r.err, "upper.wasm: ready (cached)"), "uploaded before: %s", r.err);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, deploy_reports_every_problem_and_exits_2) {
  daemon_run *d = up_start();
  e2e_write(d->dir, "bad.yaml",
            "name: t-bad\n"
            "nodes:\n"
            "  - {id: in, type: generate, count: 1}\n"
            "  - {id: out, type: no-such-sink, inputs: [in]}\n"
            "  - {id: other, type: file, inputs: [nowhere]}\n");
  e2e_result r = cli(d, "deploy bad.yaml");
  cr_assert_eq(r.exit_code, 2, "%s%s", r.out, r.err);
  cr_assert(strstr(r.err, "bad.yaml:4:"), "the unknown type's line: %s", r.err);
  cr_assert(strstr(r.err, "bad.yaml:5:"), "the second problem too: %s", r.err);
  e2e_result_free(&r);

  /* A module that is not there is named with its place in the file. */
  e2e_write(d->dir, "missing.yaml",
            "name: t-missing\n"
            "nodes:\n"
            "  - {id: in, type: generate, count: 1}\n"
            "  - {id: p, type: wasm, module: gone.wasm, inputs: [in]}\n"
            "  - {id: out, type: null, inputs: [p]}\n");
  r = cli(d, "deploy missing.yaml");
  cr_assert_eq(r.exit_code, 2, "%s%s", r.out, r.err);
  cr_assert(strstr(r.err, "missing.yaml:4:") && strstr(r.err, "gone.wasm"), "%s", r.err);
  e2e_result_free(&r);

  /* Nothing was deployed. */
  r = cli(d, "ls -o json");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  json_t *list = parse(r.out);
  cr_assert_eq(json_array_size(json_object_get(list, "pipelines")), 0, "%s", r.out);
  json_decref(list);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, ls_lists_pipelines_as_a_table_and_as_json) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  write_endless_pipeline(d, "a.yaml", "t-ls-a", 20);
  write_upper_pipeline(d, "b.yaml", "t-ls-b", 2, "b{{seq}}", "b.txt");
  deploy_ok(d, "a.yaml");
  deploy_ok(d, "b.yaml");

  e2e_result r = cli(d, "ls");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert(strncmp(r.out, "NAME", 4) == 0, "a header first: %s", r.out);
  const char *columns[] = {"VERSION", "STATUS", "NODES", "IN", "OUT", "ERRORS", "AGE"};
  for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++)
    cr_assert(strstr(r.out, columns[i]), "column %s: %s", columns[i], r.out);
  cr_assert(strstr(r.out, "\nt-ls-a ") && strstr(r.out, "\nt-ls-b "), "%s", r.out);
  cr_assert(strstr(r.out, "running"), "%s", r.out);
  e2e_result_free(&r);

  r = cli(d, "ls -o json");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  json_t *list = parse(r.out);
  json_t *pipelines = json_object_get(list, "pipelines");
  cr_assert_eq(json_array_size(pipelines), 2, "%s", r.out);
  bool a = false, b = false;
  size_t i;
  json_t *p;
  json_array_foreach(pipelines, i, p) {
    const char *name = json_string_value(json_object_get(p, "name"));
    a = a || (name && strcmp(name, "t-ls-a") == 0);
    b = b || (name && strcmp(name, "t-ls-b") == 0);
    cr_assert_eq(json_integer_value(json_object_get(p, "version")), 1);
  }
  cr_assert(a && b, "%s", r.out);
  json_decref(list);
  e2e_result_free(&r);

  r = cli(d, "ls -o xml");
  cr_assert_eq(r.exit_code, 2, "%s", r.err);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, get_shows_a_summary_the_exact_source_and_json) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  write_endless_pipeline(d, "p.yaml", "t-get", 20);
  deploy_ok(d, "p.yaml");

  e2e_result r = cli(d, "get t-get -o yaml");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  char *source = read_in(d, "p.yaml");
  cr_assert_str_eq(r.out, source, "-o yaml must give the deployed text back exactly");
  free(source);
  e2e_result_free(&r);

  r = cli(d, "get t-get -o json");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  json_t *p = parse(r.out);
  cr_assert_str_eq(json_string_value(json_object_get(p, "name")), "t-get");
  cr_assert_eq(json_integer_value(json_object_get(p, "version")), 1);
  cr_assert(json_is_string(json_object_get(p, "source")), "%s", r.out);
  cr_assert_eq(json_array_size(json_object_get(p, "nodes")), 3, "%s", r.out);
  json_decref(p);
  e2e_result_free(&r);

  r = cli(d, "get t-get");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert(strstr(r.out, "name:     t-get\n"), "%s", r.out);
  cr_assert(strstr(r.out, "version:  1\n"), "%s", r.out);
  cr_assert(strstr(r.out, "status:   "), "%s", r.out);
  cr_assert(strstr(r.out, "  upper  wasm") && strstr(r.out, "processor  sha256:"), "%s", r.out);
  e2e_result_free(&r);

  r = cli(d, "get no-such-pipeline");
  cr_assert_eq(r.exit_code, 1, "404 is a runtime failure: %s", r.err);
  cr_assert(strstr(r.err, "sluice get: "), "%s", r.err);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, rm_removes_and_a_second_rm_fails) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  write_endless_pipeline(d, "p.yaml", "t-rm", 20);
  deploy_ok(d, "p.yaml");

  e2e_result r = cli(d, "rm t-rm");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert_str_eq(r.out, "removed t-rm\n");
  e2e_result_free(&r);

  r = cli(d, "ls -o json");
  json_t *list = parse(r.out);
  cr_assert_eq(json_array_size(json_object_get(list, "pipelines")), 0, "%s", r.out);
  json_decref(list);
  e2e_result_free(&r);

  r = cli(d, "rm t-rm");
  cr_assert_eq(r.exit_code, 1, "%s", r.err);
  cr_assert(strstr(r.err, "sluice rm: "), "%s", r.err);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, logs_show_what_processors_print_and_follow) {
  daemon_run *d = up_start();
  copy_module(d, guest_path("wasi"), "wasi.wasm");
  e2e_write(d->dir, "p.yaml",
            "name: t-logs\n"
            "nodes:\n"
            "  - {id: gen, type: generate, count: 3, payload: 'x{{seq}}'}\n"
            "  - {id: talker, type: wasm, module: wasi.wasm, inputs: [gen]}\n"
            "  - {id: out, type: null, inputs: [talker]}\n");
  deploy_ok(d, "p.yaml");

  /* "HH:MM:SS.mmm [talker] stderr: to stderr" */
  e2e_result r = cli_until(d, "[talker] stderr: to stderr", "logs t-logs");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert(strstr(r.out, "[talker] stderr: to stderr\n"), "%s", r.out);
  cr_assert(r.out[2] == ':' && r.out[5] == ':' && r.out[8] == '.', "a clock first: %s", r.out);
  e2e_result_free(&r);

  r = cli(d, "logs t-logs --node talker --tail 1 -o json");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert_eq(e2e_count_lines(r.out), 1, "%s", r.out);
  json_t *line = parse(r.out);
  cr_assert_str_eq(json_string_value(json_object_get(line, "node")), "talker");
  json_decref(line);
  e2e_result_free(&r);

  /* -f prints the tail, keeps the stream open, and ends cleanly on Ctrl-C. */
  pid_t follower = spawn(d->dir, "follow", (const char *const[]){"logs", "-f", "t-logs", NULL});
  char path[256];
  join(path, sizeof path, d->dir, "follow.out");
  cr_assert(e2e_wait_lines(path, 2, 10000), "logs -f printed: %s", e2e_read(path));
  cr_assert_eq(wait_exit(follower, 300), -1, "logs -f must keep following");
  kill(follower, SIGINT);
  cr_assert_eq(wait_exit(follower, 5000), 0, "logs -f exits 0 on Ctrl-C");

  r = cli(d, "logs no-such-pipeline");
  cr_assert_eq(r.exit_code, 1, "%s", r.err);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, tap_prints_payloads_and_ends_after_the_limit) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  write_endless_pipeline(d, "p.yaml", "t-tap", 50);
  deploy_ok(d, "p.yaml");

  e2e_result r = cli(d, "tap t-tap upper --limit 3");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert_eq(e2e_count_lines(r.out), 3, "%s", r.out);
  for (const char *line = r.out; *line; line = strchr(line, '\n') + 1)
    cr_assert(line[0] == 'E' && line[1] >= '1' && line[1] <= '9', "upper-cased: %s", r.out);
  e2e_result_free(&r);

  r = cli(d, "tap t-tap upper --limit 2 --rate 100 -o json");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert_eq(e2e_count_lines(r.out), 2, "%s", r.out);
  char *second = strchr(r.out, '\n') + 1;
  second[-1] = '\0';
  json_t *event = parse(r.out);
  cr_assert_str_eq(json_string_value(json_object_get(event, "node")), "upper");
  cr_assert_eq(json_string_value(json_object_get(event, "payload"))[0], 'E');
  json_decref(event);
  e2e_result_free(&r);

  r = cli(d, "tap t-tap no-such-node --limit 1");
  cr_assert_eq(r.exit_code, 1, "%s", r.err);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, top_prints_one_json_snapshot_or_plain_tables) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  write_endless_pipeline(d, "p.yaml", "t-top", 50);
  deploy_ok(d, "p.yaml");

  e2e_result r = cli(d, "top --iterations 1 -o json");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert_eq(e2e_count_lines(r.out), 1, "one snapshot, one line: %s", r.out);
  json_t *stats = parse(r.out);
  json_t *first = json_array_get(json_object_get(stats, "pipelines"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(first, "name")), "t-top", "%s", r.out);
  cr_assert_eq(json_array_size(json_object_get(first, "nodes")), 3, "%s", r.out);
  json_decref(stats);
  e2e_result_free(&r);

  /* Not a terminal: plain tables, one per refresh, no escape sequences. */
  r = cli(d, "top t-top --iterations 2 --interval 0.2");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  cr_assert(strncmp(r.out, "PIPELINE  NODE", 14) == 0, "%s", r.out);
  cr_assert(strstr(r.out, "\n\nPIPELINE  NODE"), "a second snapshot: %s", r.out);
  cr_assert(strstr(r.out, "t-top     upper  processor"), "%s", r.out);
  cr_assert_null(strchr(r.out, '\033'), "%s", r.out);
  const char *columns[] = {"KIND", "IN/s", "OUT/s", "ERRORS", "QUEUE", "P50", "P99", "INST", "MEM"};
  for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++)
    cr_assert(strstr(r.out, columns[i]), "column %s: %s", columns[i], r.out);
  e2e_result_free(&r);
  up_stop(d);
}

Test(cli_daemon, rollback_runs_an_earlier_version_again) {
  daemon_run *d = up_start();
  copy_module(d, example_path("upper"), "upper.wasm");
  write_upper_pipeline(d, "p.yaml", "t-rollback", 2, "one {{seq}}", "out.txt");
  char *v1 = read_in(d, "p.yaml");
  deploy_ok(d, "p.yaml");
  cr_assert(wait_file_lines(d, "out.txt", 2));
  write_upper_pipeline(d, "p.yaml", "t-rollback", 2, "two {{seq}}", "out.txt");
  deploy_ok(d, "p.yaml");
  cr_assert(wait_file_lines(d, "out.txt", 4));

  e2e_result r = cli(d, "rollback t-rollback --to 1");
  cr_assert_eq(r.exit_code, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "rolled back t-rollback to version 1"), "%s", r.out);
  e2e_result_free(&r);
  /* Version 1 runs again: its events arrive a second time. */
  cr_assert(wait_file_lines(d, "out.txt", 6), "out.txt: %s", read_in(d, "out.txt"));
  char *out = read_in(d, "out.txt");
  cr_assert_str_eq(out, "ONE 1\nONE 2\nTWO 1\nTWO 2\nONE 1\nONE 2\n");
  free(out);

  r = cli(d, "get t-rollback -o yaml");
  cr_assert_str_eq(r.out, v1, "the current version's text is version 1's");
  e2e_result_free(&r);
  r = cli(d, "get t-rollback -o json");
  json_t *p = parse(r.out);
  cr_assert_eq(json_integer_value(json_object_get(p, "version")), 1, "%s", r.out);
  json_decref(p);
  e2e_result_free(&r);

  r = cli(d, "rollback t-rollback --to 99");
  cr_assert_eq(r.exit_code, 1, "no such version: %s", r.err);
  e2e_result_free(&r);
  free(v1);
  up_stop(d);
}

Test(cli_daemon, a_daemon_that_is_not_running_is_named_with_the_fix) {
  char *dir = e2e_tmpdir();
  int port = e2e_free_port();
  setenv("SLUICE_HOME", dir, 1);
  unsetenv("SLUICE_SERVER");
  const char *commands[] = {"ls", "get x", "rm x", "logs x", "tap x y", "top", "rollback x"};
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    e2e_result r = e2e_sluice(dir, "%s --server http://127.0.0.1:%d", commands[i], port);
    cr_assert_eq(r.exit_code, 1, "%s: %s", commands[i], r.err);
    char want[128];
    snprintf(want, sizeof want, "sluice: cannot reach the daemon at http://127.0.0.1:%d: ", port);
    cr_assert(strstr(r.err, want), "%s: %s", commands[i], r.err);
    cr_assert(strstr(r.err, "Start it with `sluice up` (or point --server / SLUICE_SERVER at a "
                            "running one)."),
              "%s: %s", commands[i], r.err);
    e2e_result_free(&r);
  }
  /* SLUICE_SERVER stands in for --server. */
  char server[64];
  snprintf(server, sizeof server, "http://127.0.0.1:%d", port);
  setenv("SLUICE_SERVER", server, 1);
  e2e_write(dir, "p.yaml", "name: x\nnodes:\n  - {id: in, type: generate, count: 1}\n");
  e2e_result r = e2e_sluice(dir, "deploy p.yaml");
  cr_assert_eq(r.exit_code, 1, "%s", r.err);
  cr_assert(strstr(r.err, server), "%s", r.err);
  e2e_result_free(&r);
  e2e_rmdir(dir);
}

Test(cli_daemon, a_wrong_or_missing_token_is_explained) {
  daemon_run *d = up_start();
  setenv("SLUICE_TOKEN", "not-the-token", 1);
  e2e_result r = cli(d, "ls");
  cr_assert_eq(r.exit_code, 1, "%s", r.err);
  cr_assert(strstr(r.err, "refused the token read from $SLUICE_TOKEN"), "%s", r.err);
  e2e_result_free(&r);

  /* The right token through SLUICE_TOKEN works. */
  char path[256];
  join(path, sizeof path, d->home, "token");
  char *token = e2e_read(path);
  token[strcspn(token, "\r\n")] = '\0';
  setenv("SLUICE_TOKEN", token, 1);
  free(token);
  r = cli(d, "ls -o json");
  cr_assert_eq(r.exit_code, 0, "%s", r.err);
  e2e_result_free(&r);

  /* A home without a token file: the message says where it looked. */
  unsetenv("SLUICE_TOKEN");
  char other[192];
  join(other, sizeof other, d->dir, "other-home");
  cr_assert_eq(mkdir(other, 0700), 0);
  setenv("SLUICE_HOME", other, 1);
  r = cli(d, "ls");
  cr_assert_eq(r.exit_code, 1, "%s", r.err);
  cr_assert(strstr(r.err, "needs a token") && strstr(r.err, other), "%s", r.err);
  e2e_result_free(&r);

  /* A token file that holds another daemon's token. */
  e2e_write(other, "token", "someone-elses\n");
  r = cli(d, "ls");
  cr_assert_eq(r.exit_code, 1, "%s", r.err);
  cr_assert(strstr(r.err, "refused the token read from ") && strstr(r.err, "other-home/token"),
            "%s", r.err);
  e2e_result_free(&r);
  setenv("SLUICE_HOME", d->home, 1);
  up_stop(d);
}
