/*
 * tap.c - taps: callbacks that watch the events at a node's output while the pipeline
 * runs (sl_pipeline_tap_add in pipeline.h), for `sluice tap` and the API's tap stream.
 *
 * Cost when nobody watches: the worker (or sink thread) loads the node's tap count once
 * per batch, relaxed, and moves on. When someone watches, the node's lock is taken per
 * batch and held across the callbacks; holding it is what lets sl_pipeline_tap_remove
 * promise that no call is running once it returns, without reference counts.
 */
#include <stdlib.h>
#include <string.h>

#include "core/pipeline_internal.h"

void sl__taps_init(sl_node_taps *taps) {
  atomic_init(&taps->count, 0);
  pthread_mutex_init(&taps->lock, NULL);
  taps->list = NULL;
}

void sl__taps_destroy(sl_node_taps *taps) {
  while (taps->list) {
    sl_tap *next = taps->list->next;
    free(taps->list);
    taps->list = next;
  }
  pthread_mutex_destroy(&taps->lock);
}

void sl__taps_call(sl_node_taps *taps, bool errors, const sl_event_list *events) {
  if (events->count == 0) return;
  pthread_mutex_lock(&taps->lock);
  for (const sl_tap *tap = taps->list; tap; tap = tap->next)
    if (tap->errors == errors) tap->fn(tap->user, events->items, events->count);
  pthread_mutex_unlock(&taps->lock);
}

sl_status sl_pipeline_tap_add(sl_pipeline *pipeline, const char *node_id, bool errors, sl_tap_fn fn,
                              void *user, sl_tap **out, sl_error *err) {
  *out = NULL;
  const sl_pipeline_spec *spec = pipeline->spec;
  size_t node = 0;
  while (node < spec->node_count && strcmp(spec->nodes[node].id, node_id) != 0) node++;
  if (node == spec->node_count)
    return sl_error_set(err, SL_NOT_FOUND, "pipeline '%s' has no node '%s'", spec->name, node_id);
  if (errors && !sl_node_has_errors_output(&spec->nodes[node]))
    return sl_error_set(err, SL_INVALID, "node '%s' is a %s without an errors output ('%s.errors')",
                        node_id, spec->nodes[node].kind == SL_NODE_SOURCE ? "source" : "sink",
                        node_id);
  sl_tap *tap = calloc(1, sizeof *tap);
  if (!tap) abort(); /* host out of memory */
  *tap = (sl_tap){.fn = fn, .user = user, .node = node, .errors = errors};
  sl_node_taps *taps = &pipeline->nodes[node].taps;
  pthread_mutex_lock(&taps->lock);
  tap->next = taps->list;
  taps->list = tap;
  atomic_fetch_add_explicit(&taps->count, 1, memory_order_relaxed);
  pthread_mutex_unlock(&taps->lock);
  *out = tap;
  return SL_OK;
}

void sl_pipeline_tap_remove(sl_pipeline *pipeline, sl_tap *tap) {
  if (!tap) return;
  sl_node_taps *taps = &pipeline->nodes[tap->node].taps;
  pthread_mutex_lock(&taps->lock);
  for (sl_tap **link = &taps->list; *link; link = &(*link)->next) {
    if (*link != tap) continue;
    *link = tap->next;
    atomic_fetch_sub_explicit(&taps->count, 1, memory_order_relaxed);
    break;
  }
  pthread_mutex_unlock(&taps->lock);
  free(tap);
}
