/*
 * cmd_run.c - `sluice run`: one pipeline in the foreground (contracts.md §4).
 *
 *   sluice run PIPELINE.yaml
 *   sluice run --source URI --wasm MODULE.wasm [--wasm ...] --sink URI
 *
 * Signals: the first SIGINT/SIGTERM stops the sources and drains (within the pipeline's
 * drain_timeout); a second one exits at once with status 130. Signals are taken by one
 * thread with sigwait, so no other thread is ever interrupted by them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sluice/pipeline.h"

typedef struct run_args {
  const char *file;
  const char *source, *sink;
  const char **modules;
  size_t module_count;
  bool stats;
  const char *workers;
} run_args;

static void usage(FILE *out) {
  fprintf(
      out,
      "Usage: sluice run PIPELINE.yaml [--stats]\n"
      "       sluice run --source URI --wasm MODULE.wasm [--wasm ...] --sink URI [--stats]\n"
      "\n"
      "Runs a pipeline in the foreground until every source has ended and every event is\n"
      "delivered (exit 0). Ctrl-C (SIGINT) or SIGTERM stops the sources and drains what is in\n"
      "flight; a second signal exits at once.\n"
      "\n"
      "Quick mode chains the modules between one source and one sink. URIs:\n"
      "  stdin, stdout, null, log\n"
      "  file:PATH                      source: read once (?follow=true to follow); sink: append\n"
      "  http://HOST:PORT/PATH          source: listen (\":9000\" = every address); sink: POST\n"
      "  generate://?count=N&payload=T  source: synthetic events\n"
      "SOURCE_URI and SINK_URI in the environment stand in for --source and --sink.\n"
      "\n"
      "Options:\n"
      "  --stats        print per-node event counts to stderr at exit\n"
      "  --workers N    worker threads (overrides the pipeline's `workers`)\n");
}

static int parse_args(int argc, char **argv, run_args *a) {
  a->modules = calloc((size_t)argc, sizeof *a->modules);
  if (!a->modules) abort();
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return -1;
    } else if (strcmp(arg, "--stats") == 0) {
      a->stats = true;
    } else if (strcmp(arg, "--source") == 0 && has_value) {
      a->source = argv[++i];
    } else if (strcmp(arg, "--sink") == 0 && has_value) {
      a->sink = argv[++i];
    } else if (strcmp(arg, "--wasm") == 0 && has_value) {
      a->modules[a->module_count++] = argv[++i];
    } else if (strcmp(arg, "--workers") == 0 && has_value) {
      a->workers = argv[++i];
    } else if (arg[0] == '-') {
      fprintf(stderr, "sluice run: unknown option or missing value: %s (see sluice run --help)\n",
              arg);
      return SL_EXIT_USAGE;
    } else if (!a->file) {
      a->file = arg;
    } else {
      fprintf(stderr, "sluice run: one pipeline file at a time (got %s and %s)\n", a->file, arg);
      return SL_EXIT_USAGE;
    }
  }
  bool quick = a->source || a->sink || a->module_count;
  if (quick || !a->file) {
    if (!a->source) a->source = getenv("SOURCE_URI");
    if (!a->sink) a->sink = getenv("SINK_URI");
  }
  if (a->file && (a->source || a->sink || a->module_count) && quick) {
    fprintf(stderr, "sluice run: give a pipeline file or --source/--wasm/--sink, not both\n");
    return SL_EXIT_USAGE;
  }
  if (!a->file && (!a->source || !a->sink)) {
    fprintf(stderr, "sluice run: %s\n(see sluice run --help)\n",
            !a->source && !a->sink ? "give a pipeline file, or --source and --sink"
            : !a->source           ? "--source (or SOURCE_URI) is missing"
                                   : "--sink (or SINK_URI) is missing");
    return SL_EXIT_USAGE;
  }
  return 0;
}

/* Quick-mode messages point into YAML the user never saw: "<command line>:7:5: x" -> "x". */
static void drop_generated_locations(char *message) {
  static const char tag[] = "<command line>:";
  char *at;
  while ((at = strstr(message, tag)) != NULL) {
    char *rest = at + sizeof tag - 1;
    while (*rest && *rest != ' ') rest++; /* skips "7:5:" */
    if (*rest == ' ') rest++;
    memmove(at, rest, strlen(rest) + 1);
  }
}

static sl_status load_spec(const run_args *a, sl_pipeline_spec **spec, sl_error *err) {
  if (a->file) return sl_pipeline_load(a->file, NULL, spec, err);
  char *yaml;
  size_t len;
  sl_status st =
      sl__quick_pipeline_yaml(a->source, a->modules, a->module_count, a->sink, &yaml, &len, err);
  if (st != SL_OK) return st;
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
  st = sl_pipeline_load_text(yaml, len, "<command line>", cwd, NULL, spec, err);
  free(yaml);
  return st;
}

