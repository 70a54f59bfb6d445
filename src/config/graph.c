/*
 * graph.c - the checks that need every node: each input resolved to a node index, what
 * may read what, at least one source, and no cycles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/spec_steps.h"
#include "config/suggest.h"

/* A node whose type was understood: its kind can be trusted. */
static bool kind_known(const sl_node_spec *node) { return node->config != NULL; }

static void report_unknown_input(const sl_load_ctx *ctx, const sl_pipeline_spec *spec,
                                 const char *label, const sl_input_ref *ref) {
  const char **ids = malloc((spec->node_count + 1) * sizeof *ids);
  if (!ids) abort();
  size_t count = 0;
  for (size_t i = 0; i < spec->node_count; i++)
    if (spec->nodes[i].id) ids[count++] = spec->nodes[i].id;
  char hint[700];
  const char *close = ref->errors ? sl__suggest(ref->node, ids, count) : NULL;
  if (close) /* keep the ".errors" the user wrote */
    snprintf(hint, sizeof hint, " (did you mean '%s.errors'?)", close);
  else
    sl__hint(hint, sizeof hint, ref->node, ids, count, "nodes");
  sl__problems_add(ctx->problems, ref->loc.line, ref->loc.col, "%s: input '%s%s' is not a node%s",
                   label, ref->node, ref->errors ? ".errors" : "", hint);
  free(ids);
}

/* Resolves node->inputs and checks each one. `reported`: a problem with this node's
 * inputs is known already, so missing ones are not news. */
static void check_inputs(const sl_load_ctx *ctx, sl_pipeline_spec *spec, sl_node_spec *node,
                         bool reported) {
  char label[200], described[200];
  if (node->id)
    snprintf(label, sizeof label, "node '%s'", node->id);
  else
    snprintf(label, sizeof label, "the node on line %d", node->loc.line);
  for (size_t i = 0; i < node->input_count; i++) {
    sl_input_ref *ref = &node->inputs[i];
    if (!sl__node_index(spec, ref->node, &ref->index)) {
      ref->index = (size_t)-1;
      report_unknown_input(ctx, spec, label, ref);
      continue;
    }
    const sl_node_spec *from = &spec->nodes[ref->index];
    if (!kind_known(from)) continue;
    if (ref->errors && !sl_node_has_errors_output(from))
      sl__problems_add(
          ctx->problems, ref->loc.line, ref->loc.col,
          "%s: input '%s.errors': only processors and some sources have an errors output, and "
          "'%s' is %s",
          label, ref->node, ref->node, sl__node_describe(from, described, sizeof described));
    else if (from->kind == SL_NODE_SINK)
      sl__problems_add(ctx->problems, ref->loc.line, ref->loc.col,
                       "%s: input '%s' is %s, and sinks have no output to read", label, ref->node,
                       sl__node_describe(from, described, sizeof described));
  }
  if (kind_known(node) && node->kind != SL_NODE_SOURCE && node->input_count == 0 && !reported)
    sl__problems_add(ctx->problems, node->loc.line, node->loc.col,
                     "%s: %s needs `inputs` (the nodes it reads from, e.g. inputs: [in])", label,
                     sl__node_describe(node, described, sizeof described));
}

/* --- cycles -------------------------------------------------------------------- */

typedef struct graph {
  size_t *edge_start; /* node i's consumers are edges[edge_start[i] .. edge_start[i+1]) */
  size_t *edges;
} graph;

static void graph_build(const sl_pipeline_spec *spec, graph *g) {
  size_t n = spec->node_count;
  g->edge_start = calloc(n + 1, sizeof *g->edge_start);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += spec->nodes[i].input_count;
  g->edges = calloc(total + 1, sizeof *g->edges);
  if (!g->edge_start || !g->edges) abort();
  size_t *fill = calloc(n + 1, sizeof *fill);
  if (!fill) abort();
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < spec->nodes[i].input_count; k++)
      if (spec->nodes[i].inputs[k].index < n) g->edge_start[spec->nodes[i].inputs[k].index + 1]++;
  for (size_t i = 0; i < n; i++) g->edge_start[i + 1] += g->edge_start[i];
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < spec->nodes[i].input_count; k++) {
      size_t from = spec->nodes[i].inputs[k].index;
      if (from < n) g->edges[g->edge_start[from] + fill[from]++] = i;
    }
  }
  free(fill);
}

