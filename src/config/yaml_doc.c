/*
 * yaml_doc.c - builds the located YAML tree (yaml_doc.h) from libfyaml's event stream.
 *
 * Events rather than libfyaml's document API because events carry a start mark for
 * every node, mappings and sequences included, which is where "missing required key"
 * and "node 'x'" messages point. libfyaml's diagnostics are collected, never printed:
 * a syntax error becomes one problem, "file:line:col: <libfyaml's message>".
 */
#include "config/yaml_doc.h"

#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 64 };

typedef struct anchor {
  char *name;
  sl_ynode *node;
} anchor;

typedef struct builder {
  struct fy_parser *parser;
  sl_conf_store *store;
  sl_problems *problems;
  anchor *anchors;
  size_t anchor_count, anchor_cap;
  bool failed; /* a syntax error: stop */
} builder;

/* A growable array of pointers or pairs while a collection is being read. */
typedef struct vec {
  void *items;
  size_t count, cap, size;
} vec;

static void *vec_push(vec *v) {
  if (v->count == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 8;
    v->items = realloc(v->items, v->cap * v->size);
    if (!v->items) abort();
  }
  return (char *)v->items + v->count++ * v->size;
}

static void *vec_to_store(vec *v, sl_conf_store *store) {
  void *out = sl__store_array(store, v->count ? v->count : 1, v->size);
  if (v->count) memcpy(out, v->items, v->count * v->size);
  free(v->items);
  v->items = NULL;
  return out;
}

static void place(sl_ynode *node, const struct fy_mark *mark) {
  if (mark && mark->line >= 0) {
    node->line = mark->line + 1;
    node->col = mark->column + 1;
  }
}

static const char *token_text(struct fy_token *token, size_t *len) {
  const char *text = token ? fy_token_get_text(token, len) : NULL;
  if (!text) {
    *len = 0;
    return "";
  }
  return text;
}

/* `name` is owned by the store already. */
static void add_anchor(builder *b, char *name, sl_ynode *node) {
  if (b->anchor_count == b->anchor_cap) {
    b->anchor_cap = b->anchor_cap ? b->anchor_cap * 2 : 8;
    b->anchors = realloc(b->anchors, b->anchor_cap * sizeof *b->anchors);
    if (!b->anchors) abort();
  }
  b->anchors[b->anchor_count++] = (anchor){name, node};
}

static sl_ynode *find_anchor(builder *b, const char *name, size_t len) {
  for (size_t i = b->anchor_count; i-- > 0;) /* the latest definition wins */
    if (strlen(b->anchors[i].name) == len && memcmp(b->anchors[i].name, name, len) == 0)
      return b->anchors[i].node;
  return NULL;
}

static struct fy_event *next_event(builder *b) {
  struct fy_event *ev = fy_parser_parse(b->parser);
  if (!ev) b->failed = true;
  return ev;
}

static sl_ynode *build(builder *b, struct fy_event *ev, int depth);

