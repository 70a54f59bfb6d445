/*
 * manager_internal.h - the manager's parts, shared by the files that make it:
 *
 *   manager.c        entries, the deploy slot, deploy / swap / rollback / remove / restore
 *   manager_build.c  one version made runnable: load, pin modules, sl_pipeline_new
 *   manager_views.c  list, describe, stats, the 1 s sampler behind rates and latency
 *   manager_tap.c    tap subscriptions that follow a pipeline across swaps
 *   metrics.c        the Prometheus text
 *
 * Locks, outermost first: manager.lock (the entry list, refs, deploy slots) ->
 * entry.rw (which version runs, status) -> manager.tap_lock -> running.sample_lock.
 * Only the holder of an entry's deploy slot changes entry.run; it takes entry.rw for
 * writing just to publish the change, so readers never see a destroyed pipeline.
 */
#ifndef SL_DAEMON_MANAGER_INTERNAL_H
#define SL_DAEMON_MANAGER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "daemon/manager.h"
#include "sluice/pipeline.h"

#define SL_SAMPLE_WINDOW 10 /* latency quantiles cover the last 10 samples (10 s) */

/* What builds a version: kept with the running graph so it can be built again. */
typedef struct sl_recipe {
  char *source;
  size_t source_len;
  char *file;
  char *dir;
  json_t *pins; /* {node id: sha256}; NULL or partial: resolve from the text */
} sl_recipe;

void sl__recipe_clear(sl_recipe *recipe);
sl_status sl__recipe_copy(sl_recipe *dst, const sl_recipe *src);

typedef struct sl_node_sample {
  uint64_t last_in, last_out;
  double rate_in, rate_out;
  uint64_t window[SL_SAMPLE_WINDOW][SL_LATENCY_BUCKETS]; /* cumulative snapshots */
  size_t filled, next;
} sl_node_sample;

/* One version, built and maybe running. */
typedef struct sl_running {
  sl_manager *manager;
  char *name;
  atomic_int_fast64_t version; /* known once recorded; log lines read it */
  sl_recipe recipe;
  json_t *pins; /* resolved: {node id: sha256} for every processor */
  sl_pipeline_spec *spec;
  sl_pipeline *pipeline;
  char **owned_paths; /* module paths the spec points at */
  size_t owned_count;
  bool started;
  uint64_t started_ms;
  pthread_mutex_t sample_lock;
  uint64_t sampled_ms;
  sl_node_sample *samples; /* per spec node */
} sl_running;

/* Loads and validates a recipe's text; every problem is appended to `problems`. */
sl_status sl__recipe_load(sl_manager *manager, const sl_recipe *recipe, sl_pipeline_spec **spec,
                          json_t *problems, sl_error *err);
/* Builds `recipe` (pins from recipe->pins win over the text and `uploaded`).
 * `uploaded` maps absolute module paths to hashes (api.md "Deploy"). `loaded`, when not
 * NULL, is the recipe's spec already loaded by sl__recipe_load; it is taken over. */
sl_status sl__running_build(sl_manager *manager, const sl_recipe *recipe, const json_t *uploaded,
                            const char *expect_name, sl_pipeline_spec *loaded, sl_running **out,
                            json_t *problems, sl_error *err);
/* Stops (if started), waits for the drain, destroys. */
void sl__running_free(sl_running *run);

typedef struct sl_node_total {
  char *id;
  sl_node_stats stats;
} sl_node_total;

typedef struct sl_tap_sub sl_tap_sub;

typedef struct sl_entry {
  char *name;
  unsigned refs;  /* manager.lock */
  bool deploying; /* manager.lock: the deploy slot */
  bool listed;    /* manager.lock: still in manager.entries */
  pthread_rwlock_t rw;
  sl_running *run;    /* what serves; NULL while failed or between drain and start */
  const char *status; /* "running", "deploying", "draining", "failed" */
  char *error;        /* why it failed; NULL */
  int64_t version;
  int64_t created_at_ms, updated_at_ms;
  sl_node_total *totals; /* counts of versions that were swapped out, by node id */
  size_t total_count;
  sl_tap_sub *taps; /* manager.tap_lock */
  struct sl_entry *link;
} sl_entry;

struct sl_manager {
  sl_engine *engine;
  sl_store *store;
  sl_log_hub *logs;
  pthread_mutex_t lock;
  sl_entry *entries;
  int64_t dev_version; /* without a store: the last version number handed out */
  atomic_bool ready;
  pthread_mutex_t tap_lock;
  pthread_t sampler;
  pthread_mutex_t sampler_lock;
  pthread_cond_t sampler_wake;
  bool sampler_quit;
};

int64_t sl__wall_ms(void);

/* Entries: found with a reference; release with sl__entry_release. */
sl_entry *sl__entry_get(sl_manager *manager, const char *name);
void sl__entry_release(sl_manager *manager, sl_entry *entry);
/* Every listed entry, each with a reference; free the array after releasing them. */
sl_entry **sl__entry_all(sl_manager *manager, size_t *count);

/* manager_views.c */
void sl__sample(sl_running *run);
/* Live counters plus those of swapped-out versions. Caller holds entry.rw. */
void sl__node_stats_total(const sl_entry *entry, const char *node_id, sl_node_stats *out);
void *sl__sampler_main(void *manager);
/* Adds a retired version's final counters into entry.totals. Caller holds entry.rw
 * for writing. */
void sl__fold_totals(sl_entry *entry, const sl_running *run);

/* manager_tap.c */
void sl__taps_attach(sl_manager *manager, sl_entry *entry, sl_running *run);
void sl__taps_detach(sl_manager *manager, sl_entry *entry, sl_running *run);
/* Ends subscriptions whose client left or whose limit was reached. */
void sl__taps_sweep(sl_manager *manager, sl_entry *entry);
/* Ends every subscription of a pipeline being removed. */
void sl__taps_end_all(sl_manager *manager, sl_entry *entry);

#endif
