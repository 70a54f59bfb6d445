/*
 * cmd_dev.c - `sluice dev FILE`: run a pipeline in the foreground and redeploy it, with
 * the daemon's hot swap, whenever the file or a module it names changes.
 *
 * No daemon and no store: the manager runs in-process, modules run from their paths
 * (the compile cache notices a changed .wasm by its hash). Folders are watched rather
 * than files, because editors and compilers replace a file by renaming a new one over
 * it, which a watch on the old inode would miss. Changes are debounced (200 ms) so a
 * compiler writing a module in several steps causes one redeploy.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/files.h"
#include "daemon/manager.h"
#include "sluice/pipeline.h"

#define DEBOUNCE_MS 200

static void usage(FILE *out) {
  fprintf(out,
          "Usage: sluice dev PIPELINE.yaml\n"
          "\n"
          "Runs the pipeline in the foreground, like `sluice run`, and redeploys it whenever\n"
          "the file or any .wasm module it names changes. A redeploy is a hot swap: events\n"
          "in flight finish on the old version. An invalid change is reported and the\n"
          "running version keeps going. No daemon is needed.\n"
          "\n"
          "Ctrl-C drains and exits 0; a second Ctrl-C exits at once.\n");
}

/* The files whose change means a redeploy: the pipeline and its modules. */
typedef struct watch_set {
  int fd;
  char **paths; /* absolute */
  size_t count;
} watch_set;

static void watch_clear(watch_set *w) {
  if (w->fd >= 0) close(w->fd);
  for (size_t i = 0; i < w->count; i++) free(w->paths[i]);
  free(w->paths);
  w->fd = -1;
  w->paths = NULL;
  w->count = 0;
}

static void watch_add(watch_set *w, const char *path) {
  for (size_t i = 0; i < w->count; i++)
    if (strcmp(w->paths[i], path) == 0) return;
  char **grown = realloc(w->paths, (w->count + 1) * sizeof *grown);
  if (!grown) return;
  w->paths = grown;
  if (!(w->paths[w->count] = strdup(path))) return;
  w->count++;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  inotify_add_watch(w->fd, dirname(dir),
                    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB | IN_DELETE);
}

/* Watches `file` and, when it loads, the modules it names now. */
static void watch_reset(watch_set *w, const char *file) {
  watch_clear(w);
  w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  watch_add(w, file);
  sl_pipeline_spec *spec = NULL;
  sl_error err;
  if (sl_pipeline_load(file, NULL, &spec, &err) != SL_OK) return;
  for (size_t i = 0; i < spec->node_count; i++)
    if (spec->nodes[i].kind == SL_NODE_PROCESSOR)
      watch_add(w, ((const sl_wasm_config *)spec->nodes[i].config)->module);
  sl_pipeline_spec_free(spec);
}

/* Drains the inotify queue; true when one of the watched files changed. */
static bool watch_changed(watch_set *w) {
  char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  bool changed = false;
  ssize_t n;
  while ((n = read(w->fd, buf, sizeof buf)) > 0) {
    for (char *at = buf; at < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)at;
      if (ev->len)
        for (size_t i = 0; i < w->count; i++) {
          const char *base = strrchr(w->paths[i], '/');
          if (strcmp(base ? base + 1 : w->paths[i], ev->name) == 0) changed = true;
        }
      at += sizeof *ev + ev->len;
    }
  }
  return changed;
}

