/*
 * swap_bench.c - the control-plane benchmark (`make bench-daemon`). bench/daemon/run.sh
 * starts a daemon (`sluice up`) with a temporary SLUICE_HOME and runs this program
 * against it; docs/benchmarks.md ("Control plane") says what each row measures and
 * records a run.
 *
 *   A  deploy to first event: PUT /v1/pipelines/NAME of generate -> wasm (a module
 *      uploaded and compiled once) -> file, timed from sending the request to the first
 *      line in the output file; against `sluice run` of the same pipeline, timed from
 *      process start to its first line. The two are interleaved.
 *   B  longest output gap during module swaps under load: http (split: lines) -> wasm ->
 *      file, loaded with numbered lines at a fixed rate by several keep-alive clients
 *      that resend on anything but 2xx, while a tail thread notes every time the output
 *      file grows. Phase 1 has no swaps (the baseline), phase 2 swaps the module every
 *      250 ms (PUT .../nodes/p/module, passthrough and upper in turn). Afterwards every
 *      acknowledged number must be in the output.
 *   C  the same swaps on generate -> wasm -> file: generate cannot share its input with
 *      a second graph, so the daemon drains the old graph before it starts the new one.
 *      The pipeline sets `batch_size: 20` (--drain-batch), so generate at 20k events/s
 *      emits 20 events every millisecond; with the default it would emit 1,000 every
 *      50 ms, and that pacing would hide any gap shorter than 50 ms.
 *
 * It prints a Markdown table, notes, and `RESULT key=value ...` lines for scripts; with
 * --trace PREFIX it also writes every output growth and swap of B and C to PREFIX.http and
 * PREFIX.drain, to look at single gaps.
 * Exit status: 0 when everything ran, 1 when something failed or an acknowledged event
 * is missing from the output, 2 for bad options.
 *
 * Map: options | clock and statistics | API client | A: deploy to first event |
 * output tail | B and C: load, swaps, gaps, verification | report | main.
 */
#define _GNU_SOURCE /* asprintf */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* --- options ------------------------------------------------------------------------ */

typedef struct options {
  const char *api;         /* http://127.0.0.1:PORT of the daemon */
  const char *token_file;  /* $SLUICE_HOME/token */
  const char *sluice;      /* the binary, for the `sluice run` baseline */
  const char *passthrough; /* passthrough.wasm */
  const char *upper;       /* upper.wasm */
  const char *work;        /* outputs and pipeline files go here */
  unsigned source_port;    /* the http source of B listens here */
  int deploys;             /* A: deploys (and `sluice run`s) */
  double duration;         /* B, C: seconds per phase */
  int swap_every_ms;       /* B, C: time between swap requests */
  int rate;                /* B, C: events per second */
  int threads;             /* B: client threads */
  int lines;               /* B: lines (events) per request */
  int drain_batch;         /* C: the pipeline's batch_size; 0 leaves the default */
  const char *only;        /* deploy, swap or drain; NULL: all three */
  const char *trace;       /* B, C: write every growth and swap to TRACE.http, TRACE.drain */
} options;

static void usage(FILE *out) {
  fprintf(out,
          "Usage: swap_bench --api URL --token-file FILE --sluice BIN --passthrough WASM\n"
          "                  --upper WASM --work DIR --source-port PORT [--deploys N]\n"
          "                  [--duration S] [--swap-every MS] [--rate EVENTS/S] [--threads N]\n"
          "                  [--lines N] [--drain-batch N] [--only deploy|swap|drain]\n"
          "                  [--trace PREFIX] [--quick]\n");
}

static bool parse_options(int argc, char **argv, options *o) {
  *o = (options){.deploys = 20,
                 .duration = 5,
                 .swap_every_ms = 250,
                 .rate = 20000,
                 .threads = 4,
                 .lines = 10,
                 .drain_batch = 20};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--quick") == 0) {
      o->deploys = 5;
      o->duration = 2;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "swap_bench: %s needs a value\n", arg);
      return false;
    }
    const char *value = argv[++i];
    if (strcmp(arg, "--api") == 0)
      o->api = value;
    else if (strcmp(arg, "--token-file") == 0)
      o->token_file = value;
    else if (strcmp(arg, "--sluice") == 0)
      o->sluice = value;
    else if (strcmp(arg, "--passthrough") == 0)
      o->passthrough = value;
    else if (strcmp(arg, "--upper") == 0)
      o->upper = value;
    else if (strcmp(arg, "--work") == 0)
      o->work = value;
    else if (strcmp(arg, "--source-port") == 0)
      o->source_port = (unsigned)atoi(value);
    else if (strcmp(arg, "--deploys") == 0)
      o->deploys = atoi(value);
    else if (strcmp(arg, "--duration") == 0)
      o->duration = atof(value);
    else if (strcmp(arg, "--swap-every") == 0)
      o->swap_every_ms = atoi(value);
    else if (strcmp(arg, "--rate") == 0)
      o->rate = atoi(value);
    else if (strcmp(arg, "--threads") == 0)
      o->threads = atoi(value);
    else if (strcmp(arg, "--lines") == 0)
      o->lines = atoi(value);
    else if (strcmp(arg, "--drain-batch") == 0)
      o->drain_batch = atoi(value);
    else if (strcmp(arg, "--only") == 0)
      o->only = value;
    else if (strcmp(arg, "--trace") == 0)
      o->trace = value;
    else {
      fprintf(stderr, "swap_bench: unknown option '%s'\n", arg);
      return false;
    }
  }
  if (!o->api || !o->token_file || !o->sluice || !o->passthrough || !o->upper || !o->work ||
      !o->source_port) {
    fprintf(stderr, "swap_bench: --api, --token-file, --sluice, --passthrough, --upper, --work "
                    "and --source-port are required\n");
    return false;
  }
  if (o->deploys < 1 || o->duration <= 0 || o->swap_every_ms < 1 || o->rate < 1 || o->threads < 1 ||
      o->lines < 1 || o->drain_batch < 0) {
    fprintf(stderr, "swap_bench: counts, durations and rates must be positive\n");
    return false;
  }
  if (o->only && strcmp(o->only, "deploy") != 0 && strcmp(o->only, "swap") != 0 &&
      strcmp(o->only, "drain") != 0) {
    fprintf(stderr, "swap_bench: --only: expected deploy, swap or drain\n");
    return false;
  }
  return true;
}

static bool wanted(const options *o, const char *part) {
  return !o->only || !strcmp(o->only, part);
}

