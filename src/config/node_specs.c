/*
 * node_specs.c - one sl_node_spec per entry of `nodes:`: its id, type, kind, connector,
 * settings (through the type's sl_conf_field table) and its `inputs`, not yet resolved.
 *
 * The kind follows from the type and from `inputs`: `type: wasm` is a processor; any
 * other type is a sink when the node has `inputs` and a source when it has none, so
 * `file` and `http`, which exist as both, need no second name.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config/conf_fields.h"
#include "config/spec_steps.h"
#include "config/suggest.h"

static const char *const node_keys[] = {"id", "type", "inputs"};

enum { MAX_ID = 128 };

const char *sl__node_describe(const sl_node_spec *node, char *buf, size_t cap) {
  const char *kind = node->kind == SL_NODE_SOURCE      ? "source"
                     : node->kind == SL_NODE_PROCESSOR ? "processor"
                                                       : "sink";
  snprintf(buf, cap, "a %s %s", node->type, kind);
  return buf;
}

static bool valid_id(const char *id, size_t len) {
  if (len == 0 || len > MAX_ID || memchr(id, '\0', len)) return false;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-') return false;
  return true;
}

bool sl__node_index(const sl_pipeline_spec *spec, const char *id, size_t *index) {
  for (size_t i = 0; i < spec->node_count; i++) {
    if (spec->nodes[i].id && strcmp(spec->nodes[i].id, id) == 0) {
      *index = i;
      return true;
    }
  }
  return false;
}

bool sl__input_ref_parse(const sl_load_ctx *ctx, const sl_ynode *value, const char *what,
                         sl_input_ref *ref) {
  if (value->bad) return false;
  char quoted[96];
  if (value->type != SL_YAML_SCALAR || sl__ynode_is_null(value)) {
    sl__problems_add(ctx->problems, value->line, value->col,
                     "%s: expected a node id or '<id>.errors', got %s", what,
                     sl__ynode_kind(value));
    return false;
  }
  size_t len = value->len;
  bool errors = len > 7 && memcmp(value->text + len - 7, ".errors", 7) == 0;
  if (errors) len -= 7;
  if (!valid_id(value->text, len)) {
    sl__problems_add(ctx->problems, value->line, value->col,
                     "%s: '%s' is not a node id or '<id>.errors' (ids use letters, digits, "
                     "'_' and '-')",
                     what, sl__quote(quoted, sizeof quoted, value->text, value->len));
    return false;
  }
  ref->node = sl__store_strndup(ctx->store, value->text, len);
  ref->errors = errors;
  ref->index = (size_t)-1;
  ref->loc = (sl_loc){ctx->file, value->line, value->col};
  return true;
}

/* The node's id, or NULL after reporting why it has none. A duplicate id is reported
 * and still returned. */
static char *read_id(const sl_load_ctx *ctx, const sl_ynode *map, const char *label,
                     const sl_pipeline_spec *spec) {
  const sl_ypair *pair = sl__ymap_find(map, "id");
  char quoted[96];
  if (!pair) {
    sl__problems_add(ctx->problems, map->line, map->col,
                     "%s: missing required key 'id' (a name unique in the pipeline: letters, "
                     "digits, '_' and '-')",
                     label);
    return NULL;
  }
  const sl_ynode *value = pair->value;
  if (value->bad) return NULL;
  if (value->type != SL_YAML_SCALAR || sl__ynode_is_null(value)) {
    sl__conf_report_value(ctx, value, "id", "a node id (letters, digits, '_' and '-')");
    return NULL;
  }
  if (!valid_id(value->text, value->len)) {
    bool dotted = memchr(value->text, '.', value->len) != NULL;
    sl__problems_add(ctx->problems, value->line, value->col,
                     "id: '%s' is not a valid node id: use letters, digits, '_' and '-'%s",
                     sl__quote(quoted, sizeof quoted, value->text, value->len),
                     dotted ? " (no dots: 'x.errors' names the errors output of node x)" : "");
    return NULL;
  }
  size_t first;
  if (sl__node_index(spec, value->text, &first)) {
    sl__problems_add(ctx->problems, value->line, value->col,
                     "duplicate node id '%s' (first used on line %d; ids must be unique)",
                     value->text, spec->nodes[first].loc.line);
    /* Kept, for messages: lookups find the first node of that id. */
  }
  return sl__store_strdup(ctx->store, value->text);
}

