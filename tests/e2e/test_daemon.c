/*
 * test_daemon.c - `sluice up` end to end, through its HTTP API: authentication on every
 * route, deploys that are rejected whole, 409 for concurrent deploys, recovery after
 * kill -9, hot swap under load with a sequence checker, metrics checked by promtool,
 * and the daemon's own start-up errors. (The CLI's commands: test_cli_daemon.c.)
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../support/daemon_fixture.h"
#include "../support/e2e.h"

static char *example(const char *name) {
  const char *dir = getenv("SLUICE_EXAMPLES");
  cr_assert(dir, "SLUICE_EXAMPLES is not set: run the tests with `make test`");
  char *path = NULL;
  cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
  return path;
}

static char *guest(const char *name) {
  const char *dir = getenv("SLUICE_GUESTS");
  cr_assert(dir, "SLUICE_GUESTS is not set: run the tests with `make test`");
  char *path = NULL;
  cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
  return path;
}

/* generate -> passthrough -> file out.txt, `rate` events per second. */
static char *generate_yaml(const char *name, int rate, const char *module) {
  char *yaml = NULL;
  cr_assert(asprintf(&yaml,
                     "name: %s\n"
                     "nodes:\n"
                     "  - id: gen\n"
                     "    type: generate\n"
                     "    rate: %d\n"
                     "    payload: 'n{{seq}}'\n"
                     "  - id: p\n"
                     "    type: wasm\n"
                     "    module: %s\n"
                     "    inputs: [gen]\n"
                     "  - id: out\n"
                     "    type: file\n"
                     "    path: out-%s.txt\n"
                     "    inputs: [p]\n",
                     name, rate, module, name) > 0);
  return yaml;
}

static long long version_of(const daemon_fixture *d, const char *name, const char **status_out) {
  char path[256];
  snprintf(path, sizeof path, "/v1/pipelines/%s", name);
  long status;
  json_t *j = daemon_json(d, "GET", path, NULL, &status);
  cr_assert_eq(status, 200);
  long long v = json_integer_value(json_object_get(j, "version"));
  static char state[32];
  snprintf(state, sizeof state, "%s", json_string_value(json_object_get(j, "status")));
  if (status_out) *status_out = state;
  json_decref(j);
  return v;
}

static size_t lines_in(const daemon_fixture *d, const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", d->dir, file);
  char *text = e2e_read(path);
  size_t n = e2e_count_lines(text);
  free(text);
  return n;
}

/* --- authentication ------------------------------------------------------------------ */

Test(daemon, every_route_needs_the_token, .timeout = 120) {
  daemon_fixture d = {0};
  daemon_start(&d);
  static const char *const routes[][2] = {
      {"GET", "/readyz"},
      {"GET", "/metrics"},
      {"GET", "/v1/pipelines"},
      {"POST", "/v1/pipelines"},
      {"PUT", "/v1/pipelines/x"},
      {"GET", "/v1/pipelines/x"},
      {"DELETE", "/v1/pipelines/x"},
      {"GET", "/v1/pipelines/x/versions"},
      {"GET", "/v1/pipelines/x/versions/1"},
      {"POST", "/v1/pipelines/x/rollback"},
      {"PUT", "/v1/pipelines/x/nodes/p/module"},
      {"GET", "/v1/pipelines/x/stats"},
      {"GET", "/v1/stats"},
      {"GET", "/v1/pipelines/x/logs"},
      {"GET", "/v1/pipelines/x/nodes/p/tap"},
      {"PUT", "/v1/modules"},
      {"GET", "/v1/modules"},
      {"GET", "/v1/modules/abc"},
      {"GET", "/v1/no-such-route"},
  };
  char *module = example("passthrough.wasm");
  char *yaml = generate_yaml("x", 10, module);
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    for (int wrong = 0; wrong < 2; wrong++) {
      char *body = NULL;
      long status = daemon_call(&d, routes[i][0], routes[i][1], wrong ? "not-the-token" : "",
                                "application/yaml", yaml, strlen(yaml), &body);
      cr_expect_eq(status, 401, "%s %s with %s token: %ld %s", routes[i][0], routes[i][1],
                   wrong ? "a wrong" : "no", status, body ? body : "");
      free(body);
    }
  }
  /* A token that is a prefix of the real one is wrong too. */
  char prefix[16];
  snprintf(prefix, sizeof prefix, "%.10s", d.token);
  cr_expect_eq(daemon_call(&d, "GET", "/v1/pipelines", prefix, NULL, NULL, 0, NULL), 401);
  cr_expect_eq(daemon_call(&d, "GET", "/healthz", "", NULL, NULL, 0, NULL), 200);

  /* Nothing changed: no pipeline, no module. */
  long status;
  json_t *list = daemon_json(&d, "GET", "/v1/pipelines", NULL, &status);
  cr_expect_eq(status, 200);
  cr_expect_eq(json_array_size(json_object_get(list, "pipelines")), 0);
  json_decref(list);
  json_t *modules = daemon_json(&d, "GET", "/v1/modules", NULL, &status);
  cr_expect_eq(json_array_size(json_object_get(modules, "modules")), 0);
  json_decref(modules);

  char path[600];
  snprintf(path, sizeof path, "%s/token", d.home);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_expect_eq(st.st_mode & 0777, 0600, "token mode %o", st.st_mode & 0777);
  free(yaml);
  free(module);
  daemon_finish(&d);
}

