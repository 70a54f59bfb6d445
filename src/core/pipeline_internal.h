/*
 * pipeline_internal.h - the running pipeline's parts, shared by the files that make it:
 *
 *   graph_plan.c    which nodes a batch from each source visits, in what order
 *   source_port.c   credits (backpressure) and the sl_source_* calls sources make
 *   worker.c        worker threads: a libuv loop each, their own processor pools
 *   sink_runner.c   one thread per sink: write, flush, acknowledge
 *   pipeline.c      sl_pipeline_new / start / stop / wait / destroy
 *   node_log.c      log lines from nodes and processors, secrets redacted
 *   node_stats.c    latency histograms and sl_pipeline_node_stats
 *   tap.c           taps: watching a node's output while the pipeline runs
 */
#ifndef SL_CORE_PIPELINE_INTERNAL_H
#define SL_CORE_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "core/ack.h"
#include "core/batch_queue.h"
#include "sluice/pipeline.h"

typedef struct sl_pipeline sl_pipeline;

/* --- graph_plan.c --- */

typedef struct sl_plan {
  size_t node_count;
  size_t **steps;     /* per source node: the nodes its batches visit, topologically */
  size_t *step_count; /* per node (0 for non-sources) */
  bool *output_read;  /* per node: some node reads its output */
  bool *errors_read;  /* per node: some node reads <id>.errors */
} sl_plan;

void sl__plan_build(const sl_pipeline_spec *spec, sl_plan *plan);
void sl__plan_free(sl_plan *plan);

/* --- source_port.c --- */

struct sl_source_port {
  sl_pipeline *pipeline;
  size_t node;
  unsigned worker; /* where sl_source_emit sends batches: one worker keeps order */
  pthread_mutex_t lock;
  pthread_cond_t credit;
  uint64_t in_flight;
  uint64_t max_in_flight;
  bool closed; /* hard stop: emit fails instead of waiting */
  atomic_bool ended;
};

void sl__port_init(sl_source_port *port, sl_pipeline *pipeline, size_t node, unsigned worker,
                   uint64_t max_in_flight);
void sl__port_destroy(sl_source_port *port);
void sl__port_close(sl_source_port *port);
/* Called by the last release of an ack. */
void sl__port_return_credits(sl_source_port *port, size_t events);

/* --- worker.c --- */

/* A latency histogram and the sum of its samples (see sl_node_stats). */
typedef struct sl_latency {
  atomic_uint_fast64_t buckets[SL_LATENCY_BUCKETS];
  atomic_uint_fast64_t sum_ns;
} sl_latency;

typedef struct sl_post {
  void (*fn)(void *arg);
  void *arg;
  struct sl_post *next;
} sl_post;

/* What a worker publishes about one processor for sl_pipeline_node_stats. The worker is
 * the only writer (see sl__latency_record), readers sum over workers. */
typedef struct sl_worker_stats {
  sl_latency latency;
  atomic_uint_fast64_t instances, recycles, memory_bytes; /* from sl_pool_stats */
} sl_worker_stats;

typedef struct sl_worker_node {
  sl_pool *pool;        /* processors: this worker's instances */
  sl_event_list out;    /* outputs of the batch being run */
  sl_event_list errors; /* failed inputs, when someone reads <id>.errors or taps it */
  bool visited;         /* reached by the batch being run */
  sl_worker_stats stats;
} sl_worker_node;

typedef struct sl_worker {
  sl_pipeline *pipeline;
  unsigned index;
  pthread_t thread;
  bool thread_started;
  uv_loop_t loop;
  uv_async_t wake;
  sl_batch_queue inbox; /* unbounded: the sources' credits bound it */
  pthread_mutex_t posts_lock;
  sl_post *posts;
  atomic_bool quit;
  sl_worker_node *nodes; /* one per pipeline node */
} sl_worker;

sl_status sl__worker_init(sl_worker *worker, sl_pipeline *pipeline, unsigned index, sl_error *err);
sl_status sl__worker_start(sl_worker *worker, sl_error *err);
/* Runs one batch through the graph on the calling thread (which must be the worker's). */
void sl__worker_run(sl_worker *worker, sl_work *work);
void sl__worker_wake(sl_worker *worker);
void sl__worker_post(sl_worker *worker, void (*fn)(void *arg), void *arg);
/* Stops the loop and joins the thread. */
void sl__worker_stop(sl_worker *worker);
void sl__worker_destroy(sl_worker *worker);

/* --- sink_runner.c --- */

typedef struct sl_sink_runner {
  sl_pipeline *pipeline;
  size_t node;
  sl_batch_queue queue;
  atomic_uint_fast64_t depth; /* batches pushed and not yet written (queue_depth) */
  pthread_t thread;
  bool thread_started;
} sl_sink_runner;

sl_status sl__sink_runner_start(sl_sink_runner *runner, sl_error *err);
/* Lets the queue drain, then joins the thread. */
void sl__sink_runner_stop(sl_sink_runner *runner);

