/*
 * pipeline_load.c - sl_pipeline_load: a pipeline file to a validated sl_pipeline_spec.
 *
 * The order of the steps matters: the secrets section is read first (its own values
 * may use ${VAR} but not ${secret:...}), then every other value is interpolated, then
 * the top-level settings, the nodes, the graph and the tests are read. Every step
 * reports to one problem list, so the user sees everything wrong at once, in file order.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/conf_fields.h"
#include "config/interpolate.h"
#include "config/secrets.h"
#include "config/spec_steps.h"
#include "config/yaml_doc.h"
#include "core/files.h"

enum { MAX_WORKERS = 1024, MAX_NAME = 128 };

/* The top-level settings, read through a table like any node's. */
typedef struct top_settings {
  char *name;
  int64_t workers;
  int64_t batch_size;
  int64_t max_in_flight;
  uint64_t drain_timeout;
} top_settings;

static const sl_conf_field top_fields[] = {
    {"name", SL_CONF_STRING, 0, NULL, offsetof(top_settings, name),
     "The pipeline's name; the file name without its extension by default.", NULL},
    {"workers", SL_CONF_INT, 0, "0", offsetof(top_settings, workers),
     "Worker threads; 0 is one per CPU.", NULL},
    {"batch_size", SL_CONF_INT, 0, "1024", offsetof(top_settings, batch_size),
     "Events per batch sources aim for.", NULL},
    {"max_in_flight", SL_CONF_INT, 0, "10000", offsetof(top_settings, max_in_flight),
     "Events a source may have accepted but not yet delivered.", NULL},
    {"drain_timeout", SL_CONF_DURATION, 0, "30s", offsetof(top_settings, drain_timeout),
     "Time allowed to drain in-flight events at shutdown.", NULL},
    {NULL},
};

static const char *const top_keys[] = {"nodes", "secrets", "tests"};

static bool valid_name(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > MAX_NAME || name[0] == '.' || name[0] == '-') return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

/* "dir/demo.yaml" -> "demo". */
static char *name_from_file(sl_conf_store *store, const char *file) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  return sl__store_strndup(store, base, len);
}

static void apply_top_settings(const sl_load_ctx *ctx, const sl_ynode *root,
                               sl_pipeline_spec *spec) {
  /* A value that fails to parse leaves its field as it was: UNSET tells it apart from
   * a parsed value out of range, which gets a message of its own. */
  const int64_t UNSET = INT64_MIN;
  top_settings top = {
      .workers = UNSET, .batch_size = UNSET, .max_in_flight = UNSET, .drain_timeout = 30000};
  sl_conf_scope scope = {.own_keys = top_keys, .own_count = 3};
  sl__conf_fill(ctx, top_fields, root, &scope, &top);
  const sl_ypair *pair;
  if (top.workers != UNSET && (top.workers < 0 || top.workers > MAX_WORKERS)) {
    if ((pair = sl__ymap_find(root, "workers")))
      sl__conf_report_value(ctx, pair->value, "workers",
                            "0 (one per CPU) or a number of threads up to 1024");
  } else if (top.workers != UNSET) {
    spec->workers = (unsigned)top.workers;
  }
  if (top.batch_size != UNSET && top.batch_size < 1 && (pair = sl__ymap_find(root, "batch_size")))
    sl__conf_report_value(ctx, pair->value, "batch_size", "an integer of 1 or more");
  if (top.max_in_flight != UNSET && top.max_in_flight < 1 &&
      (pair = sl__ymap_find(root, "max_in_flight")))
    sl__conf_report_value(ctx, pair->value, "max_in_flight", "an integer of 1 or more");
  if (top.batch_size > 0) spec->batch_size = (uint64_t)top.batch_size;
  if (top.max_in_flight > 0) spec->max_in_flight = (uint64_t)top.max_in_flight;
  spec->drain_timeout = top.drain_timeout;

  pair = sl__ymap_find(root, "name");
  if (top.name && !valid_name(top.name)) {
    sl__conf_report_value(ctx, pair->value, "name",
                          "a name of letters, digits, '_', '-' and '.' (at most 128)");
  } else if (!top.name) {
    top.name = name_from_file(ctx->store, spec->file);
    if (!valid_name(top.name))
      sl__problems_add(ctx->problems, root->line, root->col,
                       "the pipeline has no `name:` and the file's name '%s' is not a valid one "
                       "(add e.g. name: my-pipeline)",
                       top.name);
  }
  spec->name = top.name;
}

static void load_nodes(const sl_load_ctx *ctx, const sl_ynode *root, sl_pipeline_spec *spec) {
  const sl_ypair *nodes = sl__ymap_find(root, "nodes");
  if (!nodes) {
    sl__problems_add(ctx->problems, root->line, root->col,
                     "missing required key 'nodes' (the list of sources, processors and sinks)");
    return;
  }
  if (nodes->value->bad) return;
  if (nodes->value->type != SL_YAML_SEQ || nodes->value->count == 0) {
    sl__problems_add(ctx->problems, nodes->value->line, nodes->value->col,
                     "nodes: expected a non-empty list of nodes, e.g. - {id: in, type: stdin}, "
                     "got %s",
                     nodes->value->type == SL_YAML_SEQ ? "an empty list"
                                                       : sl__ynode_kind(nodes->value));
    return;
  }
  sl_node_notes notes;
  sl__nodes_load(ctx, nodes->value, spec, &notes);
  sl__graph_check(ctx, nodes->key, &notes, spec);
}

