/*
 * The `http` source as a user runs it: `sluice run pipeline.yaml` in a child process on a
 * free loopback port, driven with libcurl (HTTP/1.1, h2c with prior knowledge and by
 * Upgrade) and raw sockets (faulty peers). What reaches the sink is read from the
 * child's standard output (a stdout sink), a file or a pipe the test drains slowly.
 *
 * Map: processes and files | HTTP calls | tests.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/e2e.h"
#include "../support/fixture.h"

/* --- processes and files --------------------------------------------------------- */

typedef struct sluice_run {
  pid_t pid;
  int port;
  char dir[64];
  char out_path[128]; /* the child's stdout, unless the test passed a pipe */
  char err_path[128];
} sluice_run;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert(f, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)size + 1);
  cr_assert(text);
  size_t n = fread(text, 1, (size_t)size, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Waits up to `ms` for the child to exit; its exit code, or -1 if it did not. */
static int wait_exit(sluice_run *run, long ms) {
  for (long waited = 0; waited <= ms; waited += 20) {
    int status;
    pid_t done = waitpid(run->pid, &status, WNOHANG);
    if (done == run->pid) {
      run->pid = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    sleep_ms(20);
  }
  return -1;
}

/*
 * Writes `yaml` (with every "PORT" replaced by a free port) to a fresh folder and starts
 * `sluice run` on it; the child's stdout goes to `out_fd` if >= 0, else to out_path.
 * Returns once the port accepts connections.
 */
static sluice_run start_sluice(const char *yaml, int out_fd) {
  sluice_run run = {0};
  run.port = e2e_free_port();
  snprintf(run.dir, sizeof run.dir, "/tmp/sluice-http-XXXXXX");
  cr_assert(mkdtemp(run.dir));
  snprintf(run.out_path, sizeof run.out_path, "%s/out.txt", run.dir);
  snprintf(run.err_path, sizeof run.err_path, "%s/err.txt", run.dir);
  char pipeline[128], port[16];
  snprintf(pipeline, sizeof pipeline, "%s/pipeline.yaml", run.dir);
  snprintf(port, sizeof port, "%d", run.port);
  FILE *f = fopen(pipeline, "w");
  cr_assert(f);
  for (const char *p = yaml; *p;) {
    if (strncmp(p, "PORT", 4) == 0) {
      fputs(port, f);
      p += 4;
    } else {
      fputc(*p++, f);
    }
  }
  fclose(f);

  const char *bin = getenv("SLUICE_BIN");
  cr_assert(bin, "SLUICE_BIN is not set: run the tests with `make test`");
  fflush(NULL);
  run.pid = fork();
  cr_assert(run.pid >= 0);
  if (run.pid == 0) {
    /* Criterion runs each test in a process of its own: if a failed assertion ends it,
     * the child goes too instead of listening on forever. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int out = out_fd >= 0 ? out_fd : open(run.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(run.err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execl(bin, bin, "run", pipeline, (char *)NULL);
    _exit(127);
  }
  /* The first run compiles the processor, which takes a while under the sanitizers. */
  for (int waited = 0;; waited += 25) {
    int fd = connect_to(run.port);
    if (fd >= 0) {
      close(fd);
      break;
    }
    int code = wait_exit(&run, 0);
    if (code >= 0) {
      char *err = slurp(run.err_path);
      cr_assert_fail("sluice exited with %d before listening: %s", code, err);
    }
    cr_assert(waited < 120000, "sluice is not listening on %d after 120 s", run.port);
    sleep_ms(25);
  }
  return run;
}

/* SIGTERM, then the exit code (the test fails if it takes over a minute). */
static int stop_sluice(sluice_run *run) {
  kill(run->pid, SIGTERM);
  int code = wait_exit(run, 60000);
  if (code < 0) {
    kill(run->pid, SIGKILL);
    wait_exit(run, 5000);
    cr_assert_fail("sluice did not exit within 60 s of SIGTERM");
  }
  return code;
}

/* Removes the run's folder; a failed test leaves it behind for a look. */
static void remove_run_dir(const sluice_run *run) {
  const char *names[] = {"out.txt", "err.txt", "pipeline.yaml"};
  char path[160];
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", run->dir, names[i]);
    unlink(path);
  }
  rmdir(run->dir);
}

/* The yaml of an http -> MODULE -> stdout pipeline; `extra_source` and `extra_sink` are
 * more settings, each line indented by four spaces. */
static const char *pipeline_yaml(const char *module, const char *extra_source,
                                 const char *extra_sink) {
  static char yaml[8192];
  snprintf(yaml, sizeof yaml,
           "name: http-e2e\n"
           "workers: 2\n"
           "nodes:\n"
           "  - id: in\n"
           "    type: http\n"
           "    listen: \"127.0.0.1:PORT\"\n"
           "    path: /events\n"
           "%s"
           "  - id: proc\n"
           "    type: wasm\n"
           "    module: %s\n"
           "    inputs: [in]\n"
           "  - id: out\n"
           "    type: stdout\n"
           "    inputs: [proc]\n"
           "%s",
           extra_source, example_path(module), extra_sink);
  return yaml;
}

/* --- HTTP calls ------------------------------------------------------------------ */

typedef struct reply {
  long status;  /* 0 when no answer came */
  long version; /* CURL_HTTP_VERSION_1_1 or _2_0 */
  char body[4096];
  size_t body_len;
  char retry_after[32];
  char allow[64];
} reply;

static size_t on_body(char *data, size_t size, size_t n, void *user) {
  reply *r = user;
  size_t len = size * n;
  size_t room = sizeof r->body - 1 - r->body_len;
  memcpy(r->body + r->body_len, data, len < room ? len : room);
  r->body_len += len < room ? len : room;
  r->body[r->body_len] = '\0';
  return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap) {
  size_t name_len = strlen(name);
  if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':') return;
  const char *v = line + name_len + 1;
  while (*v == ' ') v++;
  size_t n = 0;
  while (v + n < line + len && v[n] != '\r' && v[n] != '\n' && n + 1 < cap) n++;
  memcpy(out, v, n);
  out[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *user) {
  reply *r = user;
  header_value(data, size * n, "retry-after", r->retry_after, sizeof r->retry_after);
  header_value(data, size * n, "allow", r->allow, sizeof r->allow);
  return size * n;
}

static void init_curl(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct call {
  const char *method; /* GET, POST, PUT, DELETE... */
  const char *target; /* path and query */
  const char *body;
  size_t body_len;
  long http_version;  /* 0: HTTP/1.1 */
  long timeout_ms;    /* 0: 30 s */
  const char *header; /* one more request header, or NULL */
} call;

/* One request on `curl` (reused for keep-alive) or on a fresh handle if NULL. */
static reply http_on(CURL *curl, int port, call c) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_curl);
  reply r = {0};
  bool own = !curl;
  if (own) curl = curl_easy_init();
  curl_easy_reset(curl);
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, c.target);
  struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
  if (c.header) headers = curl_slist_append(headers, c.header);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c.timeout_ms ? c.timeout_ms : 30000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION,
                   c.http_version ? c.http_version : (long)CURL_HTTP_VERSION_1_1);
  if (strcmp(c.method, "GET") == 0) {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c.method);
    if (c.body) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c.body);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)c.body_len);
    }
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(curl, CURLINFO_HTTP_VERSION, &r.version);
  }
  curl_slist_free_all(headers);
  if (own) curl_easy_cleanup(curl);
  return r;
}