/* --- node_log.c --- */

/* Logs at most one line per second for a noisy condition, counting what it held back. */
typedef struct sl_log_limiter {
  pthread_mutex_t lock;
  uint64_t window_start_ms;
  uint64_t suppressed;
} sl_log_limiter;

bool sl__log_limiter_allow(sl_log_limiter *limiter, uint64_t *suppressed);
/* "" or " (N similar messages held back)": per thread, valid until the next call. */
const char *sl__log_suppressed_note(uint64_t suppressed);
uint64_t sl__now_ms(void);

/* An sl_log_fn for a processor's stdout/stderr (sl_pool_options.log; `user` is the
 * pipeline): redacts the pipeline's secrets and hands the line to the pipeline's log. */
void sl__processor_log(void *user, const char *node_id, const char *stream, const char *line,
                       size_t len);

/* --- node_stats.c --- */

static inline uint64_t sl__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline unsigned sl__latency_bucket(uint64_t ns) {
  if (ns < 2) return 0;
  unsigned bucket = 63u - (unsigned)__builtin_clzll(ns);
  return bucket < SL_LATENCY_BUCKETS ? bucket : SL_LATENCY_BUCKETS - 1;
}

/* Adds `by` to a counter only the calling thread writes: a relaxed load and store, no
 * locked instruction, and readers on other threads still see whole values. */
static inline void sl__owned_add(atomic_uint_fast64_t *counter, uint64_t by) {
  atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + by,
                        memory_order_relaxed);
}

/* Counts one duration. Only one thread ever writes a given histogram (a worker its own,
 * a sink thread its sink's). */
static inline void sl__latency_record(sl_latency *latency, uint64_t ns) {
  sl__owned_add(&latency->buckets[sl__latency_bucket(ns)], 1);
  sl__owned_add(&latency->sum_ns, ns);
}

/* --- tap.c --- */

struct sl_tap {
  sl_tap_fn fn;
  void *user;
  size_t node;
  bool errors;
  struct sl_tap *next;
};

/* Taps of one node. `count` is read without the lock on every batch; the list and the
 * calls are under the lock, which is how sl_pipeline_tap_remove knows no call runs. */
typedef struct sl_node_taps {
  atomic_uint count;
  pthread_mutex_t lock;
  sl_tap *list;
} sl_node_taps;

/* Whether any tap watches the node: the one check a batch pays when none does. */
static inline bool sl__tapped(sl_node_taps *taps) {
  return atomic_load_explicit(&taps->count, memory_order_relaxed) != 0;
}

/* Calls the node's taps on that output with `events` (nothing when it is empty). */
void sl__taps_call(sl_node_taps *taps, bool errors, const sl_event_list *events);
void sl__taps_init(sl_node_taps *taps);
/* Frees the taps still attached. */
void sl__taps_destroy(sl_node_taps *taps);

/* --- pipeline.c --- */

typedef struct sl_node_stats_atomic {
  atomic_uint_fast64_t events_in, events_out, errors, batches;
  sl_latency latency; /* sinks; processors keep theirs per worker (sl_worker_stats) */
} sl_node_stats_atomic;

typedef struct sl_node_rt {
  sl_node_ctx ctx;
  void *state;       /* the connector's instance */
  sl_module *module; /* processors */
  sl_kv *proc_config, *proc_env;
  struct sl_node_caps *caps; /* processors: what the node was granted, live */
  sl_source_port *port; /* sources */
  sl_sink_runner *sink; /* sinks */
  sl_node_stats_atomic stats;
  sl_log_limiter limiter;
  sl_node_taps taps;
} sl_node_rt;

struct sl_pipeline {
  const sl_pipeline_spec *spec;
  sl_engine *engine;
  char *state_dir;
  struct sl_kv_registry *kv; /* the pipeline's key-value buckets; NULL until a node needs one */
  sl_log_fn log;
  void *log_user;
  sl_plan plan;
  sl_node_rt *nodes;
  unsigned worker_count;
  sl_worker *workers;
  size_t sink_queue_capacity;

  pthread_mutex_t lock; /* guards what follows and pairs with `changed` */
  pthread_cond_t changed;
  size_t source_count;
  size_t sources_ended;
  atomic_uint_fast64_t in_flight; /* source events not yet acknowledged, all sources */
  atomic_bool stopping;
  atomic_bool tearing_down; /* sl_pipeline_destroy began: sinks release, not write */
  uint64_t stop_deadline_ms;
  bool started;
};

/* The pool options of a `type: wasm` node; `config` and `env` are its maps as sl_kv
 * arrays (see kv_from_map), borrowed. */
sl_pool_options sl__wasm_pool_options(const sl_node_spec *node, const sl_kv *config,
                                      const sl_kv *env, const struct sl_node_caps *caps);

/* Wakes sl_pipeline_wait: a source ended or the pipeline drained. */
void sl__pipeline_notify(sl_pipeline *pipeline);

#endif