/* --- clock and statistics ----------------------------------------------------------- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t due_ns) {
  struct timespec ts = {(time_t)(due_ns / 1000000000u), (long)(due_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static void sleep_us(unsigned us) { sleep_until(now_ns() + (uint64_t)us * 1000u); }

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Summary of n values (sorted in place): nearest-rank percentiles. */
typedef struct summary {
  double min, median, p90, max;
  size_t n;
} summary;

static summary summarize(double *values, size_t n) {
  summary s = {0};
  if (n == 0) return s;
  qsort(values, n, sizeof *values, cmp_double);
  s.n = n;
  s.min = values[0];
  s.max = values[n - 1];
  s.median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  size_t rank = (size_t)(0.9 * (double)n + 0.999999);
  s.p90 = values[(rank ? rank : 1) - 1];
  return s;
}

/* --- API client ----------------------------------------------------------------------- */

typedef struct buffer {
  char *data;
  size_t len, cap;
} buffer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
  buffer *b = user;
  size_t n = size * nmemb;
  if (!b) return n;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) abort();
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

/* One keep-alive connection to the daemon; used by one thread at a time. */
typedef struct api_client {
  CURL *curl;
  char base[256];
  char auth[200];
} api_client;

static bool api_init(api_client *c, const options *o) {
  char token[128] = "";
  FILE *f = fopen(o->token_file, "r");
  if (!f || !fgets(token, sizeof token, f)) {
    fprintf(stderr, "swap_bench: cannot read the token from %s\n", o->token_file);
    if (f) fclose(f);
    return false;
  }
  fclose(f);
  token[strcspn(token, "\r\n")] = '\0';
  snprintf(c->base, sizeof c->base, "%s", o->api);
  snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", token);
  c->curl = curl_easy_init();
  return c->curl != NULL;
}

/*
 * METHOD base+path with an optional body; the answer's body goes to `reply` (cleared
 * first). *sent_ns (if given) is the time just before the request went out. Returns the
 * HTTP status, or 0 when the request failed (printed).
 */
