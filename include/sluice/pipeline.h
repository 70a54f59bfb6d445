/*
 * pipeline.h - pipeline files and running them.
 *
 * Two steps, two owners:
 *   sl_pipeline_load()  YAML file -> sl_pipeline_spec: parsed, interpolated, validated
 *                       (src/config/). Pure: touches no module, socket or file but the
 *                       YAML and the secret files it names.
 *   sl_pipeline_new()   spec -> sl_pipeline: modules compiled and instantiated, connector
 *                       instances created (src/core/). sl_pipeline_start() sets it moving.
 *
 * The file format is contracts.md §3; docs/reference/pipeline.md is the full reference.
 */
#ifndef SLUICE_PIPELINE_H
#define SLUICE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/capabilities.h"
#include "sluice/config.h"
#include "sluice/connector.h"
#include "sluice/engine.h"
#include "sluice/status.h"

/* A place in a pipeline file, for messages: "file:line:col". */
typedef struct sl_loc {
  const char *file; /* owned by the spec */
  int line;         /* 1-based; 0 when unknown (command-line pipelines) */
  int col;          /* 1-based */
} sl_loc;

/* One entry of `inputs:`: "upper" or "upper.errors". */
typedef struct sl_input_ref {
  char *node;   /* the node id, without ".errors" */
  bool errors;  /* true for "<id>.errors" */
  size_t index; /* resolved: index into sl_pipeline_spec.nodes */
  sl_loc loc;
} sl_input_ref;

/* Settings of a `type: wasm` node, filled from sl_wasm_fields. */
typedef struct sl_wasm_config {
  char *module;          /* absolute path */
  sl_conf_map config;    /* handed to the processor's init */
  sl_conf_map env;       /* the processor's WASI environment */
  uint64_t memory;       /* bytes; 0 = engine default */
  uint64_t time_limit;   /* ms per call; 0 = engine default */
  uint64_t stack;        /* bytes; 0 = engine default */
  int64_t recycle_calls; /* replace an instance after this many calls; 0 = never */
  sl_capabilities capabilities; /* what the processor may use besides logging and config */
} sl_wasm_config;

extern const sl_conf_field sl_wasm_fields[];

typedef struct sl_node_spec {
  char *id;
  char *type; /* the YAML `type` */
  sl_node_kind kind;
  const sl_connector *connector; /* sources and sinks; NULL for processors */
  void *config;                  /* sources/sinks: connector->config_size bytes;
                                    processors: an sl_wasm_config */
  sl_input_ref *inputs;
  size_t input_count;
  sl_loc loc; /* where the node's mapping starts */
} sl_node_spec;

/* Processors have an errors output (`ID.errors`); so do sources whose connector says so
 * (events a broker source gives up on). */
static inline bool sl_node_has_errors_output(const sl_node_spec *node) {
  return node->kind == SL_NODE_PROCESSOR ||
         (node->kind == SL_NODE_SOURCE && node->connector && node->connector->errors_output);
}

/* One event in a test case (`sluice test`). */
typedef struct sl_test_event {
  char *payload;
  size_t payload_len;
  sl_conf_map meta; /* inputs: the metadata; expectations: keys that must match */
  sl_loc loc;
} sl_test_event;

/* Events fed to a source, or expected at a node's output ("upper", "upper.errors"). */
typedef struct sl_test_stream {
  sl_input_ref at;
  sl_test_event *events;
  size_t count;
} sl_test_stream;

typedef struct sl_test_case {
  char *name;
  sl_loc loc;
  sl_test_stream *inputs;
  size_t input_count;
  sl_test_stream *expects;
  size_t expect_count;
} sl_test_case;

typedef struct sl_pipeline_spec {
  char *name;
  char *file;             /* the pipeline file as given, for messages */
  char *dir;              /* absolute folder relative paths resolve against */
  unsigned workers;       /* worker threads; 0 = one per CPU */
  uint64_t batch_size;    /* events per batch sources aim for */
  uint64_t max_in_flight; /* source events accepted but not yet delivered, per source */
  uint64_t drain_timeout; /* ms allowed for draining at shutdown */
  sl_node_spec *nodes;    /* in file order */
  size_t node_count;
  sl_test_case *tests;
  size_t test_count;
  char **secret_values; /* every secret's value, for redaction; never print these */
  size_t secret_count;
  void *storage; /* owns every string above */
} sl_pipeline_spec;

typedef struct sl_load_options {
  /* Environment lookup for ${VAR}; NULL means getenv. */
  const char *(*getenv)(void *user, const char *name);
  void *getenv_user;
} sl_load_options;

