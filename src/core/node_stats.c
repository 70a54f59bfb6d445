/*
 * node_stats.c - what sl_pipeline_node_stats reports, gathered from where each number is
 * kept: shared counters per node, latency histograms per worker (processors) or per sink
 * thread (sinks), pool counters each worker publishes after every batch, the sink
 * queues and the source credits.
 *
 * Every writer uses relaxed atomics and never waits for a reader; a snapshot may be a
 * few events apart between fields, which is fine for counters sampled once a second.
 */
#include <string.h>

#include "core/pipeline_internal.h"

uint64_t sl_latency_quantile(const uint64_t *buckets, double q) {
  uint64_t total = 0;
  for (unsigned i = 0; i < SL_LATENCY_BUCKETS; i++) total += buckets[i];
  if (total == 0) return 0;
  if (!(q > 0)) q = 0; /* NaN too */
  if (q > 1) q = 1;
  double rank = q * (double)total;
  uint64_t below = 0; /* samples in the buckets before i */
  for (unsigned i = 0; i < SL_LATENCY_BUCKETS; i++) {
    if (buckets[i] == 0 || (double)(below + buckets[i]) < rank) {
      below += buckets[i];
      continue;
    }
    double lower = i == 0 ? 0 : (double)((uint64_t)1 << i);
    if (i == SL_LATENCY_BUCKETS - 1) return (uint64_t)lower;
    double upper = (double)((uint64_t)1 << (i + 1));
    double within = (rank - (double)below) / (double)buckets[i];
    return (uint64_t)(lower + (upper - lower) * within);
  }
  return (uint64_t)1 << (SL_LATENCY_BUCKETS - 1); /* unreachable: rank <= total */
}

static uint64_t load(const atomic_uint_fast64_t *counter) {
  return atomic_load_explicit(counter, memory_order_relaxed);
}

static void add_latency(sl_node_stats *out, const sl_latency *latency) {
  for (unsigned i = 0; i < SL_LATENCY_BUCKETS; i++) out->latency[i] += load(&latency->buckets[i]);
  out->latency_sum_ns += load(&latency->sum_ns);
}

bool sl_pipeline_node_stats(const sl_pipeline *pipeline, const char *id, sl_node_stats *out) {
  size_t node = 0;
  while (node < pipeline->spec->node_count && strcmp(pipeline->spec->nodes[node].id, id) != 0)
    node++;
  if (node == pipeline->spec->node_count) return false;
  const sl_node_rt *rt = &pipeline->nodes[node];
  const sl_node_stats_atomic *s = &rt->stats;
  memset(out, 0, sizeof *out);
  out->events_in = load(&s->events_in);
  out->events_out = load(&s->events_out);
  out->errors = load(&s->errors);
  out->batches = load(&s->batches);
  switch (pipeline->spec->nodes[node].kind) {
  case SL_NODE_SOURCE:
    if (rt->port) {
      pthread_mutex_lock(&rt->port->lock);
      out->queue_depth = rt->port->in_flight;
      pthread_mutex_unlock(&rt->port->lock);
    }
    break;
  case SL_NODE_SINK:
    if (rt->sink) out->queue_depth = load(&rt->sink->depth);
    add_latency(out, &s->latency);
    break;
  case SL_NODE_PROCESSOR:
    for (unsigned w = 0; w < pipeline->worker_count; w++) {
      const sl_worker *worker = &pipeline->workers[w];
      if (!worker->nodes) continue; /* not built: sl_pipeline_new failed before it */
      const sl_worker_stats *ws = &worker->nodes[node].stats;
      add_latency(out, &ws->latency);
      out->instances += load(&ws->instances);
      out->recycles += load(&ws->recycles);
      out->memory_bytes += load(&ws->memory_bytes);
    }
    break;
  }
  return true;
}