static long api_call(api_client *c, const char *method, const char *path, const char *content_type,
                     const void *body, size_t body_len, buffer *reply, uint64_t *sent_ns) {
  char url[512], type[128];
  snprintf(url, sizeof url, "%s%s", c->base, path);
  struct curl_slist *headers = curl_slist_append(NULL, c->auth);
  headers = curl_slist_append(headers, "Expect:");
  if (content_type) {
    snprintf(type, sizeof type, "Content-Type: %s", content_type);
    headers = curl_slist_append(headers, type);
  }
  CURL *h = c->curl;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
  if (reply) reply->len = 0;
  if (reply && reply->data) reply->data[0] = '\0';
  if (sent_ns) *sent_ns = now_ns();
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  if (rc != CURLE_OK) {
    fprintf(stderr, "swap_bench: %s %s: %s\n", method, url, curl_easy_strerror(rc));
    return 0;
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

static const char *reply_text(const buffer *b) { return b->data ? b->data : ""; }

static bool read_file(const char *path, char **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  buffer b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) on_body(chunk, 1, n, &b);
  fclose(f);
  if (!b.data) on_body(chunk, 1, 0, &b);
  *data = b.data;
  *len = b.len;
  return true;
}

/* PUT /v1/modules: the module's sha256 into `hash`; its compile time into *compile_ms. */
static bool upload_module(api_client *c, const char *path, char hash[65], double *compile_ms) {
  char *bytes;
  size_t len;
  if (!read_file(path, &bytes, &len)) {
    fprintf(stderr, "swap_bench: cannot read %s\n", path);
    return false;
  }
  const char *base = strrchr(path, '/');
  char route[300];
  snprintf(route, sizeof route, "/v1/modules?name=%s", base ? base + 1 : path);
  buffer reply = {0};
  long code = api_call(c, "PUT", route, "application/wasm", bytes, len, &reply, NULL);
  free(bytes);
  json_t *body = json_loads(reply_text(&reply), 0, NULL);
  const char *sha = json_string_value(json_object_get(body, "sha256"));
  bool ok = (code == 200 || code == 201) && sha && strlen(sha) == 64;
  if (ok) {
    snprintf(hash, 65, "%s", sha);
    *compile_ms = json_number_value(json_object_get(body, "compile_ms"));
  } else {
    fprintf(stderr, "swap_bench: upload of %s: HTTP %ld %s\n", path, code, reply_text(&reply));
  }
  json_decref(body);
  free(reply.data);
  return ok;
}

static bool delete_pipeline(api_client *c, const char *name) {
  char route[300];
  snprintf(route, sizeof route, "/v1/pipelines/%s", name);
  buffer reply = {0};
  long code = api_call(c, "DELETE", route, NULL, NULL, 0, &reply, NULL);
  if (code != 200)
    fprintf(stderr, "swap_bench: DELETE %s: HTTP %ld %s\n", route, code, reply_text(&reply));
  free(reply.data);
  return code == 200;
}

/* --- A: deploy to first event ---------------------------------------------------------- */

/* generate -> wasm -> file; `module` is "sha256:HEX" or a path; batch_size 0: the
 * default. */
static char *generate_pipeline(const char *name, const char *module, const char *out, int rate,
                               int batch_size) {
  char batch[64] = "";
  if (batch_size) snprintf(batch, sizeof batch, "batch_size: %d\n", batch_size);
  char *text = NULL;
  if (asprintf(&text,
               "name: %s\n"
               "%s"
               "nodes:\n"
               "  - id: gen\n"
               "    type: generate\n"
               "    rate: %d\n"
               "    payload: '{\"seq\":{{seq}},\"msg\":\"hello\"}'\n"
               "  - id: p\n"
               "    type: wasm\n"
               "    module: %s\n"
               "    inputs: [gen]\n"
               "  - id: out\n"
               "    type: file\n"
               "    path: %s\n"
               "    inputs: [p]\n",
               name, batch, rate, module, out) < 0)
    abort();
  return text;
}

static bool write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return false;
  bool ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok;
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Polls `path` every 200 us until it holds a byte; its time, or 0 after `limit_ns`. */
static uint64_t wait_first_line(const char *path, uint64_t limit_ns) {
  uint64_t start = now_ns();
  for (;;) {
    if (file_size(path) > 0) return now_ns();
    if (now_ns() - start > limit_ns) return 0;
    sleep_us(200);
  }
}

/* The deploy request runs on a thread of its own, so the output can be polled meanwhile
 * (the first event usually lands before the answer does). */
typedef struct deploy_call {
  api_client *client;
  const char *route;
  const char *text;
  uint64_t sent_ns, answered_ns;
  long code;
  buffer reply;
} deploy_call;

static void *deploy_main(void *arg) {
  deploy_call *d = arg;
  d->code = api_call(d->client, "PUT", d->route, "application/yaml", d->text, strlen(d->text),
                     &d->reply, &d->sent_ns);
  d->answered_ns = now_ns();
  return NULL;
}

typedef struct first_event_results {
  double *deploy_ms; /* request sent -> first line */
  double *answer_ms; /* request sent -> answer */
  double *run_ms;    /* `sluice run` started -> first line */
  size_t count;
} first_event_results;

static bool deploy_once(api_client *c, const options *o, const char *hash, int i,
                        first_event_results *r) {
  char name[64], out[4096], module[80], route[128];
  snprintf(name, sizeof name, "first-%d", i);
  snprintf(out, sizeof out, "%s/%s.out", o->work, name);
  snprintf(module, sizeof module, "sha256:%s", hash);
  snprintf(route, sizeof route, "/v1/pipelines/%s", name);
  unlink(out);
  char *text = generate_pipeline(name, module, out, 1000, 0);
  deploy_call d = {.client = c, .route = route, .text = text};
  pthread_t thread;
  if (pthread_create(&thread, NULL, deploy_main, &d) != 0) abort();
  uint64_t first = wait_first_line(out, 10000000000u);
  pthread_join(thread, NULL);
  bool ok = d.code == 201 && first;
  if (!ok)
    fprintf(stderr, "swap_bench: deploy %s: HTTP %ld %s%s\n", name, d.code, reply_text(&d.reply),
            first ? "" : "; no output line within 10 s");
  else {
    r->deploy_ms[r->count] = ms(first - d.sent_ns);
    r->answer_ms[r->count] = ms(d.answered_ns - d.sent_ns);
  }
  free(d.reply.data);
  free(text);
  if (!delete_pipeline(c, name)) ok = false;
  unlink(out);
  return ok;
}

/* `sluice run FILE` from the exec to its first output line; then SIGINT, and it must
 * exit 0. SLUICE_HOME is inherited: the module's compiled artifact is already cached. */
static bool run_once(const options *o, int i, bool timed, first_event_results *r) {
  char out[4096], yaml[4096], log[4096];
  snprintf(out, sizeof out, "%s/run-%d.out", o->work, i);
  snprintf(yaml, sizeof yaml, "%s/run-%d.yaml", o->work, i);
  snprintf(log, sizeof log, "%s/run.log", o->work);
  unlink(out);
  char *text = generate_pipeline("run", o->passthrough, out, 1000, 0);
  bool ok = write_text(yaml, text);
  free(text);
  if (!ok) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char *argv[] = {(char *)o->sluice, "run", yaml, NULL};
  pid_t pid;
  uint64_t started = now_ns();
  int rc = posix_spawn(&pid, o->sluice, &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    fprintf(stderr, "swap_bench: cannot start %s: %s\n", o->sluice, strerror(rc));
    return false;
  }
  uint64_t first = wait_first_line(out, 10000000000u);
  kill(pid, SIGINT);
  int wstatus = 0;
  for (int waited = 0; waitpid(pid, &wstatus, WNOHANG) == 0; waited++) {
    if (waited == 10000) { /* 10 s */
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      break;
    }
    sleep_us(1000);
  }
  ok = first && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
  if (!ok)
    fprintf(stderr, "swap_bench: sluice run %s: %s, status %d (see %s)\n", yaml,
            first ? "first line seen" : "no output line within 10 s", wstatus, log);
  else if (timed)
    r->run_ms[r->count] = ms(first - started);
  unlink(out);
  unlink(yaml);
  return ok;
}

/* N deploys and N `sluice run`s, interleaved, their order alternating. */
static bool bench_first_event(api_client *c, const options *o, const char *hash,
                              first_event_results *r) {
  r->deploy_ms = calloc((size_t)o->deploys, sizeof(double));
  r->answer_ms = calloc((size_t)o->deploys, sizeof(double));
  r->run_ms = calloc((size_t)o->deploys, sizeof(double));
  if (!r->deploy_ms || !r->answer_ms || !r->run_ms) abort();
  fprintf(stderr, "deploy: warm-up (one deploy, one sluice run)\n");
  first_event_results scratch = *r;
  if (!deploy_once(c, o, hash, 0, &scratch) || !run_once(o, 0, false, &scratch)) return false;
  for (int i = 0; i < o->deploys; i++) {
    bool ok;
    if (i % 2 == 0)
      ok = deploy_once(c, o, hash, i + 1, r) && run_once(o, i + 1, true, r);
    else
      ok = run_once(o, i + 1, true, r) && deploy_once(c, o, hash, i + 1, r);
    if (!ok) return false;
    r->count++;
  }
  return true;
}

/* --- output tail ------------------------------------------------------------------------ */

/*
 * Notes the time whenever the output file grows, polling its size every 500 us. A gap
 * it sees may also be its own: when the machine does not run this thread for a while,
 * the file looks still. So it also notes every time its own polls were more than 2 ms
 * apart (`stalls`), and the report says how much of a gap was such a stall.
 */
typedef struct tail {
  const char *path;
  pthread_t thread;
  atomic_bool stop;
  uint64_t *times;
  size_t count, cap;
  uint64_t *stalls; /* pairs: from, to */
  size_t stall_count, stall_cap;
} tail;

static void append(uint64_t **array, size_t *count, size_t *cap, uint64_t value) {
  if (*count == *cap) {
    *cap = *cap ? *cap * 2 : 65536;
    *array = realloc(*array, *cap * sizeof **array);
    if (!*array) abort();
  }
  (*array)[(*count)++] = value;
}

static void *tail_main(void *arg) {
  tail *t = arg;
  off_t last = file_size(t->path);
  uint64_t polled = now_ns();
  while (!atomic_load(&t->stop)) {
    off_t size = file_size(t->path);
    uint64_t at = now_ns();
    if (at - polled > 2000000u) {
      append(&t->stalls, &t->stall_count, &t->stall_cap, polled);
      append(&t->stalls, &t->stall_count, &t->stall_cap, at);
    }
    polled = at;
    if (size > last) {
      append(&t->times, &t->count, &t->cap, at);
      last = size;
    }
    sleep_us(500);
  }
  return NULL;
}

static void tail_start(tail *t, const char *path) {
  memset(t, 0, sizeof *t);
  t->path = path;
  atomic_init(&t->stop, false);
  if (pthread_create(&t->thread, NULL, tail_main, t) != 0) abort();
}

static void tail_stop(tail *t) {
  atomic_store(&t->stop, true);
  pthread_join(t->thread, NULL);
}

/* The longest time within [from, to) during which the file did not grow; when it
 * began into *began (if given). */
static double longest_gap_at(const tail *t, uint64_t from, uint64_t to, uint64_t *began) {
  uint64_t last = from, longest = 0, start = from;
  for (size_t i = 0; i < t->count; i++) {
    uint64_t at = t->times[i];
    if (at < from) continue;
    if (at >= to) break;
    if (at - last > longest) longest = at - last, start = last;
    last = at;
  }
  if (to - last > longest) longest = to - last, start = last;
  if (began) *began = start;
  return ms(longest);
}

static double longest_gap_ms(const tail *t, uint64_t from, uint64_t to) {
  return longest_gap_at(t, from, to, NULL);
}

/* How long, within [from, to), the tail thread itself did not poll (beyond 2 ms at a
 * time); with `longest`, the longest such stall instead of the sum. */
static double tail_stalled_ms(const tail *t, uint64_t from, uint64_t to, bool longest) {
  uint64_t total = 0, most = 0;
  for (size_t i = 0; i + 1 < t->stall_count; i += 2) {
    uint64_t a = t->stalls[i] > from ? t->stalls[i] : from;
    uint64_t b = t->stalls[i + 1] < to ? t->stalls[i + 1] : to;
    if (b <= a) continue;
    total += b - a;
    if (b - a > most) most = b - a;
  }
  return ms(longest ? most : total);
}

/* The longest gap of each `every_ns` window of [from, to): the median and the count. */
static double median_window_gap_ms(const tail *t, uint64_t from, uint64_t to, uint64_t every_ns) {
  size_t n = (size_t)((to - from) / every_ns);
  if (n == 0) return longest_gap_ms(t, from, to);
  double *gaps = calloc(n, sizeof *gaps);
  if (!gaps) abort();
  for (size_t i = 0; i < n; i++)
    gaps[i] = longest_gap_ms(t, from + i * every_ns, from + (i + 1) * every_ns);
  double median = summarize(gaps, n).median;
  free(gaps);
  return median;
}

/* --trace: "phase FROM_MS", "grow AT_MS" per growth and "swap SENT_MS ANSWERED_MS" per swap
 * request, in ms since the baseline phase began, for looking at single gaps. */
static void write_trace(const options *o, const char *part, const tail *t, const uint64_t *sent,
                        const uint64_t *answered, size_t swaps, uint64_t baseline_from,
                        uint64_t swaps_from) {
  if (!o->trace) return;
  char path[4096];
  snprintf(path, sizeof path, "%s.%s", o->trace, part);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "swap_bench: cannot write %s\n", path);
    return;
  }
  double base = (double)baseline_from;
  fprintf(f, "phase baseline 0\nphase swaps %.3f\n", ((double)swaps_from - base) / 1e6);
  for (size_t i = 0; i < t->count; i++)
    fprintf(f, "grow %.3f\n", ((double)t->times[i] - base) / 1e6);
  for (size_t i = 0; i + 1 < t->stall_count; i += 2)
    fprintf(f, "stall %.3f %.3f\n", ((double)t->stalls[i] - base) / 1e6,
            ((double)t->stalls[i + 1] - base) / 1e6);
  for (size_t k = 0; k < swaps; k++)
    fprintf(f, "swap %.3f %.3f\n", ((double)sent[k] - base) / 1e6,
            ((double)answered[k] - base) / 1e6);
  fclose(f);
}