static bool same_key(const sl_ynode *a, const sl_ynode *b) {
  return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

static bool is_merge_key(const sl_ynode *key) {
  return !key->quoted && key->len == 2 && memcmp(key->text, "<<", 2) == 0;
}

/* Applies `<<: *base` (or `<<: [*a, *b]`): keys of the merged mappings that the mapping
 * does not set itself, earlier sources first. */
static void merge_into(builder *b, vec *pairs, const sl_ynode *source, const sl_ynode *key) {
  if (source->type == SL_YAML_SEQ) {
    for (size_t i = 0; i < source->count; i++) merge_into(b, pairs, source->items[i], key);
    return;
  }
  if (source->type != SL_YAML_MAP) {
    sl__problems_add(b->problems, key->line, key->col,
                     "<<: a merge key takes a mapping or a list of mappings, got %s",
                     sl__ynode_kind(source));
    return;
  }
  for (size_t i = 0; i < source->count; i++) {
    bool present = false;
    sl_ypair *have = pairs->items;
    for (size_t j = 0; j < pairs->count && !present; j++)
      present = same_key(have[j].key, source->pairs[i].key);
    if (!present) *(sl_ypair *)vec_push(pairs) = source->pairs[i];
  }
}

static sl_ynode *build_mapping(builder *b, sl_ynode *node, int depth) {
  vec pairs = {.size = sizeof(sl_ypair)};
  vec merges = {.size = sizeof(sl_ypair)};
  for (;;) {
    struct fy_event *ev = next_event(b);
    if (!ev) break;
    if (ev->type == FYET_MAPPING_END) {
      fy_parser_event_free(b->parser, ev);
      break;
    }
    sl_ynode *key = build(b, ev, depth + 1);
    if (b->failed) break;
    ev = next_event(b);
    if (!ev) break;
    sl_ynode *value = build(b, ev, depth + 1);
    if (b->failed) break;
    if (!value->line) { /* an empty value has no mark: point at its key */
      value->line = key->line;
      value->col = key->col;
    }
    if (key->type != SL_YAML_SCALAR) {
      sl__problems_add(b->problems, key->line, key->col,
                       "keys must be plain text, not %s (write `key: value`)", sl__ynode_kind(key));
      continue;
    }
    if (is_merge_key(key)) {
      *(sl_ypair *)vec_push(&merges) = (sl_ypair){key, value};
      continue;
    }
    sl_ypair *have = pairs.items;
    bool duplicate = false;
    for (size_t i = 0; i < pairs.count && !duplicate; i++) {
      if (!same_key(have[i].key, key)) continue;
      char quoted[96];
      sl__problems_add(b->problems, key->line, key->col,
                       "duplicate key '%s' (first set on line %d; keep one)",
                       sl__quote(quoted, sizeof quoted, key->text, key->len), have[i].key->line);
      duplicate = true;
    }
    if (!duplicate) *(sl_ypair *)vec_push(&pairs) = (sl_ypair){key, value};
  }
  sl_ypair *merge = merges.items;
  for (size_t i = 0; i < merges.count && !b->failed; i++)
    merge_into(b, &pairs, merge[i].value, merge[i].key);
  free(merges.items);
  node->count = pairs.count;
  node->pairs = vec_to_store(&pairs, b->store);
  return node;
}

static sl_ynode *build_sequence(builder *b, sl_ynode *node, int depth) {
  vec items = {.size = sizeof(sl_ynode *)};
  for (;;) {
    struct fy_event *ev = next_event(b);
    if (!ev) break;
    if (ev->type == FYET_SEQUENCE_END) {
      fy_parser_event_free(b->parser, ev);
      break;
    }
    sl_ynode *item = build(b, ev, depth + 1);
    if (b->failed) break;
    if (!item->line) {
      item->line = node->line;
      item->col = node->col;
    }
    *(sl_ynode **)vec_push(&items) = item;
  }
  node->count = items.count;
  node->items = vec_to_store(&items, b->store);
  return node;
}

/* Builds the node that `ev` starts (and frees `ev`); consumes events up to its end. */
static sl_ynode *build(builder *b, struct fy_event *ev, int depth) {
  sl_ynode *node = sl__store_alloc(b->store, sizeof *node);
  node->text = "";
  place(node, fy_event_start_mark(ev));
  if (depth > MAX_DEPTH) {
    sl__problems_add(b->problems, node->line, node->col, "nested deeper than %d levels", MAX_DEPTH);
    b->failed = true;
    fy_parser_event_free(b->parser, ev);
    return node;
  }
  struct fy_token *anchor_token = NULL;
  switch (ev->type) {
  case FYET_SCALAR: {
    size_t len;
    const char *text = token_text(ev->scalar.value, &len);
    node->type = SL_YAML_SCALAR;
    node->text = sl__store_strndup(b->store, text, len);
    node->len = len;
    enum fy_node_style style = fy_event_get_node_style(ev);
    node->quoted = style != FYNS_PLAIN && style != FYNS_ANY;
    /* libfyaml marks a quoted scalar's first character; messages point at the quote. */
    if ((style == FYNS_SINGLE_QUOTED || style == FYNS_DOUBLE_QUOTED) && node->col > 1) node->col--;
    anchor_token = ev->scalar.anchor;
    break;
  }
  case FYET_ALIAS: {
    size_t len;
    const char *name = token_text(ev->alias.anchor, &len);
    sl_ynode *target = find_anchor(b, name, len);
    if (target) {
      fy_parser_event_free(b->parser, ev);
      return target;
    }
    char quoted[96];
    sl__problems_add(b->problems, node->line, node->col,
                     "alias '*%s' names no anchor (define it earlier with &%s)",
                     sl__quote(quoted, sizeof quoted, name, len), quoted);
    node->type = SL_YAML_SCALAR;
    node->bad = true;
    break;
  }
  case FYET_MAPPING_START:
    node->type = SL_YAML_MAP;
    anchor_token = ev->mapping_start.anchor;
    break;
  case FYET_SEQUENCE_START:
    node->type = SL_YAML_SEQ;
    anchor_token = ev->sequence_start.anchor;
    break;
  default: /* cannot happen inside a document; treat as a syntax error */
    node->type = SL_YAML_SCALAR;
    b->failed = true;
    break;
  }
  /* The anchor token belongs to the event: copy its name before freeing the event. An
   * anchored collection is registered once complete (YAML has no self-reference). */
  char *anchor_name = NULL;
  if (anchor_token) {
    size_t name_len;
    const char *name = token_text(anchor_token, &name_len);
    anchor_name = sl__store_strndup(b->store, name, name_len);
  }
  fy_parser_event_free(b->parser, ev);
  if (node->type == SL_YAML_MAP) build_mapping(b, node, depth);
  if (node->type == SL_YAML_SEQ) build_sequence(b, node, depth);
  if (anchor_name) add_anchor(b, anchor_name, node);
  return node;
}

static void on_diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len) {
  /* Collect mode keeps errors for fy_diag_errors_iterate; anything else is dropped so
   * libfyaml never writes to stderr itself. */
}