/*
 * Parses, interpolates and validates a pipeline file. `opts` may be NULL.
 * Statuses: SL_OK (the caller frees *out with sl_pipeline_spec_free); SL_IO (unreadable
 * file); SL_CONFIG: `err` holds one line per problem, "file:line:col: what is wrong and
 * what would be right", secrets never included.
 */
sl_status sl_pipeline_load(const char *path, const sl_load_options *opts, sl_pipeline_spec **out,
                           sl_error *err);

/* The same from text in memory; `display_name` appears in messages and `dir` resolves
 * relative paths (quick mode builds its pipeline this way). */
sl_status sl_pipeline_load_text(const char *text, size_t len, const char *display_name,
                                const char *dir, const sl_load_options *opts,
                                sl_pipeline_spec **out, sl_error *err);

void sl_pipeline_spec_free(sl_pipeline_spec *spec);

/* Replaces every secret value inside `text` (NUL-terminated, capacity `cap`) with "***". */
void sl_pipeline_spec_redact(const sl_pipeline_spec *spec, char *text, size_t cap);

/* Finds a node by id; NULL when absent. */
const sl_node_spec *sl_pipeline_spec_node(const sl_pipeline_spec *spec, const char *id);

/* --- running ---------------------------------------------------------------------- */

typedef struct sl_pipeline sl_pipeline;

/* Buckets of a latency histogram: bucket i counts durations in [2^i, 2^(i+1)) ns, except
 * that bucket 0 also counts 0 and the last bucket counts everything from 2^39 ns (~9 min)
 * up. For a Prometheus histogram, bucket i's `le` bound is 2^(i+1) ns. */
#define SL_LATENCY_BUCKETS 40

/*
 * Counters for one node since the pipeline was built, summed over workers. Every field
 * only grows, except queue_depth, instances and memory_bytes, which are current values.
 * Fields that do not apply to a node's kind are 0.
 */
typedef struct sl_node_stats {
  uint64_t events_in;
  uint64_t events_out;
  uint64_t errors; /* events this node failed (routed to <id>.errors, or logged) */
  uint64_t batches;
  /* Sources: events in flight (emitted, not yet acknowledged). Sinks: batches handed to
   * the sink and not yet written (queued, or taken by the sink thread and waiting for
   * their turn). Processors: 0 (a worker runs a batch to completion). */
  uint64_t queue_depth;
  /* Cumulative histogram (see SL_LATENCY_BUCKETS). Processors: the time per event, taken
   * as one sample per batch: the batch's time in sl_pool_process divided by its events
   * (timing each call would cost a cheap processor a quarter of its throughput), so
   * quantiles are over batches and one slow event is averaged with its batch. Sinks: one
   * sample per batch, the time of its write; the batch written last before a flush also
   * carries the flush's time. Sources: all 0. */
  uint64_t latency[SL_LATENCY_BUCKETS];
  uint64_t latency_sum_ns; /* the sum of the samples counted in `latency` (Prometheus _sum) */
  /* Processors only. instances: warm instances alive now. A pool keeps at most one per
   * worker; one is discarded after a fault or a recycle and the next event starts a
   * fresh one, so this is at most the worker count and lower only between a discard and
   * the next event. recycles: instances replaced by recycle_calls or recycle_memory.
   * memory_bytes: linear memory of the instances alive now. */
  uint64_t instances, recycles, memory_bytes;
} sl_node_stats;

/*
 * An estimate of the q-quantile (0 <= q <= 1; 0.99 for p99) of a histogram of
 * SL_LATENCY_BUCKETS buckets, in ns; 0 when the histogram is empty. The rank is found in
 * its bucket and interpolated linearly inside it, as Prometheus' histogram_quantile does,
 * so the estimate never leaves the bucket holding the true value (at most 2x off). For
 * the last bucket, which has no upper bound, it is that bucket's lower bound, 2^39 ns.
 */
uint64_t sl_latency_quantile(const uint64_t *buckets, double q);

typedef struct sl_pipeline_options {
  const char *home; /* NULL: $SLUICE_HOME or ~/.sluice (checkpoints under state/) */
  sl_log_fn log;    /* NULL: stderr */
  void *log_user;
} sl_pipeline_options;

/*
 * Builds a runnable pipeline: loads every module through `engine`, creates each
 * worker's processor pools and every connector instance. The spec must outlive the
 * pipeline. Statuses: SL_OK; SL_BAD_MODULE / SL_COMPILE / SL_LOAD / SL_INIT with the
 * node named in `err`; SL_CONFIG from a connector's init; SL_IO.
 */