/* --- B and C: load, swaps, gaps ---------------------------------------------------------- */

enum { PHASE_WARMUP, PHASE_BASELINE, PHASE_SWAPS, PHASE_COOLDOWN, PHASES };

/* Keep-alive clients POSTing numbered lines at a fixed total rate; a request that gets
 * anything but 2xx (or no answer) is sent again, same numbers, until it is acknowledged. */
typedef struct load {
  const options *o;
  char url[128];
  atomic_uint_fast64_t next_seq; /* the last number handed out */
  uint64_t seq_cap;
  uint8_t *acked; /* acked[n]: number n was in an acknowledged request */
  atomic_int phase;
  atomic_bool stop;
  uint64_t start_ns;
  /* Per phase, summed over threads under `lock`. */
  pthread_mutex_t lock;
  uint64_t acked_lines[PHASES], requests[PHASES], non_2xx[PHASES], failed[PHASES];
  uint64_t failed_reused[PHASES]; /* of `failed`: on a kept-alive connection, not a new one */
  double max_request_ms[PHASES];  /* first send to acknowledgement, retries included */
  char first_problem[256];
} load;

typedef struct load_thread {
  load *l;
  int index;
  pthread_t thread;
} load_thread;

static void *load_main(void *arg) {
  load_thread *self = arg;
  load *l = self->l;
  const options *o = l->o;
  CURL *h = curl_easy_init();
  if (!h) abort();
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: text/plain");
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, l->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  char *body = malloc((size_t)o->lines * 48);
  if (!body) abort();
  /* Each thread sends one request every `interval`; the threads are staggered. */
  uint64_t interval = (uint64_t)(1e9 * o->lines * o->threads / o->rate);
  uint64_t due = l->start_ns + interval * (uint64_t)self->index / (uint64_t)o->threads;
  uint64_t acked[PHASES] = {0}, requests[PHASES] = {0}, non_2xx[PHASES] = {0}, failed[PHASES] = {0},
           failed_reused[PHASES] = {0};
  double max_ms[PHASES] = {0};
  while (!atomic_load(&l->stop)) {
    sleep_until(due);
    due += interval;
    uint64_t first = atomic_fetch_add(&l->next_seq, (uint64_t)o->lines) + 1;
    if (first + (uint64_t)o->lines > l->seq_cap) break;
    size_t len = 0;
    for (int i = 0; i < o->lines; i++)
      len += (size_t)sprintf(body + len, "{\"seq\":%llu,\"msg\":\"hello\"}\n",
                             (unsigned long long)(first + (uint64_t)i));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    uint64_t sent = now_ns();
    for (int attempt = 0;; attempt++) {
      int phase = atomic_load(&l->phase);
      requests[phase]++;
      CURLcode rc = curl_easy_perform(h);
      long code = 0;
      if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
      if (code >= 200 && code < 300) break;
      long connects = 0;
      curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
      if (rc == CURLE_OK) {
        non_2xx[phase]++;
      } else {
        failed[phase]++;
        if (connects == 0) failed_reused[phase]++;
      }
      pthread_mutex_lock(&l->lock);
      if (!l->first_problem[0])
        snprintf(l->first_problem, sizeof l->first_problem, "%s",
                 rc == CURLE_OK ? "an HTTP status other than 2xx" : curl_easy_strerror(rc));
      pthread_mutex_unlock(&l->lock);
      if (now_ns() - sent > 30000000000u) goto done; /* 30 s: give up; never acknowledged */
      sleep_us(attempt < 10 ? 200 : 5000);
    }
    {
      int phase = atomic_load(&l->phase);
      double took = ms(now_ns() - sent);
      if (took > max_ms[phase]) max_ms[phase] = took;
      acked[phase] += (uint64_t)o->lines;
      for (int i = 0; i < o->lines; i++) l->acked[first + (uint64_t)i] = 1;
    }
  }
done:
  pthread_mutex_lock(&l->lock);
  for (int p = 0; p < PHASES; p++) {
    l->acked_lines[p] += acked[p];
    l->requests[p] += requests[p];
    l->non_2xx[p] += non_2xx[p];
    l->failed[p] += failed[p];
    l->failed_reused[p] += failed_reused[p];
    if (max_ms[p] > l->max_request_ms[p]) l->max_request_ms[p] = max_ms[p];
  }
  pthread_mutex_unlock(&l->lock);
  free(body);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return NULL;
}