static reply http(int port, call c) { return http_on(NULL, port, c); }

static reply post(int port, const char *body) {
  return http(
      port, (call){.method = "POST", .target = "/events", .body = body, .body_len = strlen(body)});
}

/* --- tests ----------------------------------------------------------------------- */

TestSuite(http_source, .timeout = 300);

Test(http_source, post_is_one_event_answered_after_delivery) {
  sluice_run run = start_sluice(pipeline_yaml("upper", "", ""), -1);
  reply r = post(run.port, "hello, http");
  cr_assert_eq(r.status, 200, "status %ld: %s", r.status, r.body);
  cr_assert_str_eq(r.body, "{\"accepted\":1}");
  r = http(run.port,
           (call){.method = "PUT", .target = "/events", .body = "put too", .body_len = 7});
  cr_assert_eq(r.status, 200);
  /* 200 means delivered: the line is in the sink before the process even stops. */
  char *out = slurp(run.out_path);
  cr_assert_str_eq(out, "HELLO, HTTP\nPUT TOO\n");
  free(out);
  cr_assert_eq(stop_sluice(&run), 0);
  remove_run_dir(&run);
}

Test(http_source, split_lines_makes_one_event_per_non_empty_line) {
  sluice_run run = start_sluice(pipeline_yaml("upper", "    split: lines\n", ""), -1);
  reply r = post(run.port, "one\r\n\ntwo\nthree");
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_str_eq(r.body, "{\"accepted\":3}");
  r = post(run.port, "\n\r\n");
  cr_assert_eq(r.status, 200);
  cr_assert_str_eq(r.body, "{\"accepted\":0}");
  cr_assert_eq(stop_sluice(&run), 0);
  char *out = slurp(run.out_path);
  cr_assert_str_eq(out, "ONE\nTWO\nTHREE\n");
  free(out);
  remove_run_dir(&run);
}