static int by_length_descending(const void *a, const void *b) {
  size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Keeps the secrets' values in the spec, longest first, for redaction. */
static void keep_secret_values(const sl_load_ctx *ctx, const sl_secrets *secrets,
                               sl_pipeline_spec *spec) {
  spec->secret_values = sl__store_array(ctx->store, secrets->count, sizeof *spec->secret_values);
  spec->secret_count = 0;
  for (size_t i = 0; i < secrets->count; i++)
    if (secrets->values[i] && secrets->values[i][0])
      spec->secret_values[spec->secret_count++] = secrets->values[i];
  qsort(spec->secret_values, spec->secret_count, sizeof *spec->secret_values, by_length_descending);
}

/* Everything after the YAML parsed: reads `root` into `spec`. */
static void build_spec(sl_load_ctx *ctx, sl_ydoc *doc, sl_pipeline_spec *spec) {
  sl_ynode *root = doc->root;
  if (!root || sl__ynode_is_null(root)) {
    sl__problems_add(ctx->problems, 1, 1,
                     "the file is empty: a pipeline needs at least `nodes:` (a list of sources, "
                     "processors and sinks)");
    return;
  }
  if (root->type != SL_YAML_MAP) {
    sl__problems_add(ctx->problems, root->line, root->col,
                     "a pipeline file is a mapping with `nodes:` (and name, secrets, tests...), "
                     "got %s",
                     sl__ynode_kind(root));
    return;
  }
  sl_secrets secrets = {0};
  const sl_ypair *section = sl__ymap_find(root, "secrets");
  if (section) {
    sl__interpolate_tree(ctx, doc->store, section->value); /* ctx->secrets is still NULL */
    sl__secrets_load(ctx, section->value, &secrets);
  }
  ctx->secrets = &secrets;
  keep_secret_values(ctx, &secrets, spec);
  sl__interpolate_tree(ctx, doc->store, root);

  apply_top_settings(ctx, root, spec);
  load_nodes(ctx, root, spec);
  const sl_ypair *tests = sl__ymap_find(root, "tests");
  if (tests) sl__tests_load(ctx, tests->value, spec);
  ctx->secrets = NULL;
}

/* An absolute version of `dir` (NULL: the working directory). */
static char *absolute_dir(sl_conf_store *store, const char *dir) {
  char resolved[PATH_MAX];
  if (dir && realpath(dir, resolved)) return sl__store_strdup(store, resolved);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
  if (!dir || !dir[0]) return sl__store_strdup(store, cwd);
  if (dir[0] == '/') return sl__store_strdup(store, dir);
  return sl__store_printf(store, "%s/%s", cwd, dir);
}

sl_status sl_pipeline_load_text(const char *text, size_t len, const char *display_name,
                                const char *dir, const sl_load_options *opts,
                                sl_pipeline_spec **out, sl_error *err) {
  *out = NULL;
  sl_conf_store *store = sl__store_new();
  sl_pipeline_spec *spec = sl__store_alloc(store, sizeof *spec);
  spec->storage = store;
  spec->file = sl__store_strdup(store, display_name ? display_name : "<pipeline>");
  spec->dir = absolute_dir(store, dir);
  spec->batch_size = 1024;
  spec->max_in_flight = 10000;
  spec->drain_timeout = 30000;

  sl_problems problems;
  sl__problems_init(&problems, spec->file);
  sl_load_ctx ctx = {
      .file = spec->file, .dir = spec->dir, .store = store, .problems = &problems, .opts = opts};
  sl_ydoc doc;
  if (sl__ydoc_parse(text, len, &doc, &problems) == SL_OK) build_spec(&ctx, &doc, spec);
  sl__ydoc_destroy(&doc);

  sl_status status = SL_OK;
  if (problems.count) {
    status = sl__problems_report(&problems, spec->secret_values, spec->secret_count, err);
    sl_pipeline_spec_free(spec);
  } else {
    *out = spec;
  }
  sl__problems_destroy(&problems);
  return status;
}

sl_status sl_pipeline_load(const char *path, const sl_load_options *opts, sl_pipeline_spec **out,
                           sl_error *err) {
  *out = NULL;
  uint8_t *text = NULL;
  size_t len = 0;
  sl_error read_err;
  sl_status status = sl__read_file(path, &text, &len, &read_err);
  if (status != SL_OK) return sl_error_set(err, status, "cannot read %s", read_err.message);
  char *dir = strdup(path);
  if (!dir) abort();
  char *slash = strrchr(dir, '/');
  if (!slash)
    strcpy(dir, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  status = sl_pipeline_load_text((const char *)text, len, path, dir, opts, out, err);
  free(dir);
  free(text);
  return status;
}

void sl_pipeline_spec_free(sl_pipeline_spec *spec) {
  if (spec) sl__store_free(spec->storage); /* the spec itself lives in its storage */
}

void sl_pipeline_spec_redact(const sl_pipeline_spec *spec, char *text, size_t cap) {
  if (spec && text) sl__redact(spec->secret_values, spec->secret_count, text, cap);
}

const sl_node_spec *sl_pipeline_spec_node(const sl_pipeline_spec *spec, const char *id) {
  size_t index;
  return sl__node_index(spec, id, &index) ? &spec->nodes[index] : NULL;
}