/* Reads events up to the first document's root; NULL at the end of the stream. */
static struct fy_event *first_root_event(builder *b) {
  for (;;) {
    struct fy_event *ev = next_event(b);
    if (!ev) return NULL;
    enum fy_event_type type = ev->type;
    if (type == FYET_STREAM_START || type == FYET_DOCUMENT_START) {
      fy_parser_event_free(b->parser, ev);
      continue;
    }
    if (type == FYET_STREAM_END) {
      fy_parser_event_free(b->parser, ev);
      return NULL;
    }
    return ev;
  }
}

/* After the root: the end of the document, then the end of the stream. A second
 * document is a problem: a pipeline file holds one. */
static void expect_end(builder *b) {
  for (;;) {
    struct fy_event *ev = next_event(b);
    if (!ev) return;
    enum fy_event_type type = ev->type;
    if (type == FYET_DOCUMENT_START) {
      sl_ynode where = {0};
      place(&where, fy_event_start_mark(ev));
      sl__problems_add(b->problems, where.line, where.col,
                       "a pipeline file holds one YAML document; this starts a second one "
                       "(remove the '---' and what follows, or move it to its own file)");
    }
    fy_parser_event_free(b->parser, ev);
    if (type == FYET_STREAM_END || type == FYET_DOCUMENT_START) return;
  }
}

sl_status sl__ydoc_parse(const char *text, size_t len, sl_ydoc *doc, sl_problems *problems) {
  memset(doc, 0, sizeof *doc);
  doc->store = sl__store_new();
  struct fy_diag_cfg diag_cfg;
  fy_diag_cfg_default(&diag_cfg);
  diag_cfg.fp = NULL;
  diag_cfg.output_fn = on_diag_output;
  diag_cfg.level = FYET_ERROR;
  diag_cfg.colorize = false;
  struct fy_diag *diag = fy_diag_create(&diag_cfg);
  if (!diag) abort();
  fy_diag_set_collect_errors(diag, true);
  struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2, .diag = diag};
  builder b = {.store = doc->store, .problems = problems};
  b.parser = fy_parser_create(&cfg);
  if (!b.parser) abort();
  sl_status status = SL_OK;
  if (fy_parser_set_string(b.parser, text, len) != 0) abort();

  struct fy_event *ev = first_root_event(&b);
  sl_ynode *root = ev ? build(&b, ev, 0) : NULL;
  if (!b.failed && root) expect_end(&b);
  if (b.failed || fy_parser_get_stream_error(b.parser)) {
    status = SL_CONFIG;
    size_t reported = 0;
    void *iter = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &iter))) {
      if (e->type < FYET_ERROR) continue;
      sl__problems_add(problems, e->line > 0 ? e->line : 1, e->column > 0 ? e->column : 1, "%s",
                       e->msg);
      reported++;
    }
    if (!reported && problems->count == 0)
      sl__problems_add(problems, 1, 1, "the file is not valid YAML");
    root = NULL;
  }
  doc->root = root;
  fy_parser_destroy(b.parser);
  fy_diag_destroy(diag);
  free(b.anchors);
  return status;
}

void sl__ydoc_destroy(sl_ydoc *doc) {
  sl__store_free(doc->store);
  memset(doc, 0, sizeof *doc);
}

bool sl__ynode_is_null(const sl_ynode *node) {
  if (!node || node->type != SL_YAML_SCALAR || node->quoted) return false;
  const char *t = node->text;
  return node->len == 0 || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
         strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0;
}

const sl_ypair *sl__ymap_find(const sl_ynode *map, const char *key) {
  if (!map || map->type != SL_YAML_MAP) return NULL;
  size_t len = strlen(key);
  for (size_t i = 0; i < map->count; i++)
    if (map->pairs[i].key->len == len && memcmp(map->pairs[i].key->text, key, len) == 0)
      return &map->pairs[i];
  return NULL;
}

const char *sl__ynode_kind(const sl_ynode *node) {
  if (node->type == SL_YAML_MAP) return "a mapping";
  if (node->type == SL_YAML_SEQ) return "a list";
  return sl__ynode_is_null(node) ? "nothing" : "a text value";
}
