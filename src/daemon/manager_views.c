/*
 * manager_views.c - what the API shows of the pipelines: summaries, descriptions and
 * stats, and the sampler thread that turns counters into rates and recent latency.
 *
 * Counters are cumulative over the pipeline's life: when a version is swapped out its
 * final counts are folded into the entry (sl__fold_totals), so `events_in` does not
 * fall back to zero at every deploy. Rates and latency describe the version running.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/manager_internal.h"

static const char *kind_name(sl_node_kind kind) {
  switch (kind) {
  case SL_NODE_SOURCE:
    return "source";
  case SL_NODE_PROCESSOR:
    return "processor";
  case SL_NODE_SINK:
    return "sink";
  }
  return "node";
}

static void stats_add(sl_node_stats *to, const sl_node_stats *from) {
  to->events_in += from->events_in;
  to->events_out += from->events_out;
  to->errors += from->errors;
  to->batches += from->batches;
  for (size_t i = 0; i < SL_LATENCY_BUCKETS; i++) to->latency[i] += from->latency[i];
}

void sl__fold_totals(sl_entry *entry, const sl_running *run) {
  for (size_t i = 0; i < run->spec->node_count; i++) {
    const char *id = run->spec->nodes[i].id;
    sl_node_stats now;
    if (!sl_pipeline_node_stats(run->pipeline, id, &now)) continue;
    sl_node_total *total = NULL;
    for (size_t t = 0; t < entry->total_count; t++)
      if (strcmp(entry->totals[t].id, id) == 0) total = &entry->totals[t];
    if (!total) {
      sl_node_total *grown = realloc(entry->totals, (entry->total_count + 1) * sizeof *grown);
      if (!grown) continue;
      entry->totals = grown;
      total = &grown[entry->total_count];
      memset(total, 0, sizeof *total);
      if (!(total->id = strdup(id))) continue;
      entry->total_count++;
    }
    stats_add(&total->stats, &now);
  }
}

void sl__node_stats_total(const sl_entry *entry, const char *node_id, sl_node_stats *out) {
  memset(out, 0, sizeof *out);
  if (entry->run) sl_pipeline_node_stats(entry->run->pipeline, node_id, out);
  for (size_t t = 0; t < entry->total_count; t++)
    if (strcmp(entry->totals[t].id, node_id) == 0) stats_add(out, &entry->totals[t].stats);
}

/* --- sampling --------------------------------------------------------------------- */

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void sl__sample(sl_running *run) {
  pthread_mutex_lock(&run->sample_lock);
  uint64_t now = (uint64_t)mono_ms();
  /* The first sample measures from the start, so a rate shows after one tick. */
  double seconds = run->sampled_ms ? (double)(now - run->sampled_ms) / 1e3
                                   : (double)((uint64_t)sl__wall_ms() - run->started_ms) / 1e3;
  for (size_t i = 0; i < run->spec->node_count; i++) {
    sl_node_stats stats;
    if (!sl_pipeline_node_stats(run->pipeline, run->spec->nodes[i].id, &stats)) continue;
    sl_node_sample *sample = &run->samples[i];
    if (seconds > 0) {
      sample->rate_in = (double)(stats.events_in - sample->last_in) / seconds;
      sample->rate_out = (double)(stats.events_out - sample->last_out) / seconds;
    }
    sample->last_in = stats.events_in;
    sample->last_out = stats.events_out;
    memcpy(sample->window[sample->next], stats.latency, sizeof stats.latency);
    sample->next = (sample->next + 1) % SL_SAMPLE_WINDOW;
    if (sample->filled < SL_SAMPLE_WINDOW) sample->filled++;
  }
  run->sampled_ms = now;
  pthread_mutex_unlock(&run->sample_lock);
}

/* Latency quantile `q` over the sampling window, in microseconds. */
/* Three decimals are plenty for people and keep the JSON short. */
static double rounded(double x) { return round(x * 1e3) / 1e3; }

