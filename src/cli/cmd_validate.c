/*
 * cmd_validate.c - `sluice validate PIPELINE.yaml`: checks a pipeline without running it
 * (contracts.md §4). Exit 0 when it is valid, 2 with every problem on stderr otherwise.
 *
 * Besides what sl_pipeline_load checks (syntax, types, keys, graph, tests), every wasm
 * node's module is loaded through the engine and its init runs once with the node's
 * config, so a module that is not valid Wasm, does not follow the processor contract or
 * refuses its config is caught here too; compiling fills the cache, which makes the
 * first `sluice run` faster.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "sluice/pipeline.h"

static const char validate_help[] =
    "Usage: sluice validate [--no-modules] PIPELINE.yaml [PIPELINE.yaml ...]\n"
    "\n"
    "Checks a pipeline file without running it: YAML syntax, ${...} references and\n"
    "secrets, every node's settings, the graph (inputs, sources, cycles) and the tests\n"
    "section; then loads each wasm node's module (compiling it into the cache under\n"
    "$SLUICE_HOME if needed) and runs its init with the node's config, so a module that\n"
    "fails to load or refuses its config is reported too.\n"
    "\n"
    "Prints `FILE: ok: ...` on success (exit 0). Otherwise prints every problem as\n"
    "`file:line:col: what is wrong` on stderr and exits with status 2.\n"
    "\n"
    "Options:\n"
    "  --no-modules   skip loading the modules and their init (fast; checks the file only)\n";

static const char *plural(size_t n, const char *one, const char *many) {
  return n == 1 ? one : many;
}

/* Loads every wasm node's module and runs its init with the node's config; prints each
 * failure. True when all are fine. */
static bool load_modules(const sl_pipeline_spec *spec, int *code) {
  sl_engine *engine = NULL;
  sl_error err;
  if (sl_engine_new(NULL, &engine, &err) != SL_OK) {
    sl_pipeline_spec_redact(spec, err.message, sizeof err.message);
    fprintf(stderr, "sluice: %s\n", err.message);
    *code = SL_EXIT_FAILURE;
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < spec->node_count; i++) {
    const sl_node_spec *node = &spec->nodes[i];
    if (node->kind != SL_NODE_PROCESSOR) continue;
    if (sl_pipeline_check_processor(engine, spec, i, &err) == SL_OK) continue;
    fprintf(stderr, "%s\n", err.message);
    ok = false;
    *code = SL_EXIT_USAGE;
  }
  sl_engine_destroy(engine);
  return ok;
}

static int validate_one(const char *path, bool modules) {
  sl_pipeline_spec *spec = NULL;
  sl_error err;
  sl_status status = sl_pipeline_load(path, NULL, &spec, &err);
  if (status != SL_OK) {
    fprintf(stderr, "%s\n", err.message);
    return status == SL_IO ? SL_EXIT_USAGE : sl_exit_code_for(status);
  }
  int code = SL_EXIT_OK;
  if (!modules || load_modules(spec, &code)) {
    size_t counts[3] = {0};
    for (size_t i = 0; i < spec->node_count; i++) counts[spec->nodes[i].kind]++;
    printf("%s: ok: pipeline '%s', %zu %s (%zu %s, %zu %s, %zu %s), %zu %s\n", path, spec->name,
           spec->node_count, plural(spec->node_count, "node", "nodes"), counts[SL_NODE_SOURCE],
           plural(counts[SL_NODE_SOURCE], "source", "sources"), counts[SL_NODE_PROCESSOR],
           plural(counts[SL_NODE_PROCESSOR], "processor", "processors"), counts[SL_NODE_SINK],
           plural(counts[SL_NODE_SINK], "sink", "sinks"), spec->test_count,
           plural(spec->test_count, "test", "tests"));
  }
  sl_pipeline_spec_free(spec);
  return code;
}

int sl_cmd_validate(int argc, char **argv) {
  bool modules = true;
  int files = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(validate_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--no-modules") == 0) {
      modules = false;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "sluice validate: unknown option '%s'\n\n%s", argv[i], validate_help);
      return SL_EXIT_USAGE;
    } else {
      files++;
    }
  }
  if (!files) {
    fputs(validate_help, stderr);
    return SL_EXIT_USAGE;
  }
  int worst = SL_EXIT_OK;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1]) continue;
    int code = validate_one(argv[i], modules);
    /* A usage/config problem (2) outranks a runtime failure (1). */
    if (code == SL_EXIT_USAGE || (code && worst == SL_EXIT_OK)) worst = code;
  }
  fflush(stdout);
  return worst;
}