sl_status sl_pipeline_new(sl_engine *engine, const sl_pipeline_spec *spec,
                          const sl_pipeline_options *opts, sl_pipeline **out, sl_error *err);

/*
 * What `sluice validate` checks for processor node `index`: its module loads (compiling
 * it into the cache) and its init accepts the node's config. Statuses as for
 * sl_pipeline_new, with the node and its place named in `err`.
 */
sl_status sl_pipeline_check_processor(sl_engine *engine, const sl_pipeline_spec *spec, size_t index,
                                      sl_error *err);

/* Starts workers, sinks, then sources. */
sl_status sl_pipeline_start(sl_pipeline *pipeline, sl_error *err);

/* Asks sources to stop; what is in flight drains. Any thread, async-signal-safe. */
void sl_pipeline_stop(sl_pipeline *pipeline);

/*
 * Waits until every source has ended and every event is delivered (SL_OK), or until
 * `deadline_ms` after sl_pipeline_stop was called, when it gives up (SL_AGAIN: events
 * were still in flight; `err` says how many).
 */
sl_status sl_pipeline_wait(sl_pipeline *pipeline, sl_error *err);

/* Stops threads and frees everything. Call after sl_pipeline_wait. */
void sl_pipeline_destroy(sl_pipeline *pipeline);

/*
 * Runs test case `index` of `spec` (`sluice test`): the case's input events are fed to
 * the sources, the real processors run, and what reaches each expectation's node is
 * compared. Sources and sinks are not started. On SL_OK, *passed says whether every
 * expectation held and *report (malloc'ed, the caller frees) holds a readable diff of
 * what did not. Other statuses are as for sl_pipeline_new.
 */
sl_status sl_pipeline_run_test(sl_engine *engine, const sl_pipeline_spec *spec, size_t index,
                               const sl_pipeline_options *opts, bool *passed, char **report,
                               size_t *report_len, sl_error *err);

/* Counters for node `id`; false when no such node. Any thread, at any time between
 * sl_pipeline_new and sl_pipeline_destroy; takes no lock a worker waits on. */
bool sl_pipeline_node_stats(const sl_pipeline *pipeline, const char *id, sl_node_stats *out);

/* --- taps ------------------------------------------------------------------------- */

/*
 * A tap watches the events at one output of a node while the pipeline runs, for
 * `sluice tap` and the API's tap stream. A node nobody taps pays one relaxed atomic load
 * per batch; taps on one node share a lock, so a slow tap callback slows that node.
 */
typedef struct sl_tap sl_tap;

/*
 * Called with the events at the tapped output, one call per batch (never with 0
 * events): for a source, the batch as emitted, before any processor; for a processor,
 * its outputs for one batch, or with `errors` the events it failed (copies of the inputs
 * with metadata `error` and `fault`, as <id>.errors carries them); for a sink, a batch
 * just before it is written. Runs on a worker thread (sources, processors) or on the
 * sink's thread, while a lock of the node is held: it must not block, must not add or
 * remove taps, and must copy what it keeps, since `events` is borrowed for the call.
 * Calls for one node never overlap.
 */
typedef void (*sl_tap_fn)(void *user, const sl_event *events, size_t count);

/*
 * Adds a tap on node `node_id`'s output, or with `errors` on its <id>.errors output;
 * batches from then on reach `fn(user, ...)` (one already running may or may not). Does
 * not change what the pipeline delivers: a processor's failed events are built for the
 * tap even when no node reads <id>.errors, and are still logged and dropped then.
 * Any thread but a tap callback's, from sl_pipeline_new until sl_pipeline_destroy.
 * Statuses: SL_OK (*out is the tap, owned by the pipeline until sl_pipeline_tap_remove
 * or sl_pipeline_destroy frees it); SL_NOT_FOUND (no such node); SL_INVALID (`errors` on
 * a source or a sink, which have no errors output). `err` says which.
 */
sl_status sl_pipeline_tap_add(sl_pipeline *pipeline, const char *node_id, bool errors, sl_tap_fn fn,
                              void *user, sl_tap **out, sl_error *err);

/*
 * Removes and frees a tap. When it returns, no call of the tap's fn is running and none
 * will start, so `user` may be freed. Any thread but a tap callback's.
 */
void sl_pipeline_tap_remove(sl_pipeline *pipeline, sl_tap *tap);

#endif