typedef struct signal_watch {
  sigset_t set;
  sl_pipeline *pipeline;
} signal_watch;

static void *watch_signals(void *arg) {
  signal_watch *watch = arg;
  int sig;
  if (sigwait(&watch->set, &sig) != 0) return NULL;
  fprintf(stderr, "sluice: %s: stopping sources and draining (send it again to exit at once)\n",
          strsignal(sig));
  sl_pipeline_stop(watch->pipeline);
  if (sigwait(&watch->set, &sig) != 0) return NULL;
  fprintf(stderr, "sluice: %s again: exiting without draining\n", strsignal(sig));
  _exit(130);
}

static void print_stats(const sl_pipeline_spec *spec, const sl_pipeline *pipeline) {
  for (size_t i = 0; i < spec->node_count; i++) {
    sl_node_stats s;
    if (!sl_pipeline_node_stats(pipeline, spec->nodes[i].id, &s)) continue;
    fprintf(stderr, "sluice: node %-12s in %llu  out %llu  errors %llu  batches %llu\n",
            spec->nodes[i].id, (unsigned long long)s.events_in, (unsigned long long)s.events_out,
            (unsigned long long)s.errors, (unsigned long long)s.batches);
  }
}

/* Events sinks could not deliver: those make the run a failure (exit 1). */
static uint64_t undelivered(const sl_pipeline_spec *spec, const sl_pipeline *pipeline) {
  uint64_t total = 0;
  for (size_t i = 0; i < spec->node_count; i++) {
    sl_node_stats s;
    if (spec->nodes[i].kind == SL_NODE_SINK &&
        sl_pipeline_node_stats(pipeline, spec->nodes[i].id, &s))
      total += s.errors;
  }
  return total;
}

int sl_cmd_run(int argc, char **argv) {
  run_args a = {0};
  int rc = parse_args(argc, argv, &a);
  if (rc != 0) {
    free(a.modules);
    return rc < 0 ? SL_EXIT_OK : rc;
  }
  signal(SIGPIPE, SIG_IGN);
  sl_error err = {{0}};
  sl_pipeline_spec *spec = NULL;
  sl_engine *engine = NULL;
  sl_pipeline *pipeline = NULL;
  sl_status st = load_spec(&a, &spec, &err);
  if (st == SL_OK && a.workers) {
    char *end;
    long n = strtol(a.workers, &end, 10);
    if (*end || n < 0 || n > 1024)
      st = sl_error_set(&err, SL_CONFIG, "--workers: expected a number from 0 to 1024, got '%s'",
                        a.workers);
    else
      spec->workers = (unsigned)n;
  }
  if (st == SL_OK) {
    sl_engine_options eopts = {.log = sl__cli_pipeline_log, .log_user = spec};
    st = sl_engine_new(&eopts, &engine, &err);
  }
  /* Signals go to the watcher thread only: block them before any thread starts. */
  signal_watch watch;
  sigemptyset(&watch.set);
  sigaddset(&watch.set, SIGINT);
  sigaddset(&watch.set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &watch.set, NULL);
  if (st == SL_OK) {
    sl_pipeline_options popts = {.log = sl__cli_pipeline_log, .log_user = spec};
    st = sl_pipeline_new(engine, spec, &popts, &pipeline, &err);
  }
  if (st == SL_OK) {
    watch.pipeline = pipeline;
    pthread_t watcher;
    if (pthread_create(&watcher, NULL, watch_signals, &watch) == 0) pthread_detach(watcher);
    st = sl_pipeline_start(pipeline, &err);
    if (st != SL_OK) {
      sl_error ignored;
      sl_pipeline_wait(pipeline, &ignored);
    } else {
      st = sl_pipeline_wait(pipeline, &err);
    }
  }
  if (st == SL_AGAIN) {
    /* The drain deadline passed: report and leave without waiting on stuck sinks. */
    fprintf(stderr, "sluice: %s\n", err.message);
    if (a.stats) print_stats(spec, pipeline);
    fflush(stderr);
    _exit(SL_EXIT_FAILURE);
  }
  int exit_code = SL_EXIT_OK;
  if (st != SL_OK) {
    if (spec) sl_pipeline_spec_redact(spec, err.message, sizeof err.message);
    if (!a.file) drop_generated_locations(err.message);
    fprintf(stderr, "%s%s\n", a.file ? "" : "sluice run: ", err.message);
    exit_code = sl_exit_code_for(st);
  } else {
    if (a.stats) print_stats(spec, pipeline);
    uint64_t failed = undelivered(spec, pipeline);
    if (failed) {
      fprintf(stderr, "sluice: %llu events could not be delivered (see the errors above)\n",
              (unsigned long long)failed);
      exit_code = SL_EXIT_FAILURE;
    }
  }
  sl_pipeline_destroy(pipeline);
  if (engine) sl_engine_destroy(engine);
  if (spec) sl_pipeline_spec_free(spec);
  free(a.modules);
  return exit_code;
}
