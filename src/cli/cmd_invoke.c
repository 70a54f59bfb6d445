/*
 * cmd_invoke.c - the processor author's commands: `sluice compile` and `sluice invoke`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/files.h"
#include "cli/cli.h"
#include "wasm/toolchain.h"

static const char compile_help[] =
    "Usage: sluice compile MODULE.wasm [--no-checks]\n"
    "\n"
    "Validates MODULE.wasm against the processor contract (wit/processor.wit), translates it\n"
    "with wasm2c, compiles it with the system C compiler and stores the native artifact in\n"
    "the cache under $SLUICE_HOME/cache. Prints the time taken and the artifact's path.\n"
    "A module already in the cache is verified and reused.\n";

static const char invoke_help[] =
    "Usage: sluice invoke MODULE.wasm [options]\n"
    "\n"
    "Runs one event through a processor and prints each resulting event's payload on its\n"
    "own line. A processor error or trap is printed on stderr as `error: KIND: MESSAGE`\n"
    "and the exit status is 1.\n"
    "\n"
    "Options:\n"
    "  --payload TEXT        the event's payload (default: empty)\n"
    "  --payload-file FILE   read the payload from FILE instead\n"
    "  --meta KEY=VALUE      add a metadata pair (repeatable, kept in order)\n"
    "  --config KEY=VALUE    a config pair handed to the processor's init (repeatable)\n"
    "  --env KEY=VALUE       an environment variable the processor sees (repeatable)\n"
    "  --memory SIZE         linear memory limit, e.g. 64MiB (default 64MiB)\n"
    "  --time-limit TIME     time limit per call, e.g. 100ms or 2s (default 100ms)\n"
    "  --stack SIZE          native stack a call may use (default 1MiB)\n"
    "  --show-meta           also print each event's metadata, as `  key=value` lines\n"
    "  --repeat N            run the event N times (to see state and recycling)\n";

static void print_compile_info(const char *path, const sl_compile_info *info) {
  if (info->cached)
    fprintf(stderr, "sluice: %s: cached artifact verified and loaded in %.1f ms\n", path,
            info->load_ms);
  else
    fprintf(stderr, "sluice: %s: compiled to native code in %.0f ms (loaded in %.1f ms)\n", path,
            info->compile_ms, info->load_ms);
}

int sl_cmd_compile(int argc, char **argv) {
  const char *path = NULL;
  sl_engine_options opts = {0};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(compile_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(argv[i], "--no-checks") == 0) {
      opts.no_interrupt_checks = true;
    } else if (argv[i][0] == '-' || path) {
      fprintf(stderr, "sluice compile: unexpected argument '%s'\n\n%s", argv[i], compile_help);
      return SL_EXIT_USAGE;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    fputs(compile_help, stderr);
    return SL_EXIT_USAGE;
  }
  sl_error err;
  sl_engine *engine;
  sl_status status = sl_engine_new(&opts, &engine, &err);
  if (status != SL_OK) {
    fprintf(stderr, "sluice: %s\n", err.message);
    return SL_EXIT_FAILURE;
  }
  sl_module *module;
  sl_compile_info info;
  status = sl_module_load_file(engine, path, &module, &info, &err);
  if (status == SL_OK) {
    print_compile_info(path, &info);
    printf("%s\n", info.artifact);
    sl_module_release(module);
  } else {
    fprintf(stderr, "sluice: %s\n", err.message);
  }
  sl_engine_destroy(engine);
  return sl_exit_code_for(status);
}

/* Splits "KEY=VALUE" in place. */
static bool split_pair(char *arg, sl_kv *kv) {
  char *eq = strchr(arg, '=');
  if (!eq || eq == arg) return false;
  *eq = '\0';
  kv->key = arg;
  kv->value = eq + 1;
  return true;
}

typedef struct invoke_args {
  const char *module_path;
  const char *payload;
  const char *payload_file;
  sl_kv *meta, *config, *env;
  size_t meta_count, config_count, env_count;
  sl_limits limits;
  bool show_meta;
  unsigned long repeat;
} invoke_args;