static double window_quantile(const sl_node_sample *sample, const sl_node_stats *live, double q) {
  uint64_t recent[SL_LATENCY_BUCKETS];
  const uint64_t *oldest = NULL;
  if (sample->filled == SL_SAMPLE_WINDOW) oldest = sample->window[sample->next];
  for (size_t b = 0; b < SL_LATENCY_BUCKETS; b++)
    recent[b] = live->latency[b] - (oldest ? oldest[b] : 0);
  return rounded((double)sl_latency_quantile(recent, q) / 1e3);
}

void *sl__sampler_main(void *arg) {
  sl_manager *manager = arg;
  pthread_mutex_lock(&manager->sampler_lock);
  while (!manager->sampler_quit) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_cond_timedwait(&manager->sampler_wake, &manager->sampler_lock, &until);
    if (manager->sampler_quit) break;
    pthread_mutex_unlock(&manager->sampler_lock);

    size_t count = 0;
    sl_entry **all = sl__entry_all(manager, &count);
    for (size_t i = 0; i < count; i++) {
      pthread_rwlock_rdlock(&all[i]->rw);
      if (all[i]->run && all[i]->run->started) sl__sample(all[i]->run);
      pthread_rwlock_unlock(&all[i]->rw);
      sl__taps_sweep(manager, all[i]);
      sl__entry_release(manager, all[i]);
    }
    free(all);
    sl_log_hub_sweep(manager->logs);

    pthread_mutex_lock(&manager->sampler_lock);
  }
  pthread_mutex_unlock(&manager->sampler_lock);
  return NULL;
}

/* --- views -------------------------------------------------------------------------- */

/* Caller holds entry->rw. */
static json_t *summary(const sl_entry *entry) {
  uint64_t in = 0, out = 0, errors = 0;
  size_t nodes = 0;
  if (entry->run) {
    const sl_pipeline_spec *spec = entry->run->spec;
    nodes = spec->node_count;
    for (size_t i = 0; i < spec->node_count; i++) {
      sl_node_stats stats;
      sl__node_stats_total(entry, spec->nodes[i].id, &stats);
      if (spec->nodes[i].kind == SL_NODE_SOURCE) in += stats.events_out;
      if (spec->nodes[i].kind == SL_NODE_SINK) out += stats.events_in;
      errors += stats.errors;
    }
  }
  return json_pack("{s:s, s:I, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "name", entry->name,
                   "version", (json_int_t)entry->version, "status", entry->status, "error",
                   entry->error, "nodes", (json_int_t)nodes, "events_in", (json_int_t)in,
                   "events_out", (json_int_t)out, "errors", (json_int_t)errors, "created_at",
                   (json_int_t)entry->created_at_ms, "updated_at",
                   (json_int_t)entry->updated_at_ms);
}

bool sl_manager_has(sl_manager *manager, const char *name) {
  sl_entry *entry = sl__entry_get(manager, name);
  if (entry) sl__entry_release(manager, entry);
  return entry != NULL;
}

json_t *sl_manager_list(sl_manager *manager) {
  size_t count = 0;
  sl_entry **all = sl__entry_all(manager, &count);
  json_t *list = json_array();
  for (size_t i = 0; i < count; i++) {
    pthread_rwlock_rdlock(&all[i]->rw);
    json_array_append_new(list, summary(all[i]));
    pthread_rwlock_unlock(&all[i]->rw);
    sl__entry_release(manager, all[i]);
  }
  free(all);
  return list;
}