Test(http_source, get_query_is_one_json_object) {
  sluice_run run = start_sluice(pipeline_yaml("passthrough", "", ""), -1);
  reply r = http(run.port,
                 (call){.method = "GET", .target = "/events?a=1&b=x+y&c=%2F%C3%A9&a=2&flag&&d="});
  cr_assert_eq(r.status, 200, "%s", r.body);
  r = http(run.port, (call){.method = "GET", .target = "/events"});
  cr_assert_eq(r.status, 200);
  r = http(run.port, (call){.method = "GET", .target = "/events?bad=%zz"});
  cr_assert_eq(r.status, 400);
  cr_assert(strstr(r.body, "escape"), "%s", r.body);
  r = http(run.port, (call){.method = "GET", .target = "/events?bad=%ff"});
  cr_assert_eq(r.status, 400);
  cr_assert(strstr(r.body, "UTF-8"), "%s", r.body);
  cr_assert_eq(stop_sluice(&run), 0);
  char *out = slurp(run.out_path);
  /* repeated keys: the last value wins (at the key's first position) */
  cr_assert_str_eq(
      out, "{\"a\":\"2\",\"b\":\"x y\",\"c\":\"/\xC3\xA9\",\"flag\":\"\",\"d\":\"\"}\n{}\n");
  free(out);
  remove_run_dir(&run);
}

Test(http_source, every_event_carries_method_path_and_headers) {
  sluice_run run =
      start_sluice(pipeline_yaml("passthrough", "    split: lines\n", "    with_meta: true\n"), -1);
  reply r = http(run.port, (call){.method = "POST",
                                  .target = "/events?x=1",
                                  .body = "a\nb",
                                  .body_len = 3,
                                  .header = "X-Request-Tag: Some Value"});
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(stop_sluice(&run), 0);
  char *out = slurp(run.out_path);
  char host[64];
  snprintf(host, sizeof host, " http.header.host=127.0.0.1:%d ", run.port);
  const char *second = strchr(out, '\n');
  cr_assert(second, "%s", out);
  for (const char *line = out; line; line = line == out ? second + 1 : NULL) {
    cr_assert(strncmp(line, "http.method=POST http.path=/events ", 35) == 0, "%s", out);
    cr_assert(strstr(line, " http.header.x-request-tag=Some Value "), "%s", out);
    cr_assert(strstr(line, host), "%s", out);
    cr_assert(strstr(line, " http.header.content-length=3 "), "%s", out);
  }
  cr_assert(strstr(out, " a\n") && strstr(out, " b\n"), "%s", out);
  free(out);
  remove_run_dir(&run);
}

Test(http_source, wrong_path_method_or_size_is_refused) {
  sluice_run run = start_sluice(pipeline_yaml("passthrough", "    max_body: 1KiB\n", ""), -1);
  reply r =
      http(run.port, (call){.method = "POST", .target = "/other", .body = "x", .body_len = 1});
  cr_assert_eq(r.status, 404);
  cr_assert(strstr(r.body, "\"error\""), "%s", r.body);
  r = http(run.port, (call){.method = "POST", .target = "/events/", .body = "x", .body_len = 1});
  cr_assert_eq(r.status, 404);
  r = http(run.port, (call){.method = "DELETE", .target = "/events"});
  cr_assert_eq(r.status, 405);
  cr_assert_str_eq(r.allow, "GET, POST, PUT");
  static char big[2048];
  memset(big, 'x', sizeof big);
  r = http(run.port,
           (call){.method = "POST", .target = "/events", .body = big, .body_len = sizeof big});
  cr_assert_eq(r.status, 413);
  r = http(run.port, (call){.method = "POST", .target = "/events", .body = big, .body_len = 1024});
  cr_assert_eq(r.status, 200, "exactly max_body is fine: %s", r.body);
  cr_assert_eq(stop_sluice(&run), 0);
  char *out = slurp(run.out_path);
  cr_assert_eq(strlen(out), 1025, "only the 1 KiB event: %zu bytes", strlen(out));
  free(out);
  remove_run_dir(&run);
}