/* Module swaps every `swap_every_ms` over [from, to): passthrough and upper in turn,
 * starting with upper. */
typedef struct swaps {
  size_t count, failed;
  uint64_t *sent_ns, *answered_ns; /* each request's times, failed ones included */
  size_t sent;
  double *api_ms;    /* request sent -> answer */
  double *daemon_ms; /* the answer's swap_ms */
  char kind[32];     /* the answer's `swap` (all the same, else "mixed") */
} swaps;

static void run_swaps(api_client *c, const options *o, const char *pipeline, const char *hashes[2],
                      uint64_t from, uint64_t to, swaps *s) {
  size_t cap = (size_t)((to - from) / ((uint64_t)o->swap_every_ms * 1000000u)) + 2;
  memset(s, 0, sizeof *s);
  s->api_ms = calloc(cap, sizeof(double));
  s->daemon_ms = calloc(cap, sizeof(double));
  s->sent_ns = calloc(cap, sizeof(uint64_t));
  s->answered_ns = calloc(cap, sizeof(uint64_t));
  if (!s->api_ms || !s->daemon_ms || !s->sent_ns || !s->answered_ns) abort();
  char route[200];
  snprintf(route, sizeof route, "/v1/pipelines/%s/nodes/p/module", pipeline);
  buffer reply = {0};
  for (size_t k = 0; k < cap; k++) {
    uint64_t due = from + k * (uint64_t)o->swap_every_ms * 1000000u;
    if (due >= to) break;
    sleep_until(due);
    char body[128];
    snprintf(body, sizeof body, "{\"sha256\":\"%s\"}", hashes[(k + 1) % 2]);
    uint64_t sent;
    long code = api_call(c, "PUT", route, "application/json", body, strlen(body), &reply, &sent);
    uint64_t answered = now_ns();
    s->sent_ns[s->sent] = sent;
    s->answered_ns[s->sent++] = answered;
    json_t *answer = json_loads(reply_text(&reply), 0, NULL);
    const char *kind = json_string_value(json_object_get(answer, "swap"));
    if (code != 200 || !kind) {
      if (!s->failed)
        fprintf(stderr, "swap_bench: swap %zu of %s: HTTP %ld %s\n", k + 1, pipeline, code,
                reply_text(&reply));
      s->failed++;
    } else {
      s->api_ms[s->count] = ms(answered - sent);
      s->daemon_ms[s->count] = json_number_value(json_object_get(answer, "swap_ms"));
      if (!s->kind[0])
        snprintf(s->kind, sizeof s->kind, "%s", kind);
      else if (strcmp(s->kind, kind) != 0)
        snprintf(s->kind, sizeof s->kind, "mixed");
      s->count++;
    }
    json_decref(answer);
  }
  free(reply.data);
}

static void swaps_free(swaps *s) {
  free(s->sent_ns);
  free(s->answered_ns);
  free(s->api_ms);
  free(s->daemon_ms);
}

typedef struct gap_results {
  double baseline_ms, swaps_ms; /* longest gap over the phase */
  double swaps_gap_after_ms;    /* the longest gap began this long after a swap was sent */
  double baseline_window_ms, swaps_window_ms;       /* median of each window's longest gap */
  double spanning_median_ms, spanning_max_ms;       /* over swaps: the longest gap that spans
                                                       any part of the swap's request */
  double baseline_gap_stall_ms, swaps_gap_stall_ms; /* of the longest gaps: the tail's own
                                                       stalls */
  double baseline_stall_ms, swaps_stall_ms;         /* the tail's longest stall per phase */
  swaps swapped;
  uint64_t growths;
} gap_results;

/* The longest gap that overlaps [from, to]: the growths just before and just after are
 * the bounds. */
static double gap_spanning_ms(const tail *t, uint64_t from, uint64_t to) {
  uint64_t lo = from, hi = to;
  for (size_t i = 0; i < t->count; i++) {
    if (t->times[i] <= from) lo = t->times[i];
    if (t->times[i] >= to) {
      hi = t->times[i];
      break;
    }
  }
  return longest_gap_ms(t, lo, hi + 1);
}

/* The gap figures of B or C from the tail's growths and the swaps' times. */
static void measure_gaps(const options *o, const char *part, tail *t, uint64_t baseline_from,
                         uint64_t swaps_from, uint64_t swaps_to, gap_results *g) {
  uint64_t window = (uint64_t)o->swap_every_ms * 1000000u, began;
  g->baseline_ms = longest_gap_at(t, baseline_from, swaps_from, &began);
  g->baseline_gap_stall_ms =
      tail_stalled_ms(t, began, began + (uint64_t)(g->baseline_ms * 1e6), false);
  g->swaps_ms = longest_gap_at(t, swaps_from, swaps_to, &began);
  g->swaps_gap_stall_ms = tail_stalled_ms(t, began, began + (uint64_t)(g->swaps_ms * 1e6), false);
  g->baseline_stall_ms = tail_stalled_ms(t, baseline_from, swaps_from, true);
  g->swaps_stall_ms = tail_stalled_ms(t, swaps_from, swaps_to, true);
  g->swaps_gap_after_ms = -1;
  for (size_t k = 0; k < g->swapped.sent; k++)
    if (g->swapped.sent_ns[k] <= began) g->swaps_gap_after_ms = ms(began - g->swapped.sent_ns[k]);
  g->baseline_window_ms = median_window_gap_ms(t, baseline_from, swaps_from, window);
  g->swaps_window_ms = median_window_gap_ms(t, swaps_from, swaps_to, window);
  double *spanning = calloc(g->swapped.sent + 1, sizeof *spanning);
  if (!spanning) abort();
  for (size_t k = 0; k < g->swapped.sent; k++)
    spanning[k] = gap_spanning_ms(t, g->swapped.sent_ns[k], g->swapped.answered_ns[k]);
  summary span = summarize(spanning, g->swapped.sent);
  g->spanning_median_ms = span.median;
  g->spanning_max_ms = span.max;
  free(spanning);
  g->growths = t->count;
  write_trace(o, part, t, g->swapped.sent_ns, g->swapped.answered_ns, g->swapped.sent,
              baseline_from, swaps_from);
  free(t->times);
  free(t->stalls);
  t->times = t->stalls = NULL;
}