/* --- deploys ---------------------------------------------------------------------------- */

Test(daemon, invalid_deploys_change_nothing, .timeout = 180) {
  daemon_fixture d = {0};
  daemon_start(&d);
  char *module = example("passthrough.wasm");
  char *yaml = generate_yaml("keep", 200, module);
  long status;
  json_t *r = daemon_deploy(&d, "keep", yaml, &status);
  cr_assert_eq(status, 201);
  json_decref(r);

  /* Bad YAML: every problem with its place, and 400. */
  const char *bad = "name: keep\nnodes:\n  - id: gen\n    type: generat\n";
  r = daemon_deploy(&d, "keep", bad, &status);
  cr_expect_eq(status, 400);
  char *text = json_dumps(r, 0);
  cr_expect(strstr(text, "pipeline.yaml:4:") != NULL, "%s", text);
  cr_expect(strstr(text, "did you mean 'generate'") != NULL, "%s", text);
  free(text);
  json_decref(r);

  /* A file that is not Wasm, and a module with an import the host does not provide. */
  char *junk = strdup(e2e_write(d.dir, "junk.wasm", "this is not wasm"));
  char *unknown = guest("unknown_import.wasm");
  const char *modules[] = {junk, unknown};
  for (size_t i = 0; i < 2; i++) {
    char *bad_yaml = generate_yaml("keep", 200, modules[i]);
    r = daemon_deploy(&d, "keep", bad_yaml, &status);
    cr_expect_eq(status, 400, "module %s: %ld", modules[i], status);
    text = json_dumps(r, 0);
    cr_expect(strstr(text, "problems") != NULL, "%s", text);
    free(text);
    json_decref(r);
    free(bad_yaml);
  }
  /* Uploading the bad module to a node: 400 as well. */
  char *body = NULL;
  status = daemon_call(&d, "PUT", "/v1/pipelines/keep/nodes/p/module", NULL, "application/wasm",
                       "\0asm\x01\0\0\0garbage", 16, &body);
  cr_expect_eq(status, 400, "%ld %s", status, body);
  free(body);
  /* A name that does not match the URL. */
  r = daemon_deploy(&d, "other", yaml, &status);
  cr_expect_eq(status, 400);
  json_decref(r);

  /* Version 1 still runs and still delivers. */
  const char *state;
  cr_expect_eq(version_of(&d, "keep", &state), 1);
  cr_expect_str_eq(state, "running");
  size_t before = lines_in(&d, "out-keep.txt");
  usleep(500 * 1000);
  cr_expect_gt(lines_in(&d, "out-keep.txt"), before);
  json_t *versions = daemon_json(&d, "GET", "/v1/pipelines/keep/versions", NULL, &status);
  cr_expect_eq(json_array_size(json_object_get(versions, "versions")), 1);
  json_decref(versions);
  free(junk);
  free(unknown);
  free(yaml);
  free(module);
  daemon_finish(&d);
}