json_t *sl_manager_describe(sl_manager *manager, const char *name) {
  sl_entry *entry = sl__entry_get(manager, name);
  if (!entry) return NULL;
  pthread_rwlock_rdlock(&entry->rw);
  json_t *out = summary(entry);
  const sl_running *run = entry->run;
  if (run) {
    json_object_set_new(out, "source", json_stringn(run->recipe.source, run->recipe.source_len));
    json_object_set_new(out, "file", json_string(run->recipe.file));
    json_object_set_new(out, "dir", run->recipe.dir ? json_string(run->recipe.dir) : json_null());
    json_object_set_new(out, "modules", json_deep_copy(run->pins));
    json_t *nodes = json_array();
    for (size_t i = 0; i < run->spec->node_count; i++) {
      const sl_node_spec *node = &run->spec->nodes[i];
      json_array_append_new(nodes, json_pack("{s:s, s:s, s:s}", "id", node->id, "type", node->type,
                                             "kind", kind_name(node->kind)));
    }
    json_object_set_new(out, "nodes", nodes);
  }
  pthread_rwlock_unlock(&entry->rw);

  json_t *versions = json_array();
  sl_version *list = NULL;
  size_t count = 0;
  sl_error err;
  if (manager->store &&
      sl_store_list_versions(manager->store, name, &list, &count, &err) == SL_OK) {
    for (size_t i = 0; i < count; i++)
      json_array_append_new(
          versions, json_pack("{s:I, s:I, s:s, s:b}", "version", (json_int_t)list[i].version,
                              "created_at", (json_int_t)list[i].created_at_ms, "note",
                              list[i].note ? list[i].note : "", "current", list[i].current));
    sl_versions_free(list, count);
  }
  json_object_set_new(out, "versions", versions);
  sl__entry_release(manager, entry);
  return out;
}

/* Caller holds entry->rw. */
static json_t *entry_stats(const sl_entry *entry) {
  json_t *nodes = json_array();
  uint64_t uptime = 0;
  sl_running *run = entry->run;
  if (run) {
    if (run->started) uptime = (uint64_t)sl__wall_ms() - run->started_ms;
    pthread_mutex_lock(&run->sample_lock);
    for (size_t i = 0; i < run->spec->node_count; i++) {
      const sl_node_spec *node = &run->spec->nodes[i];
      sl_node_stats live, total;
      if (!sl_pipeline_node_stats(run->pipeline, node->id, &live)) continue;
      sl__node_stats_total(entry, node->id, &total);
      const sl_node_sample *sample = &run->samples[i];
      json_array_append_new(
          nodes,
          json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:f, s:f, s:I, s:I, s:I}", "id",
                    node->id, "kind", kind_name(node->kind), "type", node->type, "events_in",
                    (json_int_t)total.events_in, "events_out", (json_int_t)total.events_out,
                    "errors", (json_int_t)total.errors, "rate_in", rounded(sample->rate_in),
                    "rate_out", rounded(sample->rate_out), "queue_depth",
                    (json_int_t)live.queue_depth, "p50_us", window_quantile(sample, &live, 0.5),
                    "p99_us", window_quantile(sample, &live, 0.99), "instances",
                    (json_int_t)live.instances, "recycles", (json_int_t)live.recycles,
                    "memory_bytes", (json_int_t)live.memory_bytes));
    }
    pthread_mutex_unlock(&run->sample_lock);
  }
  return json_pack("{s:s, s:I, s:s, s:I, s:o}", "name", entry->name, "version",
                   (json_int_t)entry->version, "status", entry->status, "uptime_ms",
                   (json_int_t)uptime, "nodes", nodes);
}

json_t *sl_manager_stats(sl_manager *manager, const char *name) {
  if (name) {
    sl_entry *entry = sl__entry_get(manager, name);
    if (!entry) return NULL;
    pthread_rwlock_rdlock(&entry->rw);
    json_t *out = entry_stats(entry);
    pthread_rwlock_unlock(&entry->rw);
    sl__entry_release(manager, entry);
    return out;
  }
  size_t count = 0;
  sl_entry **all = sl__entry_all(manager, &count);
  json_t *list = json_array();
  for (size_t i = 0; i < count; i++) {
    pthread_rwlock_rdlock(&all[i]->rw);
    json_array_append_new(list, entry_stats(all[i]));
    pthread_rwlock_unlock(&all[i]->rw);
    sl__entry_release(manager, all[i]);
  }
  free(all);
  return json_pack("{s:o}", "pipelines", list);
}