/* Returns -1 when parsing succeeded, else the exit code. */
static int parse_invoke(int argc, char **argv, invoke_args *a) {
  a->meta = calloc((size_t)argc, sizeof *a->meta);
  a->config = calloc((size_t)argc, sizeof *a->config);
  a->env = calloc((size_t)argc, sizeof *a->env);
  a->repeat = 1;
  if (!a->meta || !a->config || !a->env) abort();
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes_value = opt[0] == '-' && strcmp(opt, "--show-meta") != 0 &&
                       strcmp(opt, "--help") != 0 && strcmp(opt, "-h") != 0;
    if (takes_value && !value) {
      fprintf(stderr, "sluice invoke: %s needs a value\n", opt);
      return SL_EXIT_USAGE;
    }
    bool ok = true;
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      fputs(invoke_help, stdout);
      return SL_EXIT_OK;
    } else if (strcmp(opt, "--show-meta") == 0) {
      a->show_meta = true;
      continue;
    } else if (strcmp(opt, "--payload") == 0) {
      a->payload = value;
    } else if (strcmp(opt, "--payload-file") == 0) {
      a->payload_file = value;
    } else if (strcmp(opt, "--meta") == 0) {
      ok = split_pair(argv[i + 1], &a->meta[a->meta_count++]);
    } else if (strcmp(opt, "--config") == 0) {
      ok = split_pair(argv[i + 1], &a->config[a->config_count++]);
    } else if (strcmp(opt, "--env") == 0) {
      ok = split_pair(argv[i + 1], &a->env[a->env_count++]);
    } else if (strcmp(opt, "--memory") == 0) {
      ok = sl_parse_size(value, &a->limits.memory_bytes) && a->limits.memory_bytes >= 65536;
    } else if (strcmp(opt, "--stack") == 0) {
      uint64_t stack;
      ok = sl_parse_size(value, &stack) && stack >= 4096 && stack <= (1u << 30);
      a->limits.stack_bytes = (uint32_t)stack;
    } else if (strcmp(opt, "--time-limit") == 0) {
      ok = sl_parse_millis(value, &a->limits.time_ms);
    } else if (strcmp(opt, "--repeat") == 0) {
      char *end;
      a->repeat = strtoul(value, &end, 10);
      ok = *end == '\0' && a->repeat > 0;
    } else if (opt[0] == '-' || a->module_path) {
      fprintf(stderr, "sluice invoke: unexpected argument '%s'\n\n%s", opt, invoke_help);
      return SL_EXIT_USAGE;
    } else {
      a->module_path = opt;
      continue;
    }
    if (!ok) {
      fprintf(stderr, "sluice invoke: invalid value for %s: '%s'\n", opt, value);
      return SL_EXIT_USAGE;
    }
    i++;
  }
  if (!a->module_path) {
    fputs(invoke_help, stderr);
    return SL_EXIT_USAGE;
  }
  return -1;
}

static void print_events(const sl_event_list *out, bool show_meta) {
  for (size_t i = 0; i < out->count; i++) {
    const sl_event *e = &out->items[i];
    fwrite(e->payload.ptr, 1, e->payload.len, stdout);
    fputc('\n', stdout);
    if (!show_meta) continue;
    for (size_t m = 0; m < e->meta_count; m++)
      printf("  %.*s=%.*s\n", (int)e->meta[m].key.len, (const char *)e->meta[m].key.ptr,
             (int)e->meta[m].value.len, (const char *)e->meta[m].value.ptr);
  }
}

int sl_cmd_invoke(int argc, char **argv) {
  invoke_args a = {0};
  int code = parse_invoke(argc, argv, &a);
  sl_engine *engine = NULL;
  sl_module *module = NULL;
  sl_pool *pool = NULL;
  uint8_t *file_payload = NULL;
  sl_meta *meta = NULL;
  sl_event_list out;
  sl_event_list_init(&out);
  sl_error err;
  if (code >= 0) goto done;
  code = SL_EXIT_FAILURE;

  sl_event event = {.payload = sl_bytes_from_cstr(a.payload ? a.payload : "")};
  if (a.payload_file) {
    size_t len;
    if (sl__read_file(a.payload_file, &file_payload, &len, &err) != SL_OK) {
      fprintf(stderr, "sluice invoke: %s\n", err.message);
      code = SL_EXIT_USAGE;
      goto done;
    }
    event.payload = (sl_bytes){file_payload, len};
  }
  meta = calloc(a.meta_count + 1, sizeof *meta);
  if (!meta) abort();
  for (size_t i = 0; i < a.meta_count; i++)
    meta[i] = (sl_meta){sl_bytes_from_cstr(a.meta[i].key), sl_bytes_from_cstr(a.meta[i].value)};
  event.meta = meta;
  event.meta_count = a.meta_count;

  sl_status status = sl_engine_new(NULL, &engine, &err);
  if (status == SL_OK) {
    sl_compile_info info;
    status = sl_module_load_file(engine, a.module_path, &module, &info, &err);
    if (status == SL_OK && !info.cached) print_compile_info(a.module_path, &info);
  }
  if (status != SL_OK) {
    fprintf(stderr, "sluice: %s\n", err.message);
    code = sl_exit_code_for(status);
    goto done;
  }
  sl_pool_options opts = {.node_id = "invoke",
                          .config = a.config,
                          .config_count = a.config_count,
                          .env = a.env,
                          .env_count = a.env_count,
                          .limits = a.limits};
  sl_fault fault;
  if (sl_pool_new(module, &opts, &pool, &fault) != SL_OK) {
    fprintf(stderr, "error: %s: %s\n", sl_fault_name(fault.kind), fault.message);
    goto done;
  }
  code = SL_EXIT_OK;
  for (unsigned long r = 0; r < a.repeat; r++) {
    if (sl_pool_process(pool, &event, &out, &fault) != SL_OK) {
      fprintf(stderr, "error: %s: %s\n", sl_fault_name(fault.kind), fault.message);
      code = SL_EXIT_FAILURE;
      continue;
    }
    print_events(&out, a.show_meta);
    sl_event_list_clear(&out);
  }
done:
  fflush(stdout);
  sl_event_list_destroy(&out);
  sl_pool_destroy(pool);
  sl_module_release(module);
  sl_engine_destroy(engine);
  free(file_payload);
  free(meta);
  free(a.meta);
  free(a.config);
  free(a.env);
  return code;
}