typedef struct verify_results {
  uint64_t acked, lines, upper, lost, duplicates, unknown;
} verify_results;

/* Every acknowledged number must be in the output once (passthrough or upper-cased). */
static bool verify_output(const char *path, const load *l, verify_results *v) {
  memset(v, 0, sizeof *v);
  char *data;
  size_t len;
  if (!read_file(path, &data, &len)) {
    fprintf(stderr, "swap_bench: cannot read %s\n", path);
    return false;
  }
  uint64_t top = atomic_load(&l->next_seq);
  if (top > l->seq_cap) top = l->seq_cap; /* numbers past the cap were never sent */
  uint8_t *seen = calloc(top + 2, 1);
  if (!seen) abort();
  for (char *line = data; line < data + len;) {
    char *end = memchr(line, '\n', (size_t)(data + len - line));
    if (!end) end = data + len;
    v->lines++;
    const char *digits = line;
    while (digits < end && (*digits < '0' || *digits > '9')) digits++;
    uint64_t n = strtoull(digits, NULL, 10);
    if (end - line > 2 && line[2] == 'S') v->upper++;
    if (n == 0 || n > top)
      v->unknown++;
    else if (seen[n] < 255)
      seen[n]++;
    line = end + 1;
  }
  for (uint64_t n = 1; n <= top; n++) {
    if (l->acked[n]) {
      v->acked++;
      if (!seen[n]) v->lost++;
    }
    if (seen[n] > 1) v->duplicates += seen[n] - 1u;
  }
  free(seen);
  free(data);
  return true;
}

static char *http_pipeline(const char *name, unsigned port, const char *hash, const char *out) {
  char *text = NULL;
  if (asprintf(&text,
               "name: %s\n"
               "nodes:\n"
               "  - id: in\n"
               "    type: http\n"
               "    listen: 127.0.0.1:%u\n"
               "    path: /events\n"
               "    split: lines\n"
               "  - id: p\n"
               "    type: wasm\n"
               "    module: sha256:%s\n"
               "    inputs: [in]\n"
               "  - id: out\n"
               "    type: file\n"
               "    path: %s\n"
               "    inputs: [p]\n",
               name, port, hash, out) < 0)
    abort();
  return text;
}

static bool deploy_text(api_client *c, const char *name, const char *text) {
  char route[200];
  snprintf(route, sizeof route, "/v1/pipelines/%s", name);
  buffer reply = {0};
  long code = api_call(c, "PUT", route, "application/yaml", text, strlen(text), &reply, NULL);
  if (code != 201)
    fprintf(stderr, "swap_bench: deploy %s: HTTP %ld %s\n", name, code, reply_text(&reply));
  free(reply.data);
  return code == 201;
}

/* B: http -> wasm -> file under load; baseline phase, then swaps; then verification. */
static bool bench_http_swaps(api_client *c, const options *o, const char *hashes[2], gap_results *g,
                             load *l, verify_results *v) {
  const char *name = "swap-http";
  char out[4096];
  snprintf(out, sizeof out, "%s/%s.out", o->work, name);
  unlink(out);
  char *text = http_pipeline(name, o->source_port, hashes[0], out);
  bool ok = deploy_text(c, name, text);
  free(text);
  if (!ok) return false;

  memset(l, 0, sizeof *l);
  l->o = o;
  snprintf(l->url, sizeof l->url, "http://127.0.0.1:%u/events", o->source_port);
  double seconds = 1 + 2 * o->duration + 1 + 10;
  l->seq_cap = (uint64_t)(seconds * o->rate) + (uint64_t)o->lines * (uint64_t)o->threads * 4;
  l->acked = calloc(l->seq_cap + 1, 1);
  if (!l->acked) abort();
  pthread_mutex_init(&l->lock, NULL);
  atomic_init(&l->next_seq, 0);
  atomic_init(&l->phase, PHASE_WARMUP);
  atomic_init(&l->stop, false);

  tail t;
  tail_start(&t, out);
  uint64_t phase_ns = (uint64_t)(o->duration * 1e9);
  l->start_ns = now_ns() + 1000000u;
  load_thread *threads = calloc((size_t)o->threads, sizeof *threads);
  if (!threads) abort();
  for (int i = 0; i < o->threads; i++) {
    threads[i] = (load_thread){.l = l, .index = i};
    if (pthread_create(&threads[i].thread, NULL, load_main, &threads[i]) != 0) abort();
  }
  fprintf(stderr,
          "swap: 1 s warm-up, %.0f s without swaps, %.0f s with a swap every %d ms, "
          "%d events/s\n",
          o->duration, o->duration, o->swap_every_ms, o->rate);
  uint64_t baseline_from = l->start_ns + 1000000000u;
  sleep_until(baseline_from);
  atomic_store(&l->phase, PHASE_BASELINE);
  uint64_t swaps_from = baseline_from + phase_ns;
  sleep_until(swaps_from);
  atomic_store(&l->phase, PHASE_SWAPS);
  uint64_t swaps_to = swaps_from + phase_ns;
  run_swaps(c, o, name, hashes, swaps_from, swaps_to, &g->swapped);
  sleep_until(swaps_to);
  atomic_store(&l->phase, PHASE_COOLDOWN);
  sleep_until(swaps_to + 1000000000u);
  atomic_store(&l->stop, true);
  for (int i = 0; i < o->threads; i++) pthread_join(threads[i].thread, NULL);
  free(threads);
  sleep_us(20000); /* every request was acknowledged: its lines are written */
  tail_stop(&t);

  measure_gaps(o, "http", &t, baseline_from, swaps_from, swaps_to, g);
  ok = delete_pipeline(c, name) && verify_output(out, l, v);
  unlink(out);
  return ok;
}