/* The type's text, or NULL after reporting. */
static const char *read_type(const sl_load_ctx *ctx, const sl_ynode *map, const char *label) {
  const sl_ypair *pair = sl__ymap_find(map, "type");
  if (!pair) {
    sl__problems_add(ctx->problems, map->line, map->col,
                     "%s: missing required key 'type' (a source, processor or sink type, "
                     "e.g. stdin, wasm, stdout)",
                     label);
    return NULL;
  }
  if (pair->value->bad) return NULL;
  /* `type: null` names the null sink, not YAML's null: only empty and ~ are nothing. */
  const sl_ynode *v = pair->value;
  if (v->type != SL_YAML_SCALAR || v->len == 0 || (!v->quoted && strcmp(v->text, "~") == 0)) {
    sl__conf_report_value(ctx, pair->value, "type", "a node type such as stdin, wasm or stdout");
    return NULL;
  }
  return pair->value->text;
}

static void report_unknown_type(const sl_load_ctx *ctx, const sl_ynode *value, const char *label) {
  const sl_connector *const *all = sl_connector_all();
  const char *names[64];
  size_t count = 0;
  for (size_t i = 0; all[i] && count < 63; i++) {
    bool seen = false;
    for (size_t j = 0; j < count && !seen; j++) seen = strcmp(names[j], all[i]->name) == 0;
    if (!seen) names[count++] = all[i]->name;
  }
  names[count++] = "wasm";
  char hint[700], quoted[96];
  sl__hint(hint, sizeof hint, value->text, names, count, "types");
  sl__problems_add(ctx->problems, value->line, value->col, "%s: unknown type '%s'%s", label,
                   sl__quote(quoted, sizeof quoted, value->text, value->len), hint);
}

/* Reads `inputs:` (one string or a list of them) into node->inputs; false when a
 * problem with them was reported. */
static bool read_inputs(const sl_load_ctx *ctx, const sl_ynode *value, const char *label,
                        sl_node_spec *node) {
  char what[200];
  snprintf(what, sizeof what, "%s: inputs", label);
  if (value->bad) return false;
  if (sl__ynode_is_null(value)) return true;
  if (value->type == SL_YAML_MAP) {
    sl__conf_report_value(ctx, value, what, "a node id or a list of them, e.g. [in]");
    return false;
  }
  const sl_ynode *const *items = (const sl_ynode *const *)value->items;
  size_t count = value->count;
  if (value->type == SL_YAML_SCALAR) {
    items = (const sl_ynode *const *)&value;
    count = 1;
  }
  node->inputs = sl__store_array(ctx->store, count, sizeof *node->inputs);
  bool ok = true;
  for (size_t i = 0; i < count; i++) {
    sl_input_ref ref;
    if (!sl__input_ref_parse(ctx, items[i], what, &ref)) {
      ok = false;
      continue;
    }
    bool repeated = false;
    for (size_t j = 0; j < node->input_count && !repeated; j++)
      repeated =
          strcmp(node->inputs[j].node, ref.node) == 0 && node->inputs[j].errors == ref.errors;
    if (repeated) {
      sl__problems_add(ctx->problems, ref.loc.line, ref.loc.col,
                       "%s: '%s%s' is listed twice (each event would arrive twice)", what, ref.node,
                       ref.errors ? ".errors" : "");
      continue;
    }
    node->inputs[node->input_count++] = ref;
  }
  return ok;
}

/* Range checks the settings table cannot express. */
static void check_wasm_limits(const sl_load_ctx *ctx, const sl_ynode *map,
                              const sl_wasm_config *config) {
  struct {
    const char *key;
    bool ok;
    const char *expected;
  } checks[] = {
      {"memory", config->memory == 0 || (config->memory >= 65536 && config->memory <= (4ull << 30)),
       "0 (the default) or a size from 64KiB to 4GiB"},
      {"stack", config->stack == 0 || (config->stack >= 4096 && config->stack <= (1ull << 30)),
       "0 (the default) or a size from 4KiB to 1GiB"},
      {"time_limit", config->time_limit <= UINT32_MAX, "a duration under 49 days"},
      {"recycle_calls", config->recycle_calls >= 0, "0 (never) or a positive number of calls"},
  };
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    const sl_ypair *pair = sl__ymap_find(map, checks[i].key);
    if (!checks[i].ok && pair)
      sl__conf_report_value(ctx, pair->value, checks[i].key, checks[i].expected);
  }
}