Test(http_source, http2_with_prior_knowledge_and_by_upgrade) {
  sluice_run run = start_sluice(pipeline_yaml("upper", "", ""), -1);
  reply r = http(run.port, (call){.method = "POST",
                                  .target = "/events",
                                  .body = "over h2",
                                  .body_len = 7,
                                  .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0);
  cr_assert_str_eq(r.body, "{\"accepted\":1}");
  r = http(run.port, (call){.method = "POST",
                            .target = "/events",
                            .body = "upgraded",
                            .body_len = 8,
                            .http_version = CURL_HTTP_VERSION_2_0});
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0, "Upgrade: h2c was not taken");
  cr_assert_eq(stop_sluice(&run), 0);
  char *out = slurp(run.out_path);
  cr_assert_str_eq(out, "OVER H2\nUPGRADED\n");
  free(out);
  remove_run_dir(&run);
}

Test(http_source, bad_listen_and_port_in_use_are_reported) {
  sluice_run run = {0};
  snprintf(run.dir, sizeof run.dir, "/tmp/sluice-http-XXXXXX");
  cr_assert(mkdtemp(run.dir));
  char cmd[8192], err_path[128];
  snprintf(err_path, sizeof err_path, "%s/err.txt", run.dir);

  /* A listener of someone else's on the port. */
  int port = e2e_free_port();
  int holder = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert(bind(holder, (struct sockaddr *)&addr, sizeof addr) == 0);
  cr_assert(listen(holder, 1) == 0);
  snprintf(cmd, sizeof cmd, "%s run --source http://127.0.0.1:%d/events --wasm %s --sink null 2>%s",
           getenv("SLUICE_BIN"), port, example_path("passthrough"), err_path);
  int status = system(cmd);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  char *err = slurp(err_path);
  char expected[128];
  snprintf(expected, sizeof expected, "cannot listen on 127.0.0.1:%d: Address already in use",
           port);
  cr_assert(strstr(err, expected), "%s", err);
  free(err);
  close(holder);

  snprintf(cmd, sizeof cmd,
           "%s run --source http://127.0.0.1:99999/events --wasm %s --sink null 2>%s",
           getenv("SLUICE_BIN"), example_path("passthrough"), err_path);
  status = system(cmd);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "a configuration error exits 2");
  err = slurp(err_path);
  cr_assert(strstr(err, "listen: '127.0.0.1:99999' has a port above 65535"), "%s", err);
  free(err);
  remove_run_dir(&run);
}

/* Raw bytes to the port; then reads until the server closes (or 2 s pass). */
static void send_raw(int port, const void *bytes, size_t len, bool wait_close) {
  int fd = connect_to(port);
  cr_assert(fd >= 0);
  if (len) {
    ssize_t n = write(fd, bytes, len);
    (void)n;
  }
  if (wait_close) {
    char buf[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 2000) > 0 && read(fd, buf, sizeof buf) > 0) {
    }
  }
  close(fd);
}

Test(http_source, faulty_peers_do_not_hurt) {
  sluice_run run = start_sluice(pipeline_yaml("passthrough", "    max_body: 64KiB\n", ""), -1);
  unsigned char noise[4096];
  srand(7);
  for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)rand();
  send_raw(run.port, noise, sizeof noise, true);
  send_raw(run.port, "", 0, false);
