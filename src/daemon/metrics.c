/*
 * metrics.c - GET /metrics: the Prometheus text exposition format (version 0.0.4),
 * written by hand because no C client library is packaged here (design §6).
 * `promtool check metrics` checks the output in tests.
 *
 * A family's samples must be contiguous, so the pipelines are read into a snapshot
 * first and the text is then written family by family.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/manager_internal.h"

typedef struct node_snap {
  const char *id; /* borrowed from the spec, which the entry reference keeps alive */
  sl_node_kind kind;
  sl_node_stats total, live;
} node_snap;

typedef struct pipeline_snap {
  sl_entry *entry;
  char name[256];
  int64_t version;
  bool running;
  node_snap *nodes;
  size_t node_count;
} pipeline_snap;

/* Label values escape backslash, quote and newline. */
static void put_label(FILE *out, const char *value) {
  for (const char *c = value; *c; c++) {
    if (*c == '\\' || *c == '"')
      fprintf(out, "\\%c", *c);
    else if (*c == '\n')
      fputs("\\n", out);
    else
      fputc(*c, out);
  }
}

static void put_labels(FILE *out, const pipeline_snap *p, const node_snap *n) {
  fputs("{pipeline=\"", out);
  put_label(out, p->name);
  if (n) {
    fputs("\",node=\"", out);
    put_label(out, n->id);
  }
  fputs("\"}", out);
}

typedef enum { FROM_TOTAL, FROM_LIVE } source_t;

static void node_family(FILE *out, const pipeline_snap *snaps, size_t count, const char *name,
                        const char *type, const char *help, size_t offset, source_t from) {
  fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
  for (size_t p = 0; p < count; p++)
    for (size_t n = 0; n < snaps[p].node_count; n++) {
      const node_snap *node = &snaps[p].nodes[n];
      const sl_node_stats *stats = from == FROM_TOTAL ? &node->total : &node->live;
      fputs(name, out);
      put_labels(out, &snaps[p], node);
      fprintf(out, " %llu\n", (unsigned long long)*(const uint64_t *)((const char *)stats + offset));
    }
}

static void latency_family(FILE *out, const pipeline_snap *snaps, size_t count) {
  const char *name = "sluice_node_latency_seconds";
  fprintf(out,
          "# HELP %s Time per event in a processor, per batch in a sink (write and flush).\n"
          "# TYPE %s histogram\n",
          name, name);
  for (size_t p = 0; p < count; p++)
    for (size_t n = 0; n < snaps[p].node_count; n++) {
      const node_snap *node = &snaps[p].nodes[n];
      if (node->kind == SL_NODE_SOURCE) continue;
      uint64_t cumulative = 0;
      for (size_t b = 0; b < SL_LATENCY_BUCKETS; b++) {
        cumulative += node->total.latency[b];
        /* Bucket b holds [2^b, 2^(b+1)) ns; the last one is open-ended (+Inf below). */
        if (b + 1 == SL_LATENCY_BUCKETS) break;
        fprintf(out, "%s_bucket{pipeline=\"", name);
        put_label(out, snaps[p].name);
        fputs("\",node=\"", out);
        put_label(out, node->id);
        fprintf(out, "\",le=\"%.9g\"} %llu\n", (double)(1ull << (b + 1)) / 1e9,
                (unsigned long long)cumulative);
      }
      fprintf(out, "%s_bucket{pipeline=\"", name);
      put_label(out, snaps[p].name);
      fputs("\",node=\"", out);
      put_label(out, node->id);
      fprintf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
      fprintf(out, "%s_sum", name);
      put_labels(out, &snaps[p], node);
      fprintf(out, " %.9g\n", (double)node->total.latency_sum_ns / 1e9);
      fprintf(out, "%s_count", name);
      put_labels(out, &snaps[p], node);
      fprintf(out, " %llu\n", (unsigned long long)cumulative);
    }
}