typedef struct deploy_call {
  const daemon_fixture *d;
  const char *yaml;
  long status;
} deploy_call;

static void *deploy_thread(void *arg) {
  deploy_call *call = arg;
  json_t *r = daemon_deploy(call->d, "race", call->yaml, &call->status);
  json_decref(r);
  return NULL;
}

Test(daemon, a_second_concurrent_deploy_gets_409, .timeout = 180) {
  daemon_fixture d = {0};
  daemon_start(&d);
  /* The first deploy compiles a module no cache has seen (the Rust example, made unique
   * by a custom section: about a second of compiling); the second arrives meanwhile. */
  char *rust = example("upper_rust.wasm");
  char *module = NULL;
  cr_assert(asprintf(&module, "%s/race.wasm", d.dir) > 0);
  char *text = NULL;
  cr_assert(asprintf(&text, "cp '%s' '%s' && printf '\\000\\026\\005nonce%%016x' %ld >> '%s'", rust,
                     module, (long)getpid() ^ (long)time(NULL) << 20, module) > 0);
  cr_assert_eq(system(text), 0);
  free(text);
  free(rust);
  char *yaml = generate_yaml("race", 10, module);
  deploy_call first = {&d, yaml, 0}, second = {&d, yaml, 0};
  pthread_t t;
  pthread_create(&t, NULL, deploy_thread, &first);
  usleep(100 * 1000);
  deploy_thread(&second);
  pthread_join(t, NULL);
  cr_expect_eq(first.status, 201);
  cr_expect_eq(second.status, 409);
  /* Once the first is done, deploying again works: version 2. */
  long status;
  json_t *r = daemon_deploy(&d, "race", yaml, &status);
  cr_expect_eq(status, 200);
  cr_expect_eq(json_integer_value(json_object_get(r, "version")), 2);
  json_decref(r);
  free(yaml);
  free(module);
  daemon_finish(&d);
}

/* --- restart ---------------------------------------------------------------------------- */

Test(daemon, kill_9_then_restart_runs_every_pipeline_at_its_version, .timeout = 180) {
  daemon_fixture d = {0};
  daemon_start(&d);
  char *passthrough = example("passthrough.wasm"), *upper = example("upper.wasm");
  char *a1 = generate_yaml("alpha", 100, passthrough), *a2 = generate_yaml("alpha", 100, upper);
  char *b1 = generate_yaml("beta", 100, passthrough);
  long status;
  json_decref(daemon_deploy(&d, "alpha", a1, &status));
  cr_assert_eq(status, 201);
  json_decref(daemon_deploy(&d, "alpha", a2, &status));
  cr_assert_eq(status, 200);
  json_decref(daemon_deploy(&d, "beta", b1, &status));
  cr_assert_eq(status, 201);
  /* The module file goes away: the pinned copy must be what runs after the restart. */
  char *copy = NULL;
  cr_assert(asprintf(&copy, "cp '%s' '%s/gone.wasm'", upper, d.dir) > 0);
  cr_assert_eq(system(copy), 0);
  free(copy);

  cr_assert_eq(daemon_signal(&d, SIGKILL), -1);
  daemon_start(&d);
  const char *state;
  cr_expect_eq(version_of(&d, "alpha", &state), 2);
  cr_expect_str_eq(state, "running");
  cr_expect_eq(version_of(&d, "beta", &state), 1);
  cr_expect_str_eq(state, "running");
  /* And they deliver: alpha upper-cases now. */
  size_t before = lines_in(&d, "out-alpha.txt");
  for (int i = 0; i < 100 && lines_in(&d, "out-alpha.txt") <= before + 20; i++) usleep(50000);
  cr_expect_gt(lines_in(&d, "out-alpha.txt"), before + 20);
  char path[1024];
  snprintf(path, sizeof path, "%s/out-alpha.txt", d.dir);
  char *text = e2e_read(path);
  cr_expect(strstr(text + strlen(text) - 10, "N") != NULL, "alpha's last lines: %s",
            text + strlen(text) - 10);
  free(text);
  free(a1);
  free(a2);
  free(b1);
  free(passthrough);
  free(upper);
  daemon_finish(&d);
}