/* C: generate -> wasm -> file; baseline phase, then swaps (drain). */
static bool bench_drain_swaps(api_client *c, const options *o, const char *hashes[2],
                              gap_results *g) {
  const char *name = "swap-drain";
  char out[4096], module[80];
  snprintf(out, sizeof out, "%s/%s.out", o->work, name);
  snprintf(module, sizeof module, "sha256:%s", hashes[0]);
  unlink(out);
  char *text = generate_pipeline(name, module, out, o->rate, o->drain_batch);
  bool ok = deploy_text(c, name, text);
  free(text);
  if (!ok) return false;
  if (!wait_first_line(out, 10000000000u)) {
    fprintf(stderr, "swap_bench: %s wrote nothing within 10 s\n", name);
    return false;
  }
  tail t;
  tail_start(&t, out);
  fprintf(stderr,
          "drain: %.0f s without swaps, %.0f s with a swap every %d ms, "
          "generate at %d events/s\n",
          o->duration, o->duration, o->swap_every_ms, o->rate);
  uint64_t phase_ns = (uint64_t)(o->duration * 1e9);
  uint64_t baseline_from = now_ns() + 200000000u;
  uint64_t swaps_from = baseline_from + phase_ns, swaps_to = swaps_from + phase_ns;
  sleep_until(swaps_from);
  run_swaps(c, o, name, hashes, swaps_from, swaps_to, &g->swapped);
  sleep_until(swaps_to + 200000000u);
  tail_stop(&t);
  measure_gaps(o, "drain", &t, baseline_from, swaps_from, swaps_to, g);
  ok = delete_pipeline(c, name);
  unlink(out);
  return ok;
}

/* --- report ---------------------------------------------------------------------------- */

static void row(const char *what, const char *value, const char *baseline, const char *ratio) {
  printf("| %s | %s | %s | %s |\n", what, value, baseline, ratio);
}

static void report_first_event(first_event_results *r) {
  summary d = summarize(r->deploy_ms, r->count);
  summary a = summarize(r->answer_ms, r->count);
  summary s = summarize(r->run_ms, r->count);
  char what[200], value[200], base[200], ratio[32];
  snprintf(what, sizeof what,
           "deploy → first event, cached module (PUT /v1/pipelines/NAME, generate → "
           "passthrough.wasm → file), %zu deploys",
           d.n);
  snprintf(value, sizeof value, "median %.2f ms, p90 %.2f ms (%.2f–%.2f)", d.median, d.p90, d.min,
           d.max);
  snprintf(base, sizeof base,
           "`sluice run`, exec → first event: median %.2f ms, p90 %.2f ms "
           "(%.2f–%.2f)",
           s.median, s.p90, s.min, s.max);
  snprintf(ratio, sizeof ratio, "%.2fx", d.median / s.median);
  row(what, value, base, ratio);
  snprintf(value, sizeof value, "median %.2f ms, p90 %.2f ms (%.2f–%.2f)", a.median, a.p90, a.min,
           a.max);
  row("deploy request → its answer (201), same deploys", value, "-", "-");
  printf("RESULT deploy_first_median_ms=%.3f deploy_first_p90_ms=%.3f deploy_first_min_ms=%.3f "
         "deploy_first_max_ms=%.3f deploy_answer_median_ms=%.3f run_first_median_ms=%.3f "
         "run_first_p90_ms=%.3f run_first_min_ms=%.3f run_first_max_ms=%.3f deploys=%zu\n",
         d.median, d.p90, d.min, d.max, a.median, s.median, s.p90, s.min, s.max, d.n);
}

static void report_gaps(const char *label, const char *key, const options *o, gap_results *g) {
  summary api = summarize(g->swapped.api_ms, g->swapped.count);
  summary dm = summarize(g->swapped.daemon_ms, g->swapped.count);
  char what[300], value[200], base[200], ratio[32];
  snprintf(what, sizeof what,
           "%s: longest output gap over %.0f s, a swap every %d ms (%zu swaps, `%s`)", label,
           o->duration, o->swap_every_ms, g->swapped.count, g->swapped.kind);
  snprintf(value, sizeof value,
           "%.2f ms (it began %.1f ms after a swap request; the tail thread itself was not "
           "running for %.1f ms of it)",
           g->swaps_ms, g->swaps_gap_after_ms, g->swaps_gap_stall_ms);
  snprintf(base, sizeof base, "no swaps, %.0f s: %.2f ms (the tail not running: %.1f ms of it)",
           o->duration, g->baseline_ms, g->baseline_gap_stall_ms);
  snprintf(ratio, sizeof ratio, "%.2fx", g->swaps_ms / g->baseline_ms);
  row(what, value, base, ratio);
  snprintf(what, sizeof what,
           "%s: output gap around each swap (the longest gap overlapping request → answer)", label);
  snprintf(value, sizeof value, "median %.2f ms, max %.2f ms", g->spanning_median_ms,
           g->spanning_max_ms);
  snprintf(base, sizeof base, "no swaps: longest gap per %d ms window, median %.2f ms",
           o->swap_every_ms, g->baseline_window_ms);
  row(what, value, base, "-");
  snprintf(what, sizeof what, "%s: module swap, PUT …/nodes/p/module → answer", label);
  snprintf(value, sizeof value, "median %.2f ms, max %.2f ms%s", api.median, api.max,
           g->swapped.failed ? " (SOME FAILED)" : "");
  snprintf(base, sizeof base, "daemon's `swap_ms`: median %.2f ms, max %.2f ms", dm.median, dm.max);
  row(what, value, base, "-");
  printf("RESULT %s_gap_baseline_ms=%.3f %s_gap_swaps_ms=%.3f %s_window_baseline_ms=%.3f "
         "%s_window_swaps_ms=%.3f %s_spanning_median_ms=%.3f %s_spanning_max_ms=%.3f "
         "%s_swap_api_median_ms=%.3f %s_swap_api_max_ms=%.3f "
         "%s_swap_daemon_median_ms=%.3f %s_swap_daemon_max_ms=%.3f %s_swaps=%zu "
         "%s_swaps_failed=%zu %s_swap_kind=%s %s_gap_after_swap_ms=%.3f "
         "%s_gap_baseline_tail_stall_ms=%.3f %s_gap_swaps_tail_stall_ms=%.3f "
         "%s_tail_stall_baseline_ms=%.3f %s_tail_stall_swaps_ms=%.3f\n",
         key, g->baseline_ms, key, g->swaps_ms, key, g->baseline_window_ms, key, g->swaps_window_ms,
         key, g->spanning_median_ms, key, g->spanning_max_ms, key, api.median, key, api.max, key,
         dm.median, key, dm.max, key, g->swapped.count, key, g->swapped.failed, key,
         g->swapped.kind, key, g->swaps_gap_after_ms, key, g->baseline_gap_stall_ms, key,
         g->swaps_gap_stall_ms, key, g->baseline_stall_ms, key, g->swaps_stall_ms);
}