/* Reads every pipeline, leaving each entry referenced and read-locked. */
static void take_snapshot(sl_manager *manager, pipeline_snap **out, size_t *out_count) {
  size_t count = 0;
  sl_entry **all = sl__entry_all(manager, &count);
  pipeline_snap *snaps = calloc(count ? count : 1, sizeof *snaps);
  for (size_t i = 0; i < count && snaps; i++) {
    sl_entry *entry = all[i];
    pipeline_snap *snap = &snaps[i];
    snap->entry = entry;
    pthread_rwlock_rdlock(&entry->rw);
    snprintf(snap->name, sizeof snap->name, "%s", entry->name);
    snap->version = entry->version;
    snap->running = entry->run && entry->run->started;
    if (entry->run && (snap->nodes = calloc(entry->run->spec->node_count, sizeof *snap->nodes))) {
      const sl_pipeline_spec *spec = entry->run->spec;
      for (size_t n = 0; n < spec->node_count; n++) {
        node_snap *node = &snap->nodes[snap->node_count];
        node->id = spec->nodes[n].id;
        node->kind = spec->nodes[n].kind;
        if (!sl_pipeline_node_stats(entry->run->pipeline, node->id, &node->live)) continue;
        sl__node_stats_total(entry, node->id, &node->total);
        snap->node_count++;
      }
    }
    /* The read lock stays until the text is written: node ids are the spec's. */
  }
  if (!snaps)
    for (size_t i = 0; i < count; i++) sl__entry_release(manager, all[i]);
  free(all);
  *out = snaps;
  *out_count = snaps ? count : 0;
}

char *sl_manager_metrics(sl_manager *manager, size_t *len) {
  pipeline_snap *snaps = NULL;
  size_t count = 0;
  take_snapshot(manager, &snaps, &count); /* holds every entry's read lock */

  char *text = NULL;
  FILE *out = open_memstream(&text, len);
  if (out) {
    fprintf(out, "# HELP sluice_pipelines Pipelines the daemon knows.\n"
                 "# TYPE sluice_pipelines gauge\nsluice_pipelines %zu\n",
            count);
    fputs("# HELP sluice_pipeline_version The version each pipeline runs.\n"
          "# TYPE sluice_pipeline_version gauge\n",
          out);
    for (size_t p = 0; p < count; p++) {
      fputs("sluice_pipeline_version", out);
      put_labels(out, &snaps[p], NULL);
      fprintf(out, " %lld\n", (long long)snaps[p].version);
    }
    fputs("# HELP sluice_pipeline_up 1 when the pipeline runs, 0 when it failed or drains.\n"
          "# TYPE sluice_pipeline_up gauge\n",
          out);
    for (size_t p = 0; p < count; p++) {
      fputs("sluice_pipeline_up", out);
      put_labels(out, &snaps[p], NULL);
      fprintf(out, " %d\n", snaps[p].running ? 1 : 0);
    }
#define FAMILY(name, type, help, field, from)                                                      \
  node_family(out, snaps, count, name, type, help, offsetof(sl_node_stats, field), from)
    FAMILY("sluice_node_events_in_total", "counter", "Events that reached the node.", events_in,
           FROM_TOTAL);
    FAMILY("sluice_node_events_out_total", "counter", "Events the node emitted.", events_out,
           FROM_TOTAL);
    FAMILY("sluice_node_errors_total", "counter", "Events the node failed.", errors, FROM_TOTAL);
    FAMILY("sluice_node_queue_depth", "gauge",
           "Batches waiting for a sink; events in flight for a source.", queue_depth, FROM_LIVE);
    FAMILY("sluice_node_instances", "gauge", "Warm processor instances, over all workers.",
           instances, FROM_LIVE);
    FAMILY("sluice_node_recycles_total", "counter",
           "Processor instances replaced by a recycle limit (this version).", recycles, FROM_LIVE);
    FAMILY("sluice_node_memory_bytes", "gauge", "Linear memory of the warm instances.",
           memory_bytes, FROM_LIVE);
#undef FAMILY
    latency_family(out, snaps, count);
    fclose(out);
  }

  for (size_t p = 0; p < count; p++) {
    pthread_rwlock_unlock(&snaps[p].entry->rw);
    sl__entry_release(manager, snaps[p].entry);
    free(snaps[p].nodes);
  }
  free(snaps);
  return text;
}
