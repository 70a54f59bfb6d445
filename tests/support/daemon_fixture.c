/*
 * daemon_fixture.c - see daemon_fixture.h.
 */
#include "daemon_fixture.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

/* The run's compile cache (the test process's SLUICE_HOME) linked into a fresh home, so
 * a module compiles once per run rather than once per test. */
static void share_cache(const char *home) {
  const char *shared = getenv("SLUICE_HOME");
  cr_assert_eq(mkdir(home, 0700), 0, "mkdir %s", home);
  if (!shared || !*shared) return;
  char cache[1024], link[1024];
  snprintf(cache, sizeof cache, "%s/cache", shared);
  snprintf(link, sizeof link, "%s/cache", home);
  mkdir(shared, 0700);
  mkdir(cache, 0700);
  cr_assert_eq(symlink(cache, link), 0, "symlink %s", link);
}

/* `sluice up` in d->dir, output in .stdout/.stderr there; it dies with the test. */
static pid_t spawn_daemon(const daemon_fixture *d) {
  char listen[64], out[1024], err[1024];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", d->port);
  snprintf(out, sizeof out, "%s/.stdout", d->dir);
  snprintf(err, sizeof err, "%s/.stderr", d->dir);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr) || chdir(d->dir) != 0) _exit(127);
    execl(e2e_bin(), "sluice", "up", "--listen", listen, (char *)NULL);
    _exit(127);
  }
  return pid;
}

void daemon_start(daemon_fixture *d) {
  if (!d->dir) {
    d->dir = strdup(e2e_tmpdir());
    snprintf(d->home, sizeof d->home, "%s/home", d->dir);
    share_cache(d->home);
    d->port = e2e_free_port();
    snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
  }
  /* What client commands run by the test find the daemon by. */
  setenv("SLUICE_HOME", d->home, 1);
  setenv("SLUICE_SERVER", d->url, 1);
  unsetenv("SLUICE_TOKEN");
  d->pid = spawn_daemon(d);
  char path[600];
  snprintf(path, sizeof path, "%s/token", d->home);
  for (int waited = 0; !e2e_wait_port(d->port, 20); waited += 20) {
    int status;
    if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
      d->pid = 0;
      snprintf(path, sizeof path, "%s/.stderr", d->dir);
      cr_assert_fail("sluice up exited before listening: %s", e2e_read(path));
    }
    cr_assert(waited < 30000, "the daemon did not listen on %d", d->port);
  }
  char *token = e2e_read(path);
  token[strcspn(token, "\n")] = '\0';
  cr_assert(token[0], "no token in %s", path);
  snprintf(d->token, sizeof d->token, "%s", token);
  free(token);
  for (int waited = 0; waited < 30000; waited += 50) {
    if (daemon_call(d, "GET", "/readyz", NULL, NULL, NULL, 0, NULL) == 200) return;
    usleep(50 * 1000);
  }
  cr_assert_fail("the daemon did not become ready");
}

int daemon_signal(daemon_fixture *d, int sig) {
  if (!d->pid) return 0;
  kill(d->pid, sig);
  int code = e2e_wait(d->pid, NULL);
  d->pid = 0;
  return code;
}

void daemon_finish(daemon_fixture *d) {
  bool running = d->pid != 0;
  int code = daemon_signal(d, SIGTERM);
  /* A clean drain exits 0; under AddressSanitizer a leak or error would not. */
  if (running) {
    char *err = NULL;
    if (code != 0 && d->dir && asprintf(&err, "%s/.stderr", d->dir) > 0) {
      char *text = e2e_read(err);
      cr_expect_eq(code, 0, "the daemon exited %d after SIGTERM:\n%s", code, text);
      free(text);
      free(err);
    }
  }
  if (d->dir) e2e_rmdir(d->dir);
  free(d->dir);
  d->dir = NULL;
}

typedef struct buffer {
  char *data;
  size_t len;
} buffer;

static size_t collect(char *ptr, size_t size, size_t n, void *user) {
  buffer *b = user;
  char *grown = realloc(b->data, b->len + size * n + 1);
  if (!grown) return 0;
  memcpy(grown + b->len, ptr, size * n);
  b->len += size * n;
  grown[b->len] = '\0';
  b->data = grown;
  return size * n;
}

long daemon_call(const daemon_fixture *d, const char *method, const char *path, const char *token,
                 const char *content_type, const void *data, size_t len, char **body) {
  CURL *curl = curl_easy_init();
  char url[4096], auth[160], ctype[160];
  snprintf(url, sizeof url, "%s%s", d->url, path);
  struct curl_slist *headers = NULL;
  if (!token) token = d->token;
  if (*token) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
  }
  if (content_type) {
    snprintf(ctype, sizeof ctype, "Content-Type: %s", content_type);
    headers = curl_slist_append(headers, ctype);
  }
  buffer response = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (data) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (body)
    *body = response.data;
  else
    free(response.data);
  return status;
}

json_t *daemon_json(const daemon_fixture *d, const char *method, const char *path,
                    const json_t *request, long *status) {
  char *text = request ? json_dumps(request, JSON_COMPACT) : NULL;
  char *body = NULL;
  *status = daemon_call(d, method, path, NULL, text ? "application/json" : NULL, text,
                        text ? strlen(text) : 0, &body);
  free(text);
  json_error_t err;
  json_t *out = body ? json_loads(body, 0, &err) : NULL;
  free(body);
  return out;
}

json_t *daemon_deploy(const daemon_fixture *d, const char *name, const char *yaml, long *status) {
  char path[1024], *body = NULL;
  snprintf(path, sizeof path, "/v1/pipelines/%s?dir=%s", name, d->dir);
  *status = daemon_call(d, "PUT", path, NULL, "application/yaml", yaml, strlen(yaml), &body);
  json_error_t err;
  json_t *out = body ? json_loads(body, 0, &err) : NULL;
  if (!out) cr_log_warn("deploy answered %ld: %s", *status, body ? body : "(nothing)");
  free(body);
  return out;
}

bool daemon_wait_count(const daemon_fixture *d, const char *path, const char *field,
                       long long at_least, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    long status;
    json_t *j = daemon_json(d, "GET", path, NULL, &status);
    long long value = json_integer_value(json_object_get(j, field));
    json_decref(j);
    if (value >= at_least) return true;
    usleep(50 * 1000);
  }
  return false;
}
