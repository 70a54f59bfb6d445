/*
 * test_specs.c - the `tests:` section: cases that feed events to sources and say what
 * must come out of nodes (run by `sluice test`).
 *
 *   tests:
 *     - name: uppercases
 *       inputs:
 *         in: [hello, {payload: "x", meta: {source: test}}]
 *       expect:
 *         out: [HELLO]
 *         upper.errors: []
 */
#include <stdio.h>
#include <string.h>

#include "config/conf_fields.h"
#include "config/spec_steps.h"
#include "config/suggest.h"

static const char *const test_keys[] = {"name", "inputs", "expect"};
static const char *const event_keys[] = {"payload", "meta"};

static void read_meta(const sl_load_ctx *ctx, const sl_ynode *value, sl_conf_map *meta) {
  if (value->bad || sl__ynode_is_null(value)) return;
  if (value->type != SL_YAML_MAP) {
    sl__conf_report_value(ctx, value, "meta", "a mapping of keys to text values");
    return;
  }
  meta->keys = sl__store_array(ctx->store, value->count, sizeof *meta->keys);
  meta->values = sl__store_array(ctx->store, value->count, sizeof *meta->values);
  for (size_t i = 0; i < value->count; i++) {
    const sl_ynode *k = value->pairs[i].key, *v = value->pairs[i].value;
    if (v->bad) continue;
    if (v->type != SL_YAML_SCALAR) {
      char where[300];
      snprintf(where, sizeof where, "meta: %s", k->text);
      sl__conf_report_value(ctx, v, where, "a text value");
      continue;
    }
    meta->keys[meta->count] = sl__store_strndup(ctx->store, k->text, k->len);
    meta->values[meta->count] =
        sl__store_strndup(ctx->store, v->text, sl__ynode_is_null(v) ? 0 : v->len);
    meta->count++;
  }
}

/* One event: a scalar (the payload) or {payload: ..., meta: {...}}; a missing payload
 * is empty. */
static bool read_event(const sl_load_ctx *ctx, const sl_ynode *value, sl_test_event *event) {
  event->loc = (sl_loc){ctx->file, value->line, value->col};
  event->payload = sl__store_strdup(ctx->store, "");
  if (value->bad) return false;
  if (value->type == SL_YAML_SCALAR) {
    size_t len = sl__ynode_is_null(value) ? 0 : value->len;
    event->payload = sl__store_strndup(ctx->store, value->text, len);
    event->payload_len = len;
    return true;
  }
  if (value->type != SL_YAML_MAP) {
    sl__problems_add(ctx->problems, value->line, value->col,
                     "expected an event: a payload text or {payload: ..., meta: {...}}, got %s",
                     sl__ynode_kind(value));
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < value->count; i++) {
    const sl_ynode *k = value->pairs[i].key, *v = value->pairs[i].value;
    if (strcmp(k->text, "payload") == 0) {
      if (v->bad) {
        ok = false;
      } else if (v->type != SL_YAML_SCALAR) {
        sl__conf_report_value(ctx, v, "payload", "a text value (quote JSON: '{\"a\": 1}')");
        ok = false;
      } else {
        size_t len = sl__ynode_is_null(v) ? 0 : v->len;
        event->payload = sl__store_strndup(ctx->store, v->text, len);
        event->payload_len = len;
      }
    } else if (strcmp(k->text, "meta") == 0) {
      read_meta(ctx, v, &event->meta);
    } else {
      char hint[300], quoted[96];
      sl__hint(hint, sizeof hint, k->text, event_keys, 2, "allowed");
      sl__problems_add(ctx->problems, k->line, k->col,
                       "unknown key '%s' in an event%s; a JSON payload must be quoted, e.g. "
                       "'{\"a\": 1}'",
                       sl__quote(quoted, sizeof quoted, k->text, k->len), hint);
      ok = false;
    }
  }
  return ok;
}

/* `key: [events]` for one source (inputs) or one node output (expect). */
static void read_stream(const sl_load_ctx *ctx, const sl_pipeline_spec *spec, const char *label,
                        const sl_ypair *pair, bool is_input, sl_test_case *test) {
  char what[300], described[200];
  snprintf(what, sizeof what, "%s: %s", label, is_input ? "inputs" : "expect");
  sl_input_ref at;
  if (!sl__input_ref_parse(ctx, pair->key, what, &at)) return;
  bool known = sl__node_index(spec, at.node, &at.index);
  const sl_node_spec *node = known ? &spec->nodes[at.index] : NULL;
  if (!known) {
    const char **ids = sl__store_array(ctx->store, spec->node_count + 1, sizeof *ids);
    size_t count = 0;
    for (size_t i = 0; i < spec->node_count; i++)
      if (spec->nodes[i].id &&
          (!is_input || (spec->nodes[i].config && spec->nodes[i].kind == SL_NODE_SOURCE)))
        ids[count++] = spec->nodes[i].id;
    char hint[700];
    sl__hint(hint, sizeof hint, at.node, ids, count, is_input ? "sources" : "nodes");
    sl__problems_add(ctx->problems, at.loc.line, at.loc.col, "%s: '%s' is not a node%s", what,
                     at.node, hint);
    return;
  }
  if (node->config && is_input && (at.errors || node->kind != SL_NODE_SOURCE)) {
    sl__problems_add(
        ctx->problems, at.loc.line, at.loc.col, "%s: '%s%s' is %s; tests feed events to sources",
        what, at.node, at.errors ? ".errors" : "",
        at.errors ? "an output" : sl__node_describe(node, described, sizeof described));
    return;
  }
  if (node->config && at.errors && !sl_node_has_errors_output(node)) {
    sl__problems_add(
        ctx->problems, at.loc.line, at.loc.col,
        "%s: '%s.errors': only processors and some sources have an errors output, and '%s' is %s",
        what, at.node, at.node, sl__node_describe(node, described, sizeof described));
    return;
  }
  const sl_ynode *list = pair->value;
  if (list->bad) return;
  if (list->type != SL_YAML_SEQ && !sl__ynode_is_null(list)) {
    char key[700];
    snprintf(key, sizeof key, "%s: %s", what, pair->key->text);
    sl__conf_report_value(ctx, list, key, "a list of events, e.g. [hello, world]");
    return;
  }
  sl_test_stream *streams = is_input ? test->inputs : test->expects;
  size_t *count = is_input ? &test->input_count : &test->expect_count;
  sl_test_stream *stream = &streams[(*count)++];
  stream->at = at;
  size_t n = list->type == SL_YAML_SEQ ? list->count : 0;
  stream->events = sl__store_array(ctx->store, n, sizeof *stream->events);
  for (size_t i = 0; i < n; i++)
    if (read_event(ctx, list->items[i], &stream->events[stream->count])) stream->count++;
}