#define SEND_TEXT(text, wait_close) send_raw(run.port, text, sizeof text - 1, wait_close)
  SEND_TEXT("POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf", false);
  SEND_TEXT("POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true);
  SEND_TEXT("GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", true);
  SEND_TEXT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00garbage", true);
  static const char h2_noise[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  unsigned char h2[sizeof h2_noise - 1 + sizeof noise];
  memcpy(h2, h2_noise, sizeof h2_noise - 1);
  memcpy(h2 + sizeof h2_noise - 1, noise, sizeof noise);
  send_raw(run.port, h2, sizeof h2, true);
  static char long_header[70000];
  snprintf(long_header, sizeof long_header, "GET /other HTTP/1.1\r\nConnection: close\r\nX-Long: ");
  size_t used = strlen(long_header);
  memset(long_header + used, 'a', sizeof long_header - used - 5);
  memcpy(long_header + sizeof long_header - 5, "\r\n\r\n", 4);
  send_raw(run.port, long_header, sizeof long_header - 1, true);
  for (int i = 0; i < 50; i++) SEND_TEXT("POST /events HTTP/1.1\r\n", false);
#undef SEND_TEXT

  reply r = post(run.port, "still fine");
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(stop_sluice(&run), 0);
  char *out = slurp(run.out_path);
  cr_assert_str_eq(out, "still fine\n");
  free(out);
  remove_run_dir(&run);
}

/* --- a slow sink: the child's stdout is a small pipe the test reads when it wants ---- */

typedef struct drain {
  int fd;
  char *text;
  size_t len, cap;
  pthread_t thread;
} drain;

static void *drain_main(void *arg) {
  drain *d = arg;
  for (;;) {
    if (d->len + 65536 > d->cap) {
      d->cap = d->cap ? d->cap * 2 : 1 << 20;
      d->text = realloc(d->text, d->cap + 1);
    }
    ssize_t n = read(d->fd, d->text + d->len, d->cap - d->len);
    if (n <= 0) break;
    d->len += (size_t)n;
  }
  d->text[d->len] = '\0';
  return NULL;
}

static void drain_start(drain *d, int fd) {
  d->fd = fd;
  cr_assert(pthread_create(&d->thread, NULL, drain_main, d) == 0);
}

static void drain_finish(drain *d) {
  pthread_join(d->thread, NULL);
  close(d->fd);
}

/* A pipe whose write end the child gets as stdout; 4 KiB of buffer, so a larger event
 * blocks the stdout sink until the test reads. */
static void small_pipe(int fds[2]) {
  cr_assert(pipe(fds) == 0);
  fcntl(fds[1], F_SETPIPE_SZ, 4096);
}

typedef struct posting {
  int port;
  const char *body;
  long http_version;
  long timeout_ms;
  bool retry_503; /* post again while the answer is 503 */
  reply result;
  pthread_t thread;
} posting;

static void *posting_main(void *arg) {
  posting *p = arg;
  do {
    p->result = http(p->port, (call){.method = "POST",
                                     .target = "/events",
                                     .body = p->body,
                                     .body_len = strlen(p->body),
                                     .http_version = p->http_version,
                                     .timeout_ms = p->timeout_ms});
    if (p->result.status == 503) sleep_ms(2);
  } while (p->retry_503 && p->result.status == 503);
  return NULL;
}

static void post_in_background(posting *p) {
  cr_assert(pthread_create(&p->thread, NULL, posting_main, p) == 0);
}

static char *big_event(const char *tag, size_t size) {
  char *body = malloc(size + 1);
  memset(body, 'b', size);
  memcpy(body, tag, strlen(tag));
  body[size] = '\0';
  return body;
}

Test(http_source, full_pipeline_answers_503_and_loses_nothing) {
  int fds[2];
  small_pipe(fds);
  char yaml[8192];
  snprintf(yaml, sizeof yaml, "max_in_flight: 1\n%s",
           pipeline_yaml("passthrough", "    retry_after: 1500ms\n", ""));
  sluice_run run = start_sluice(yaml, fds[1]);
  close(fds[1]);

  /* Until the test reads, the sink is stuck on `first` and the one credit is taken. */
  char *first = big_event("first", 100000);
  posting blocked = {.port = run.port, .body = first, .retry_503 = true};
  post_in_background(&blocked);
  reply r = {0};
  char body[32];
  int probes = 0;
  for (; probes < 1000; probes++) {
    snprintf(body, sizeof body, "probe-%d", probes);
    r = post(run.port, body);
    if (r.status == 503) break;
    cr_assert_eq(r.status, 200, "%s", r.body); /* before `first` got in: delivered */
    sleep_ms(5);
  }
  cr_assert_eq(r.status, 503, "never full");
  cr_assert_str_eq(r.retry_after, "2", "1500ms rounds up to 2 s");
  cr_assert(strstr(r.body, "full"), "%s", r.body);
  r = http(run.port, (call){.method = "POST",
                            .target = "/events",
                            .body = "refused-h2",
                            .body_len = 10,
                            .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
  cr_assert_eq(r.status, 503);
  cr_assert_str_eq(r.retry_after, "2");

  drain out = {0};
  drain_start(&out, fds[0]);
  pthread_join(blocked.thread, NULL);
  cr_assert_eq(blocked.result.status, 200, "%s", blocked.result.body);
  for (int i = 0; i < 20; i++) {
    snprintf(body, sizeof body, "after-%d", i);
    r = post(run.port, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
  }
  cr_assert_eq(stop_sluice(&run), 0);
  drain_finish(&out);
  cr_assert(strstr(out.text, "firstbbb"), "the blocked event is missing");
  for (int i = 0; i < probes; i++) {
    snprintf(body, sizeof body, "probe-%d\n", i);
    cr_assert(strstr(out.text, body), "%s is missing", body);
  }
  for (int i = 0; i < 20; i++) {
    snprintf(body, sizeof body, "after-%d\n", i);
    cr_assert(strstr(out.text, body), "%s is missing", body);
  }
  snprintf(body, sizeof body, "probe-%d\n", probes);
  cr_assert_null(strstr(out.text, body), "a 503'd event went through");
  cr_assert_null(strstr(out.text, "refused-h2"), "a 503'd event went through");
  free(out.text);
  free(first);
  remove_run_dir(&run);
}

Test(http_source, client_leaving_before_the_ack_is_harmless) {
  int fds[2];
  small_pipe(fds);
  char yaml[8192];
  snprintf(yaml, sizeof yaml, "max_in_flight: 4\n%s", pipeline_yaml("passthrough", "", ""));
  sluice_run run = start_sluice(yaml, fds[1]);
  close(fds[1]);
  char *h1 = big_event("gone-h1", 50000), *h2 = big_event("gone-h2", 50000);
  posting p1 = {.port = run.port, .body = h1, .timeout_ms = 500};
  posting p2 = {.port = run.port,
                .body = h2,
                .timeout_ms = 500,
                .http_version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE};
  post_in_background(&p1);
  post_in_background(&p2);
  pthread_join(p1.thread, NULL);
  pthread_join(p2.thread, NULL);
  cr_assert_eq(p1.result.status, 0, "the sink is stuck, so no answer within 500 ms");
  cr_assert_eq(p2.result.status, 0);
  /* Both clients are gone; now the acks come back to requests that no longer exist. */
  drain out = {0};
  drain_start(&out, fds[0]);
  reply r = post(run.port, "after");
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(stop_sluice(&run), 0);
  drain_finish(&out);
  cr_assert(strstr(out.text, "gone-h1") && strstr(out.text, "gone-h2") &&
            strstr(out.text, "after\n"));
  free(out.text);
  free(h1);
  free(h2);
  remove_run_dir(&run);
}

/* Several clients post numbered events on keep-alive connections until the server goes. */
typedef struct client {
  int port;
  int id;
  long http_version;
  int answered; /* events 0 .. answered-1 got 200 */
  pthread_t thread;
} client;

static void *client_main(void *arg) {
  client *c = arg;
  CURL *curl = curl_easy_init();
  char body[64];
  for (int i = 0; i < 100000; i++) {
    snprintf(body, sizeof body, "c%d-e%d", c->id, i);
    reply r = http_on(curl, c->port,
                      (call){.method = "POST",
                             .target = "/events",
                             .body = body,
                             .body_len = strlen(body),
                             .http_version = c->http_version,
                             .timeout_ms = 20000});
    if (r.status != 200) break;
    c->answered = i + 1;
  }
  curl_easy_cleanup(curl);
  return NULL;
}

Test(http_source, sigterm_drains_and_keeps_every_answered_event) {
  sluice_run run = start_sluice(pipeline_yaml("passthrough", "", ""), -1);
  enum { CLIENTS = 6 };
  client clients[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    clients[i] = (client){.port = run.port,
                          .id = i,
                          .http_version =
                              i % 2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1};
    cr_assert(pthread_create(&clients[i].thread, NULL, client_main, &clients[i]) == 0);
  }
  sleep_ms(500);
  cr_assert_eq(stop_sluice(&run), 0);
  for (int i = 0; i < CLIENTS; i++) pthread_join(clients[i].thread, NULL);

  /* seen[c][e]: event e of client c is in the sink */
  bool *seen[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) seen[i] = calloc((size_t)clients[i].answered + 1, 1);
  char *out = slurp(run.out_path);
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    int c, e;
    cr_assert(sscanf(line, "c%d-e%d", &c, &e) == 2 && c >= 0 && c < CLIENTS, "odd line: %s", line);
    if (e < clients[c].answered) seen[c][e] = true;
  }
  int total = 0;
  for (int i = 0; i < CLIENTS; i++) {
    cr_assert_gt(clients[i].answered, 0, "client %d got no 200 at all", i);
    for (int e = 0; e < clients[i].answered; e++)
      cr_assert(seen[i][e], "c%d-e%d was answered 200 but is not in the sink", i, e);
    total += clients[i].answered;
    free(seen[i]);
  }
  cr_log_info("%d events answered 200 before the drain", total);
  free(out);
  remove_run_dir(&run);
}