/* Deploys the file's current text; prints what happened. */
static void deploy_file(sl_manager *manager, const char *file, char *name, size_t name_cap) {
  uint8_t *text = NULL;
  size_t len = 0;
  sl_error err = {{0}};
  if (sl__read_file(file, &text, &len, &err) != SL_OK) {
    fprintf(stderr, "sluice dev: %s\n", err.message);
    return;
  }
  char dir[PATH_MAX], base[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", file);
  snprintf(base, sizeof base, "%s", file);
  sl_deploy deploy = {.source = (const char *)text, .source_len = len, .file = basename(base),
                      .dir = dirname(dir), .note = "dev"};
  sl_deploy_result result;
  sl_status status = sl_manager_deploy(manager, &deploy, &result, &err);
  free(text);
  if (status != SL_OK) {
    fprintf(stderr, "sluice dev: not deployed; %s keeps running:\n",
            name[0] ? "the previous version" : "nothing");
    size_t i;
    json_t *line;
    if (json_array_size(result.problems))
      json_array_foreach(result.problems, i, line) fprintf(stderr, "  %s\n", json_string_value(line));
    else
      fprintf(stderr, "  %s\n", err.message);
    sl_deploy_result_clear(&result);
    return;
  }
  if (name[0] && strcmp(name, result.name) != 0) {
    /* Renamed in the file: the old name's graph goes (it already drained its share). */
    sl_error ignored;
    sl_manager_remove(manager, name, &ignored);
  }
  snprintf(name, name_cap, "%s", result.name);
  fprintf(stderr, "sluice dev: %s version %lld running (%s, %.1f ms)\n", result.name,
          (long long)result.version, result.swap, result.swap_ms);
  sl_deploy_result_clear(&result);
}

int sl_cmd_dev(int argc, char **argv) {
  const char *arg = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return SL_EXIT_OK;
    }
    if (argv[i][0] == '-' || arg) {
      fprintf(stderr, "sluice dev: unexpected '%s' (see sluice dev --help)\n", argv[i]);
      return SL_EXIT_USAGE;
    }
    arg = argv[i];
  }
  if (!arg) {
    usage(stderr);
    return SL_EXIT_USAGE;
  }
  char file[PATH_MAX];
  if (!realpath(arg, file)) {
    fprintf(stderr, "sluice dev: cannot open %s: %s\n", arg, strerror(errno));
    return SL_EXIT_USAGE;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sigfd = signalfd(-1, &signals, SFD_CLOEXEC);

  sl_error err = {{0}};
  sl_engine *engine = NULL;
  sl_log_hub *logs = sl_log_hub_new(true);
  sl_manager *manager = NULL;
  sl_status status = logs ? sl_engine_new(NULL, &engine, &err) : SL_NOMEM;
  if (status == SL_OK) {
    sl_manager_options opts = {.engine = engine, .store = NULL, .logs = logs};
    status = sl_manager_new(&opts, &manager, &err);
  }
  if (status != SL_OK || sigfd < 0) {
    fprintf(stderr, "sluice dev: %s\n", status != SL_OK ? err.message : strerror(errno));
    sl_log_hub_destroy(logs);
    sl_engine_destroy(engine);
    if (sigfd >= 0) close(sigfd);
    return SL_EXIT_FAILURE;
  }

  char name[256] = "";
  watch_set watch = {.fd = -1};
  watch_reset(&watch, file);
  deploy_file(manager, file, name, sizeof name);
  fprintf(stderr, "sluice dev: watching %s and %zu module(s); Ctrl-C stops\n", file,
          watch.count - 1);

  int pending = -1; /* ms until a debounced redeploy; -1: none */
  for (;;) {
    struct pollfd fds[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = watch.fd, .events = POLLIN}};
    int ready = poll(fds, 2, pending);
    if (ready < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo info; /* consumed here, so a second signal is a new one */
      if (read(sigfd, &info, sizeof info) < 0) info.ssi_signo = 0;
      break;
    }
    if (fds[1].revents & POLLIN) {
      if (watch_changed(&watch)) pending = DEBOUNCE_MS;
      continue;
    }
    if (ready == 0 && pending >= 0) {
      pending = -1;
      fprintf(stderr, "sluice dev: change seen, redeploying\n");
      deploy_file(manager, file, name, sizeof name);
      watch_reset(&watch, file); /* the modules named may have changed */
    }
  }

  fprintf(stderr, "sluice dev: stopping, draining\n");
  sl__cli_exit_on_second_signal("sluice dev", &signals);
  sl_manager_destroy(manager);
  sl_log_hub_destroy(logs);
  sl_engine_destroy(engine);
  watch_clear(&watch);
  close(sigfd);
  return SL_EXIT_OK;
}
