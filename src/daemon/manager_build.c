/*
 * manager_build.c - one version made runnable: the text loaded and validated, every
 * processor pinned to a module by hash, the graph built (modules compiled, init run).
 *
 * Pinning: a module path in the text is read once and stored by sha256 (store.h), and
 * the spec is pointed at the stored copy, so this version runs these bytes forever,
 * whatever happens to the file later. Without a store (`sluice dev`) modules run from
 * their paths, which is the point of dev.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/manager_internal.h"

int64_t sl__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sl__recipe_clear(sl_recipe *recipe) {
  free(recipe->source);
  free(recipe->file);
  free(recipe->dir);
  json_decref(recipe->pins);
  memset(recipe, 0, sizeof *recipe);
}

sl_status sl__recipe_copy(sl_recipe *dst, const sl_recipe *src) {
  memset(dst, 0, sizeof *dst);
  dst->source = malloc(src->source_len + 1);
  dst->file = strdup(src->file ? src->file : "pipeline.yaml");
  dst->dir = src->dir ? strdup(src->dir) : NULL;
  dst->pins = src->pins ? json_deep_copy(src->pins) : NULL;
  if (!dst->source || !dst->file || (src->dir && !dst->dir) || (src->pins && !dst->pins)) {
    sl__recipe_clear(dst);
    return SL_NOMEM;
  }
  memcpy(dst->source, src->source, src->source_len);
  dst->source[src->source_len] = '\0';
  dst->source_len = src->source_len;
  return SL_OK;
}

/* Every line of `message` becomes one problem. */
static void add_problems(json_t *problems, const char *message) {
  if (!problems) return;
  const char *line = message;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len) json_array_append_new(problems, json_stringn(line, len));
    if (!end) break;
    line = end + 1;
  }
}

static sl_status problem(json_t *problems, sl_error *err, sl_status status,
                         const sl_pipeline_spec *spec, const sl_node_spec *node, const char *fmt,
                         ...) __attribute__((format(printf, 6, 7)));

static sl_status problem(json_t *problems, sl_error *err, sl_status status,
                         const sl_pipeline_spec *spec, const sl_node_spec *node, const char *fmt,
                         ...) {
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (node)
    sl_error_set(err, status, "%s:%d:%d: node '%s': %s", spec->file, node->loc.line, node->loc.col,
                 node->id, what);
  else
    sl_error_set(err, status, "%s", what);
  add_problems(problems, err->message);
  return status;
}

static void run_log(void *user, const char *node, const char *stream, const char *line,
                    size_t len) {
  sl_running *run = user;
  char text[4096];
  if (len >= sizeof text) len = sizeof text - 1;
  memcpy(text, line, len);
  text[len] = '\0';
  sl_pipeline_spec_redact(run->spec, text, sizeof text);
  sl_log_hub_push(run->manager->logs, run->name, atomic_load(&run->version), node ? node : "-",
                  stream, text, strlen(text));
}