/* Reports the cycle path[0] -> ... -> path[len-1] -> path[0], starting the text at the
 * node that comes first in the file, and pointing there. */
static void report_cycle(const sl_load_ctx *ctx, const sl_pipeline_spec *spec, const size_t *path,
                         size_t len) {
  size_t first = 0;
  for (size_t i = 1; i < len; i++)
    if (path[i] < path[first]) first = i;
  char text[800];
  size_t used = 0;
  for (size_t k = 0; k <= len && used < sizeof text; k++) {
    const sl_node_spec *node = &spec->nodes[path[(first + k) % len]];
    int n = snprintf(text + used, sizeof text - used, "%s%s", k ? " -> " : "", node->id);
    if (n < 0) break;
    used += (size_t)n;
  }
  const sl_node_spec *at = &spec->nodes[path[first]];
  sl__problems_add(ctx->problems, at->loc.line, at->loc.col,
                   "cycle: %s (a node cannot receive its own output)", text);
}

/* Depth-first search without recursion: `stack` holds the current path, `next` the
 * next edge to follow at each of its nodes. A consumer already on the path closes a
 * cycle. */
static void find_cycles(const sl_load_ctx *ctx, const sl_pipeline_spec *spec) {
  size_t n = spec->node_count;
  graph g;
  graph_build(spec, &g);
  enum { WHITE, GREY, BLACK };
  unsigned char *color = calloc(n + 1, 1);
  size_t *stack = calloc(n + 1, sizeof *stack), *next = calloc(n + 1, sizeof *next);
  size_t *depth_of = calloc(n + 1, sizeof *depth_of);
  if (!color || !stack || !next || !depth_of) abort();
  for (size_t root = 0; root < n; root++) {
    if (color[root] != WHITE) continue;
    size_t depth = 0;
    stack[depth] = root;
    next[depth] = g.edge_start[root];
    depth_of[root] = 0;
    color[root] = GREY;
    for (;;) {
      size_t u = stack[depth];
      if (next[depth] == g.edge_start[u + 1]) {
        color[u] = BLACK;
        if (depth == 0) break;
        depth--;
        continue;
      }
      size_t v = g.edges[next[depth]++];
      if (color[v] == GREY) {
        report_cycle(ctx, spec, stack + depth_of[v], depth - depth_of[v] + 1);
      } else if (color[v] == WHITE) {
        color[v] = GREY;
        stack[++depth] = v;
        next[depth] = g.edge_start[v];
        depth_of[v] = depth;
      }
    }
  }
  free(color);
  free(stack);
  free(next);
  free(depth_of);
  free(g.edge_start);
  free(g.edges);
}

void sl__graph_check(const sl_load_ctx *ctx, const sl_ynode *nodes_key, const sl_node_notes *notes,
                     sl_pipeline_spec *spec) {
  /* An entry that was not a node at all may have been meant as the source. */
  bool has_source = false, maybe_source = notes->entries_skipped;
  for (size_t i = 0; i < spec->node_count; i++) {
    sl_node_spec *node = &spec->nodes[i];
    check_inputs(ctx, spec, node, notes->inputs_reported[i]);
    if (kind_known(node) && node->kind == SL_NODE_SOURCE) has_source = true;
    /* An unknown type without inputs was probably meant to be the source. */
    if (!kind_known(node) && node->input_count == 0) maybe_source = true;
  }
  if (!has_source && !maybe_source && spec->node_count)
    sl__problems_add(ctx->problems, nodes_key->line, nodes_key->col,
                     "nodes: the pipeline has no source (add a node without `inputs`, e.g. "
                     "{id: in, type: stdin})");
  find_cycles(ctx, spec);
}
