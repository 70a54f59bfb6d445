/*
 * spec_steps.h - the steps pipeline_load.c runs to turn the YAML tree into an
 * sl_pipeline_spec. Each step reports what it finds to ctx->problems and keeps going,
 * so one run reports every problem; later steps skip what earlier ones found broken.
 */
#ifndef SL_CONFIG_SPEC_STEPS_H
#define SL_CONFIG_SPEC_STEPS_H

#include <stdbool.h>

#include "config/load_ctx.h"
#include "config/yaml_doc.h"

/* What the node step tells the graph step, so a problem is not reported twice. */
typedef struct sl_node_notes {
  bool *inputs_reported; /* per node: a problem with its `inputs` was already reported */
  bool entries_skipped;  /* some entries of `nodes:` were not nodes at all */
} sl_node_notes;

/*
 * node_specs.c: fills spec->nodes from the `nodes:` list (a non-empty sequence): ids,
 * types, kinds, connectors, settings and the unresolved `inputs`. A node whose type is
 * unknown keeps config == NULL, which later steps read as "kind unknown". `notes` is
 * filled (its array allocated from ctx->store).
 */
void sl__nodes_load(const sl_load_ctx *ctx, const sl_ynode *list, sl_pipeline_spec *spec,
                    sl_node_notes *notes);

/* "in" or "in.errors" -> ref (node allocated from ctx->store); false after reporting. */
bool sl__input_ref_parse(const sl_load_ctx *ctx, const sl_ynode *value, const char *what,
                         sl_input_ref *ref);

/* The index of node `id` in spec->nodes; false when there is none. */
bool sl__node_index(const sl_pipeline_spec *spec, const char *id, size_t *index);

/*
 * graph.c: resolves every input to a node index and checks the graph: inputs that name
 * no node, `x.errors` of a non-processor, sinks read as inputs, sinks and processors
 * without inputs, no source at all, cycles. `nodes_key` is where "no source" points.
 */
void sl__graph_check(const sl_load_ctx *ctx, const sl_ynode *nodes_key, const sl_node_notes *notes,
                     sl_pipeline_spec *spec);

/* test_specs.c: fills spec->tests from the `tests:` list (after the graph is checked). */
void sl__tests_load(const sl_load_ctx *ctx, const sl_ynode *list, sl_pipeline_spec *spec);

/* "a stdin source", "a wasm processor", "a stdout sink": a node for messages. */
const char *sl__node_describe(const sl_node_spec *node, char *buf, size_t cap);

#endif