static bool is_hash(const char *text) {
  if (strlen(text) != 64) return false;
  for (const char *c = text; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return false;
  return true;
}

/* The hash processor `node` runs: a pin, `module: sha256:HEX`, an uploaded path, or the
 * file itself, stored now. NULL pin without a store: run the path as it is. */
static sl_status pin_module(sl_running *run, const sl_recipe *recipe, const json_t *uploaded,
                            sl_node_spec *node, json_t *problems, sl_error *err) {
  sl_manager *manager = run->manager;
  sl_wasm_config *wasm = node->config;
  const char *path = wasm->module;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char hash[65] = "";

  const json_t *pin = recipe->pins ? json_object_get(recipe->pins, node->id) : NULL;
  const json_t *up = uploaded ? json_object_get(uploaded, path) : NULL;
  if (json_is_string(pin)) {
    snprintf(hash, sizeof hash, "%s", json_string_value(pin));
  } else if (strncmp(base, "sha256:", 7) == 0) {
    snprintf(hash, sizeof hash, "%s", base + 7);
  } else if (json_is_string(up)) {
    snprintf(hash, sizeof hash, "%s", json_string_value(up));
  } else if (manager->store) {
    sl_error why;
    if (sl_store_import_module_file(manager->store, path, hash, &why) != SL_OK)
      return problem(problems, err, SL_CONFIG, run->spec, node, "%s", why.message);
  } else {
    return SL_OK; /* dev: the file as it is now */
  }

  if (!is_hash(hash))
    return problem(problems, err, SL_CONFIG, run->spec, node,
                   "'%s' is not a module hash (64 lowercase hex digits)", hash);
  if (!manager->store)
    return problem(problems, err, SL_CONFIG, run->spec, node,
                   "module sha256:%s: modules by hash need the daemon (`sluice up`)", hash);
  char stored[4096];
  sl_error why;
  if (sl_store_module_path(manager->store, hash, stored, sizeof stored, &why) != SL_OK)
    return problem(problems, err, SL_NOT_FOUND, run->spec, node,
                   "module sha256:%s was never uploaded (PUT /v1/modules)", hash);
  char *copy = strdup(stored);
  char **grown = realloc(run->owned_paths, (run->owned_count + 1) * sizeof *grown);
  if (!copy || !grown) {
    free(copy);
    if (grown) run->owned_paths = grown;
    return sl_error_set(err, SL_NOMEM, "out of memory");
  }
  run->owned_paths = grown;
  run->owned_paths[run->owned_count++] = copy;
  wasm->module = copy;
  json_object_set_new(run->pins, node->id, json_string(hash));
  return SL_OK;
}

sl_status sl__recipe_load(sl_manager *manager, const sl_recipe *recipe, sl_pipeline_spec **spec,
                          json_t *problems, sl_error *err) {
  const char *dir = recipe->dir ? recipe->dir : sl_engine_home(manager->engine);
  const char *file = recipe->file ? recipe->file : "pipeline.yaml";
  sl_status status =
      sl_pipeline_load_text(recipe->source, recipe->source_len, file, dir, NULL, spec, err);
  if (status == SL_OK) return SL_OK;
  add_problems(problems, err->message);
  return status == SL_IO ? SL_CONFIG : status; /* an unreadable secret file: the request's */
}

sl_status sl__running_build(sl_manager *manager, const sl_recipe *recipe, const json_t *uploaded,
                            const char *expect_name, sl_pipeline_spec *loaded, sl_running **out,
                            json_t *problems, sl_error *err) {
  sl_running *run = calloc(1, sizeof *run);
  if (!run) {
    sl_pipeline_spec_free(loaded);
    return sl_error_set(err, SL_NOMEM, "out of memory");
  }
  run->spec = loaded;
  run->manager = manager;
  pthread_mutex_init(&run->sample_lock, NULL);
  run->pins = json_object();
  sl_status status = sl__recipe_copy(&run->recipe, recipe);
  if (status != SL_OK || !run->pins) {
    sl__running_free(run);
    return sl_error_set(err, SL_NOMEM, "out of memory");
  }
  if (!run->spec &&
      (status = sl__recipe_load(manager, recipe, &run->spec, problems, err)) != SL_OK) {
    sl__running_free(run);
    return status;
  }
  if (expect_name && strcmp(expect_name, run->spec->name) != 0) {
    status = problem(problems, err, SL_CONFIG, run->spec, NULL,
                     "%s: the pipeline is named '%s', but the request is for '%s'", run->spec->file,
                     run->spec->name, expect_name);
    sl__running_free(run);
    return status;
  }
  run->name = strdup(run->spec->name);
  if (!run->name) {
    sl__running_free(run);
    return sl_error_set(err, SL_NOMEM, "out of memory");
  }

  if (recipe->pins) { /* a pin for a node that is not a processor is a caller's mistake */
    const char *id;
    json_t *value;
    json_object_foreach(recipe->pins, id, value) {
      const sl_node_spec *node = sl_pipeline_spec_node(run->spec, id);
      if (!node || node->kind != SL_NODE_PROCESSOR) {
        status = problem(problems, err, SL_NOT_FOUND, run->spec, NULL,
                         "pipeline '%s' has no processor node '%s'", run->spec->name, id);
        sl__running_free(run);
        return status;
      }
    }
  }
  for (size_t i = 0; i < run->spec->node_count; i++) {
    sl_node_spec *node = &run->spec->nodes[i];
    if (node->kind != SL_NODE_PROCESSOR) continue;
    if ((status = pin_module(run, recipe, uploaded, node, problems, err)) != SL_OK) {
      sl__running_free(run);
      return status;
    }
  }

  run->samples = calloc(run->spec->node_count, sizeof *run->samples);
  if (!run->samples) {
    sl__running_free(run);
    return sl_error_set(err, SL_NOMEM, "out of memory");
  }
  sl_pipeline_options opts = {
      .home = sl_engine_home(manager->engine), .log = run_log, .log_user = run};
  status = sl_pipeline_new(manager->engine, run->spec, &opts, &run->pipeline, err);
  if (status != SL_OK) {
    add_problems(problems, err->message);
    sl__running_free(run);
    return status;
  }
  *out = run;
  return SL_OK;
}

void sl__running_free(sl_running *run) {
  if (!run) return;
  if (run->pipeline) {
    if (run->started) {
      sl_pipeline_stop(run->pipeline);
      sl_error err;
      if (sl_pipeline_wait(run->pipeline, &err) != SL_OK)
        run_log(run, "-", "error", err.message, strlen(err.message));
    }
    sl_pipeline_destroy(run->pipeline);
  }
  sl_pipeline_spec_free(run->spec);
  for (size_t i = 0; i < run->owned_count; i++) free(run->owned_paths[i]);
  free(run->owned_paths);
  free(run->samples);
  json_decref(run->pins);
  sl__recipe_clear(&run->recipe);
  pthread_mutex_destroy(&run->sample_lock);
  free(run->name);
  free(run);
}