static void read_streams(const sl_load_ctx *ctx, const sl_pipeline_spec *spec, const char *label,
                         const sl_ynode *map, bool is_input, sl_test_case *test) {
  sl_test_stream **streams = is_input ? &test->inputs : &test->expects;
  if (map->bad || sl__ynode_is_null(map)) return;
  if (map->type != SL_YAML_MAP) {
    char key[200];
    snprintf(key, sizeof key, "%s: %s", label, is_input ? "inputs" : "expect");
    sl__conf_report_value(ctx, map, key,
                          is_input ? "a mapping of source ids to lists of events"
                                   : "a mapping of node outputs to lists of events");
    return;
  }
  *streams = sl__store_array(ctx->store, map->count, sizeof **streams);
  for (size_t i = 0; i < map->count; i++)
    read_stream(ctx, spec, label, &map->pairs[i], is_input, test);
}

static bool load_test(const sl_load_ctx *ctx, const sl_ynode *map, size_t position,
                      sl_pipeline_spec *spec) {
  if (map->bad) return false;
  if (map->type != SL_YAML_MAP) {
    sl__problems_add(ctx->problems, map->line, map->col,
                     "tests[%zu]: expected a test like {name: ..., inputs: {...}, expect: {...}}, "
                     "got %s",
                     position, sl__ynode_kind(map));
    return false;
  }
  sl_test_case *test = &spec->tests[spec->test_count++];
  test->loc = (sl_loc){ctx->file, map->line, map->col};
  const char *label = sl__store_printf(ctx->store, "tests[%zu]", position);
  for (size_t i = 0; i < map->count; i++) {
    const sl_ynode *k = map->pairs[i].key;
    bool known = false;
    for (size_t j = 0; j < 3 && !known; j++) known = strcmp(k->text, test_keys[j]) == 0;
    if (known) continue;
    char hint[300], quoted[96];
    sl__problems_add(ctx->problems, k->line, k->col, "unknown key '%s' in %s%s",
                     sl__quote(quoted, sizeof quoted, k->text, k->len), label,
                     sl__hint(hint, sizeof hint, k->text, test_keys, 3, "allowed"));
  }
  const sl_ypair *name = sl__ymap_find(map, "name");
  if (!name) {
    sl__problems_add(ctx->problems, map->line, map->col,
                     "%s: missing required key 'name' (what the test checks, shown when it fails)",
                     label);
  } else if (!name->value->bad) {
    if (name->value->type != SL_YAML_SCALAR || sl__ynode_is_null(name->value)) {
      sl__conf_report_value(ctx, name->value, "name", "a text value");
    } else {
      for (size_t i = 0; i + 1 < spec->test_count; i++)
        if (spec->tests[i].name && strcmp(spec->tests[i].name, name->value->text) == 0)
          sl__problems_add(ctx->problems, name->value->line, name->value->col,
                           "duplicate test name '%s' (first used on line %d)", name->value->text,
                           spec->tests[i].loc.line);
      test->name = sl__store_strdup(ctx->store, name->value->text);
      label = sl__store_printf(ctx->store, "test '%s'", test->name);
    }
  }
  const sl_ypair *inputs = sl__ymap_find(map, "inputs");
  if (inputs) read_streams(ctx, spec, label, inputs->value, true, test);
  const sl_ypair *expect = sl__ymap_find(map, "expect");
  if (expect) read_streams(ctx, spec, label, expect->value, false, test);
  return true;
}

void sl__tests_load(const sl_load_ctx *ctx, const sl_ynode *list, sl_pipeline_spec *spec) {
  if (list->bad || sl__ynode_is_null(list)) return;
  if (list->type != SL_YAML_SEQ) {
    sl__conf_report_value(ctx, list, "tests", "a list of tests");
    return;
  }
  spec->tests = sl__store_array(ctx->store, list->count, sizeof *spec->tests);
  for (size_t i = 0; i < list->count; i++) load_test(ctx, list->items[i], i, spec);
}