/* One entry of `nodes:`; false when it is not a mapping (no node is added). */
static bool load_node(const sl_load_ctx *ctx, const sl_ynode *map, size_t position,
                      sl_pipeline_spec *spec, sl_node_notes *notes) {
  if (map->bad) return false;
  if (map->type != SL_YAML_MAP) {
    sl__problems_add(ctx->problems, map->line, map->col,
                     "nodes[%zu]: expected a node like {id: in, type: stdin}, got %s", position,
                     sl__ynode_kind(map));
    return false;
  }
  sl_node_spec *node = &spec->nodes[spec->node_count++];
  node->loc = (sl_loc){ctx->file, map->line, map->col};
  node->id = read_id(ctx, map, sl__store_printf(ctx->store, "nodes[%zu]", position), spec);
  const char *label = node->id ? sl__store_printf(ctx->store, "node '%s'", node->id)
                               : sl__store_printf(ctx->store, "nodes[%zu]", position);
  const char *type = read_type(ctx, map, label);
  const sl_ypair *inputs = sl__ymap_find(map, "inputs");
  if (inputs && !read_inputs(ctx, inputs->value, label, node))
    notes->inputs_reported[spec->node_count - 1] = true;
  if (!type) return true;
  node->type = sl__store_strdup(ctx->store, type);

  const sl_conf_field *fields;
  size_t config_size;
  if (strcmp(type, "wasm") == 0) {
    node->kind = SL_NODE_PROCESSOR;
    fields = sl_wasm_fields;
    config_size = sizeof(sl_wasm_config);
  } else {
    const sl_connector *c = sl_connector_find(type, inputs ? SL_NODE_SINK : SL_NODE_SOURCE);
    if (!c) c = sl_connector_find(type, inputs ? SL_NODE_SOURCE : SL_NODE_SINK);
    if (!c) {
      report_unknown_type(ctx, sl__ymap_find(map, "type")->value, label);
      return true;
    }
    if (c->kind == SL_NODE_SOURCE && inputs) {
      sl__problems_add(ctx->problems, inputs->key->line, inputs->key->col,
                       "%s: %s is a source and takes no inputs (remove `inputs`)", label, type);
      node->input_count = 0;
      notes->inputs_reported[spec->node_count - 1] = true;
    }
    /* A sink without inputs is reported by the graph check with every other node that
     * lacks them; its settings are still checked here. */
    node->kind = c->kind;
    node->connector = c;
    fields = c->fields;
    config_size = c->config_size;
  }
  node->config = sl__store_alloc(ctx->store, config_size);
  /* A source's `inputs` was reported above: not unknown, but not offered either. */
  bool source = node->kind == SL_NODE_SOURCE;
  sl_conf_scope scope = {.what = label,
                         .own_keys = node_keys,
                         .own_count = source ? 2 : 3,
                         .quiet_keys = source ? node_keys + 2 : NULL,
                         .quiet_count = source ? 1 : 0};
  sl__conf_fill(ctx, fields, map, &scope, node->config);
  if (node->kind == SL_NODE_PROCESSOR) check_wasm_limits(ctx, map, node->config);
  return true;
}

void sl__nodes_load(const sl_load_ctx *ctx, const sl_ynode *list, sl_pipeline_spec *spec,
                    sl_node_notes *notes) {
  spec->nodes = sl__store_array(ctx->store, list->count, sizeof *spec->nodes);
  spec->node_count = 0;
  notes->inputs_reported = sl__store_array(ctx->store, list->count, sizeof(bool));
  notes->entries_skipped = false;
  for (size_t i = 0; i < list->count; i++)
    if (!load_node(ctx, list->items[i], i, spec, notes)) notes->entries_skipped = true;
}