static void report_load(const options *o, const load *l, const verify_results *v) {
  char value[400], base[300];
  snprintf(value, sizeof value,
           "%llu acknowledged, **%llu lost**, %llu duplicated; %llu of %llu output lines "
           "upper-cased",
           (unsigned long long)v->acked, (unsigned long long)v->lost,
           (unsigned long long)v->duplicates, (unsigned long long)v->upper,
           (unsigned long long)v->lines);
  row("HTTP: events (numbered lines) over the whole run, checked in the output file", value, "-",
      "-");
  double seconds = o->duration;
  snprintf(value, sizeof value,
           "%.0f events/s acknowledged; %llu requests, %llu non-2xx, %llu failed (%llu of them "
           "on a kept-alive connection); slowest request %.1f ms",
           (double)l->acked_lines[PHASE_SWAPS] / seconds,
           (unsigned long long)l->requests[PHASE_SWAPS],
           (unsigned long long)l->non_2xx[PHASE_SWAPS], (unsigned long long)l->failed[PHASE_SWAPS],
           (unsigned long long)l->failed_reused[PHASE_SWAPS], l->max_request_ms[PHASE_SWAPS]);
  snprintf(base, sizeof base,
           "no swaps: %.0f events/s; %llu requests, %llu non-2xx, %llu failed; slowest %.1f ms",
           (double)l->acked_lines[PHASE_BASELINE] / seconds,
           (unsigned long long)l->requests[PHASE_BASELINE],
           (unsigned long long)l->non_2xx[PHASE_BASELINE],
           (unsigned long long)l->failed[PHASE_BASELINE], l->max_request_ms[PHASE_BASELINE]);
  row("HTTP: the clients during the swap phase (a retry is a request)", value, base, "-");
  printf("RESULT http_acked=%llu http_lost=%llu http_duplicates=%llu http_unknown=%llu "
         "http_lines=%llu http_upper=%llu http_rate_baseline=%.0f http_rate_swaps=%.0f "
         "http_non2xx_swaps=%llu http_failed_swaps=%llu http_non2xx_baseline=%llu "
         "http_failed_baseline=%llu http_slowest_swaps_ms=%.3f http_slowest_baseline_ms=%.3f "
         "http_failed_reused_swaps=%llu\n",
         (unsigned long long)v->acked, (unsigned long long)v->lost,
         (unsigned long long)v->duplicates, (unsigned long long)v->unknown,
         (unsigned long long)v->lines, (unsigned long long)v->upper,
         (double)l->acked_lines[PHASE_BASELINE] / seconds,
         (double)l->acked_lines[PHASE_SWAPS] / seconds, (unsigned long long)l->non_2xx[PHASE_SWAPS],
         (unsigned long long)l->failed[PHASE_SWAPS], (unsigned long long)l->non_2xx[PHASE_BASELINE],
         (unsigned long long)l->failed[PHASE_BASELINE], l->max_request_ms[PHASE_SWAPS],
         l->max_request_ms[PHASE_BASELINE], (unsigned long long)l->failed_reused[PHASE_SWAPS]);
  if (l->first_problem[0]) printf("RESULT http_first_problem=\"%s\"\n", l->first_problem);
}

/* --- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  options o;
  if (!parse_options(argc, argv, &o)) {
    usage(stderr);
    return 2;
  }
  /* Sleeps of 200 and 500 us mean what they say (the default slack is 50 us). */
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  api_client c;
  if (!api_init(&c, &o)) return 1;

  char pass_hash[65], upper_hash[65];
  double pass_compile = 0, upper_compile = 0;
  if (!upload_module(&c, o.passthrough, pass_hash, &pass_compile) ||
      !upload_module(&c, o.upper, upper_hash, &upper_compile))
    return 1;
  const char *hashes[2] = {pass_hash, upper_hash};
  fprintf(stderr,
          "modules uploaded: passthrough %.12s (compile %.0f ms), upper %.12s "
          "(compile %.0f ms)\n",
          pass_hash, pass_compile, upper_hash, upper_compile);

  bool ok = true;
  first_event_results first = {0};
  gap_results http = {0}, drain = {0};
  load l = {0};
  verify_results v = {0};
  bool ran_first = false, ran_http = false, ran_drain = false;
  if (ok && wanted(&o, "deploy")) ok = ran_first = bench_first_event(&c, &o, pass_hash, &first);
  if (ok && wanted(&o, "swap")) ok = ran_http = bench_http_swaps(&c, &o, hashes, &http, &l, &v);
  if (ok && wanted(&o, "drain")) ok = ran_drain = bench_drain_swaps(&c, &o, hashes, &drain);

  printf("\n| measurement | Sluice | baseline, same run | ratio |\n|---|---|---|---|\n");
  if (ran_first) report_first_event(&first);
  if (ran_http) {
    report_gaps("HTTP (http → wasm → file) under load", "http", &o, &http);
    report_load(&o, &l, &v);
  }
  if (ran_drain) report_gaps("generate → wasm → file", "drain", &o, &drain);
  printf("\n- modules: passthrough.wasm compiled in %.0f ms and upper.wasm in %.0f ms at upload "
         "(PUT /v1/modules); every deploy and swap after that loads them from the cache\n",
         pass_compile, upper_compile);
  if (ran_http)
    printf("- HTTP load: %d threads, libcurl keep-alive, %d numbered lines per POST, %d events/s "
           "in total, paced; a request without a 2xx answer is sent again (same numbers); "
           "%llu file growths seen by the tail (polled every 500 us)\n",
           o.threads, o.lines, o.rate, (unsigned long long)http.growths);
  if (ran_drain) {
    int batch = o.rate / 20 < 1024 ? o.rate / 20 : 1024; /* generate paces 20 batches/s */
    if (o.drain_batch && o.drain_batch < batch) batch = o.drain_batch;
    char setting[64] = "the default batch_size";
    if (o.drain_batch) snprintf(setting, sizeof setting, "batch_size: %d", o.drain_batch);
    printf("- generate at %d events/s with %s emits a batch of %d events every %.1f ms: the "
           "shortest gap that pipeline can show\n",
           o.rate, setting, batch, 1e3 * batch / o.rate);
  }

  if (ran_http && (v.lost || v.unknown)) {
    fprintf(stderr,
            "swap_bench: FAIL: %llu acknowledged events missing from the output, %llu "
            "lines with unknown numbers\n",
            (unsigned long long)v.lost, (unsigned long long)v.unknown);
    ok = false;
  }
  if ((ran_http && http.swapped.failed) || (ran_drain && drain.swapped.failed)) ok = false;
  free(first.deploy_ms);
  free(first.answer_ms);
  free(first.run_ms);
  swaps_free(&http.swapped);
  swaps_free(&drain.swapped);
  free(l.acked);
  curl_easy_cleanup(c.curl);
  curl_global_cleanup();
  if (!ok) fprintf(stderr, "swap_bench: FAIL (see above)\n");
  return ok ? 0 : 1;
}
