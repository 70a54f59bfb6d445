/*
 * graph_plan.c - for each source, the nodes its batches visit, in topological order.
 *
 * The loader has already rejected cycles, so Kahn's algorithm orders every node. A
 * worker then runs a batch by walking its source's list once: every node's inputs are
 * finished before the node itself runs.
 */
#include <stdlib.h>
#include <string.h>

#include "core/pipeline_internal.h"

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) abort();
  return p;
}

/* Topological order of all nodes (file order among equals, so plans are predictable). */
static size_t *topological_order(const sl_pipeline_spec *spec) {
  size_t n = spec->node_count;
  size_t *order = xcalloc(n, sizeof *order);
  size_t *pending = xcalloc(n, sizeof *pending); /* inputs not yet placed */
  bool *placed = xcalloc(n, sizeof *placed);
  for (size_t i = 0; i < n; i++) pending[i] = spec->nodes[i].input_count;
  size_t done = 0;
  while (done < n) {
    size_t before = done;
    for (size_t i = 0; i < n; i++) {
      if (placed[i] || pending[i] > 0) continue;
      placed[i] = true;
      order[done++] = i;
      for (size_t r = 0; r < n; r++)
        for (size_t k = 0; k < spec->nodes[r].input_count; k++)
          if (spec->nodes[r].inputs[k].index == i) pending[r]--;
    }
    if (done == before) abort(); /* a cycle: the loader guarantees there is none */
  }
  free(pending);
  free(placed);
  return order;
}

void sl__plan_build(const sl_pipeline_spec *spec, sl_plan *plan) {
  size_t n = spec->node_count;
  memset(plan, 0, sizeof *plan);
  plan->node_count = n;
  plan->steps = xcalloc(n, sizeof *plan->steps);
  plan->step_count = xcalloc(n, sizeof *plan->step_count);
  plan->output_read = xcalloc(n, sizeof *plan->output_read);
  plan->errors_read = xcalloc(n, sizeof *plan->errors_read);
  for (size_t r = 0; r < n; r++)
    for (size_t k = 0; k < spec->nodes[r].input_count; k++) {
      const sl_input_ref *in = &spec->nodes[r].inputs[k];
      if (in->errors)
        plan->errors_read[in->index] = true;
      else
        plan->output_read[in->index] = true;
    }

  size_t *order = topological_order(spec);
  bool *reached = xcalloc(n, sizeof *reached);
  for (size_t s = 0; s < n; s++) {
    if (spec->nodes[s].kind != SL_NODE_SOURCE) continue;
    memset(reached, 0, n * sizeof *reached);
    reached[s] = true;
    plan->steps[s] = xcalloc(n, sizeof **plan->steps);
    /* In topological order a node's inputs are decided before the node. */
    for (size_t o = 0; o < n; o++) {
      size_t i = order[o];
      if (i == s) continue;
      for (size_t k = 0; k < spec->nodes[i].input_count && !reached[i]; k++)
        if (reached[spec->nodes[i].inputs[k].index]) reached[i] = true;
      if (reached[i]) plan->steps[s][plan->step_count[s]++] = i;
    }
  }
  free(reached);
  free(order);
}

void sl__plan_free(sl_plan *plan) {
  for (size_t i = 0; i < plan->node_count; i++) free(plan->steps[i]);
  free(plan->steps);
  free(plan->step_count);
  free(plan->output_read);
  free(plan->errors_read);
  memset(plan, 0, sizeof *plan);
}