/* --- hot swap under load ------------------------------------------------------------------ */

#define LOAD_THREADS 4
#define LINES_PER_REQUEST 50
#define LOAD_RATE 20000 /* events per second, all threads */

typedef struct load {
  int port;
  atomic_bool stop;
  unsigned index;
  uint64_t acked; /* requests answered 200 */
  uint64_t retries;
  uint8_t *delivered; /* per sequence number: 1 once acknowledged */
  size_t capacity;
} load;

static void *load_main(void *arg) {
  load *l = arg;
  CURL *curl = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/in", l->port);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, devnull);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  double per_thread = (double)LOAD_RATE / LOAD_THREADS / LINES_PER_REQUEST; /* requests/s */
  char body[LINES_PER_REQUEST * 16];
  for (uint64_t k = 0; !atomic_load(&l->stop); k++) {
    size_t len = 0;
    uint64_t first = (k * LOAD_THREADS + l->index) * LINES_PER_REQUEST;
    if (first + LINES_PER_REQUEST > l->capacity) break;
    for (uint64_t s = first; s < first + LINES_PER_REQUEST; s++)
      len += (size_t)sprintf(body + len, "n%llu\n", (unsigned long long)s);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
    for (;;) { /* at least once: resend until the source says it has delivered */
      long code = 0;
      if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
      if (code == 200) break;
      l->retries++;
      usleep(5000);
    }
    for (uint64_t s = first; s < first + LINES_PER_REQUEST; s++) l->delivered[s] = 1;
    l->acked++;
    /* Pace to the schedule, not to the previous request, so slow moments catch up. */
    double due = (double)(k + 1) / per_thread;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed =
        (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
    if (due > elapsed) usleep((useconds_t)((due - elapsed) * 1e6));
  }
  fclose(devnull);
  curl_easy_cleanup(curl);
  return NULL;
}

static char *upload(const daemon_fixture *d, const char *path) {
  char *wasm = NULL;
  FILE *f = fopen(path, "rb");
  cr_assert(f, "%s", path);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  wasm = malloc((size_t)size);
  cr_assert_eq(fread(wasm, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  char *body = NULL;
  long status = daemon_call(d, "PUT", "/v1/modules?name=m.wasm", NULL, "application/wasm", wasm,
                            (size_t)size, &body);
  cr_assert(status == 201 || status == 200, "upload %s: %ld %s", path, status, body);
  json_error_t err;
  json_t *j = json_loads(body, 0, &err);
  char *hash = strdup(json_string_value(json_object_get(j, "sha256")));
  json_decref(j);
  free(body);
  free(wasm);
  return hash;
}

Test(daemon, hot_swap_under_load_loses_nothing, .timeout = 300) {
  daemon_fixture d = {0};
  daemon_start(&d);
  char *passthrough = example("passthrough.wasm"), *upper = example("upper.wasm");
  char *hashes[2] = {upload(&d, passthrough), upload(&d, upper)};
  int port = e2e_free_port();
  char *yaml = NULL;
  cr_assert(asprintf(&yaml,
                     "name: swap\n"
                     "nodes:\n"
                     "  - {id: in, type: http, listen: '127.0.0.1:%d', path: /in, split: lines}\n"
                     "  - {id: p, type: wasm, module: 'sha256:%s', inputs: [in]}\n"
                     "  - {id: out, type: file, path: out.txt, inputs: [p]}\n",
                     port, hashes[0]) > 0);
  long status;
  json_decref(daemon_deploy(&d, "swap", yaml, &status));
  cr_assert_eq(status, 201);
  cr_assert(e2e_wait_port(port, 10000));

  size_t capacity = 4000000;
  uint8_t *delivered = calloc(capacity, 1);
  load loads[LOAD_THREADS];
  pthread_t threads[LOAD_THREADS];
  for (unsigned t = 0; t < LOAD_THREADS; t++) {
    loads[t] = (load){.port = port, .index = t, .delivered = delivered, .capacity = capacity};
    pthread_create(&threads[t], NULL, load_main, &loads[t]);
  }
  usleep(500 * 1000);
  int overlaps = 0;
  for (int swap = 1; swap <= 20; swap++) {
    json_t *req = json_pack("{s:s}", "sha256", hashes[swap % 2]);
    json_t *r = daemon_json(&d, "PUT", "/v1/pipelines/swap/nodes/p/module", req, &status);
    cr_expect_eq(status, 200, "swap %d: %ld %s", swap, status, json_dumps(r, 0));
    cr_expect_eq(json_integer_value(json_object_get(r, "version")), swap + 1);
    if (strcmp(json_string_value(json_object_get(r, "swap")) ?: "", "overlap") == 0) overlaps++;
    json_decref(r);
    json_decref(req);
    usleep(200 * 1000);
  }
  usleep(300 * 1000);
  for (unsigned t = 0; t < LOAD_THREADS; t++) atomic_store(&loads[t].stop, true);
  uint64_t requests = 0, retries = 0;
  for (unsigned t = 0; t < LOAD_THREADS; t++) {
    pthread_join(threads[t], NULL);
    requests += loads[t].acked;
    retries += loads[t].retries;
  }
  cr_expect_eq(overlaps, 20, "every swap of an http-fed pipeline overlaps");

  /* A 200 means delivered to the file: every acknowledged number must be there now. */
  char path[1024];
  snprintf(path, sizeof path, "%s/out.txt", d.dir);
  char *text = e2e_read(path);
  cr_assert(text);
  uint8_t *seen = calloc(capacity, 1);
  uint64_t lines = 0, duplicates = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    if (!end) break;
    if (line[0] == 'n' || line[0] == 'N') {
      unsigned long long s = strtoull(line + 1, NULL, 10);
      if (s < capacity) {
        if (seen[s]) duplicates++;
        seen[s] = 1;
      }
    }
    lines++;
    line = end + 1;
  }
  uint64_t acked = 0, lost = 0;
  for (size_t s = 0; s < capacity; s++) {
    if (!delivered[s]) continue;
    acked++;
    if (!seen[s]) lost++;
  }
  cr_log_info("hot swap: %llu events acknowledged in %llu requests (%llu retried), %llu lines, "
              "%llu duplicates, %llu lost",
              (unsigned long long)acked, (unsigned long long)requests, (unsigned long long)retries,
              (unsigned long long)lines, (unsigned long long)duplicates, (unsigned long long)lost);
  cr_expect_eq(lost, 0, "%llu acknowledged events are missing", (unsigned long long)lost);
  cr_expect_gt(acked, 20000, "the load ran (%llu events)", (unsigned long long)acked);
  free(seen);
  free(text);
  free(delivered);
  free(yaml);
  free(hashes[0]);
  free(hashes[1]);
  free(passthrough);
  free(upper);
  daemon_finish(&d);
}

/* --- observing ------------------------------------------------------------------------------ */

Test(daemon, metrics_pass_promtool_and_stats_count, .timeout = 180) {
  daemon_fixture d = {0};
  daemon_start(&d);
  char *module = example("passthrough.wasm");
  char *yaml = generate_yaml("m", 500, module);
  long status;
  json_decref(daemon_deploy(&d, "m", yaml, &status));
  cr_assert_eq(status, 201);
  cr_assert(daemon_wait_count(&d, "/v1/pipelines/m", "events_out", 200, 20000));
  usleep(1200 * 1000); /* one sample for the rates */

  json_t *stats = daemon_json(&d, "GET", "/v1/pipelines/m/stats", NULL, &status);
  cr_assert_eq(status, 200);
  json_t *nodes = json_object_get(stats, "nodes");
  cr_assert_eq(json_array_size(nodes), 3);
  json_t *p = json_array_get(nodes, 1);
  cr_expect_str_eq(json_string_value(json_object_get(p, "id")), "p");
  cr_expect_gt(json_integer_value(json_object_get(p, "events_in")), 0);
  cr_expect_gt(json_real_value(json_object_get(p, "rate_in")), 0);
  cr_expect_gt(json_real_value(json_object_get(p, "p99_us")), 0);
  cr_expect_gt(json_integer_value(json_object_get(p, "instances")), 0);
  cr_expect_gt(json_integer_value(json_object_get(p, "memory_bytes")), 0);
  json_decref(stats);

  char *text = NULL;
  cr_assert_eq(daemon_call(&d, "GET", "/metrics", NULL, NULL, NULL, 0, &text), 200);
  cr_expect(strstr(text, "sluice_node_events_in_total{pipeline=\"m\",node=\"p\"}") != NULL, "%s",
            text);
  char *file = strdup(e2e_write(d.dir, "metrics.txt", "%s", text));
  char *cmd = NULL;
  cr_assert(asprintf(&cmd, "promtool check metrics < '%s' > '%s/promtool.out' 2>&1", file, d.dir) >
            0);
  int rc = system(cmd);
  char out_path[1024];
  snprintf(out_path, sizeof out_path, "%s/promtool.out", d.dir);
  char *out = e2e_read(out_path);
  cr_expect_eq(rc, 0, "promtool: %s", out ? out : "");
  free(out);
  free(cmd);
  free(file);
  free(text);
  free(yaml);
  free(module);
  daemon_finish(&d);
}

Test(daemon, module_upload_reports_progress, .timeout = 180) {
  daemon_fixture d = {0};
  daemon_start(&d);
  char *module = example("passthrough.wasm");
  char *cmd = NULL, *out_path = NULL;
  cr_assert(asprintf(&out_path, "%s/progress.txt", d.dir) > 0);
  cr_assert(asprintf(&cmd,
                     "curl -sN -X PUT -H 'Authorization: Bearer %s' -H 'Accept: text/event-stream' "
                     "-H 'Content-Type: application/wasm' --data-binary @'%s' "
                     "'%s/v1/modules?name=passthrough.wasm' > '%s'",
                     d.token, module, d.url, out_path) > 0);
  cr_assert_eq(system(cmd), 0);
  char *text = e2e_read(out_path);
  char *compiling = strstr(text, "\"stage\":\"compiling\""),
       *ready = strstr(text, "\"stage\":\"ready\"");
  cr_expect(compiling && ready && compiling < ready, "%s", text);
  free(text);
  /* Junk: a failed stage with the engine's reason. */
  char *junk = strdup(e2e_write(d.dir, "junk.wasm", "junk"));
  free(cmd);
  cr_assert(asprintf(&cmd,
                     "curl -sN -X PUT -H 'Authorization: Bearer %s' -H 'Accept: text/event-stream' "
                     "--data-binary @'%s' '%s/v1/modules' > '%s'",
                     d.token, junk, d.url, out_path) > 0);
  cr_assert_eq(system(cmd), 0);
  text = e2e_read(out_path);
  cr_expect(strstr(text, "\"stage\":\"failed\"") != NULL, "%s", text);
  free(text);
  free(junk);
  free(cmd);
  free(out_path);
  free(module);
  daemon_finish(&d);
}

/* --- start-up errors -------------------------------------------------------------------------- */

Test(daemon, a_taken_port_or_a_public_address_without_tls_is_exit_2, .timeout = 60) {
  daemon_fixture d = {0};
  daemon_start(&d);
  e2e_result r = e2e_sluice(d.dir, "up --listen 127.0.0.1:%d", d.port);
  cr_expect_eq(r.exit_code, 2, "%s", r.err);
  cr_expect(strstr(r.err, "already in use") != NULL, "%s", r.err);
  e2e_result_free(&r);
  r = e2e_sluice(d.dir, "up --listen 0.0.0.0:%d", e2e_free_port());
  cr_expect_eq(r.exit_code, 2, "%s", r.err);
  cr_expect(strstr(r.err, "--tls-cert") != NULL, "%s", r.err);
  e2e_result_free(&r);
  /* The daemon that was there is unharmed. */
  cr_expect_eq(daemon_call(&d, "GET", "/healthz", "", NULL, NULL, 0, NULL), 200);
  cr_expect_eq(daemon_signal(&d, SIGTERM), 0);
  daemon_finish(&d);
}
