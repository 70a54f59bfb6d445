/*
 * connector.h - sources and sinks, declared as one const struct each.
 *
 * A connector is a table: its name (the YAML `type`), its kind, its settings
 * (config.h) and a few callbacks. The runtime (src/core/pipeline_run.c) owns threads,
 * queues, credits and acknowledgements; a connector only moves bytes.
 *
 * Sources produce batches through an sl_source_port. Each batch carries one
 * acknowledgement callback that fires once every sink downstream has accepted every
 * event derived from the batch (or one of them failed). That is how a file source
 * checkpoints an offset and an HTTP source answers 2xx only after delivery.
 *
 * Sinks receive whole batches on a thread of their own, so a blocking client library is
 * fine there; `write` returns once the batch is accepted (written, answered, acked).
 *
 * Adding a connector: one folder under src/connectors/, one line in registry.c.
 */
#ifndef SLUICE_CONNECTOR_H
#define SLUICE_CONNECTOR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "sluice/config.h"
#include "sluice/event.h"
#include "sluice/status.h"

struct uv_loop_s;

typedef enum sl_node_kind {
  SL_NODE_SOURCE,
  SL_NODE_PROCESSOR,
  SL_NODE_SINK,
} sl_node_kind;

typedef enum sl_log_level { SL_LOG_ERROR, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG } sl_log_level;

/* What a connector instance knows about its place. Borrowed for the node's lifetime. */
typedef struct sl_node_ctx {
  const char *pipeline;  /* pipeline name */
  const char *id;        /* node id */
  const char *state_dir; /* $SLUICE_HOME/state/<pipeline>: checkpoints and the like; exists */
  unsigned workers;      /* worker threads in this pipeline */
  void *runtime;         /* opaque, for sl_node_log */
} sl_node_ctx;

/* Logs one line tagged with the pipeline and node; secrets are redacted. Any thread. */
void sl_node_log(const sl_node_ctx *node, sl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- sources ---------------------------------------------------------------------- */

typedef struct sl_source_port sl_source_port;

/*
 * Called once per emitted batch when its fate is known: SL_OK when every derived event
 * was accepted by every sink (a filter that drops everything counts as delivered),
 * otherwise the first failure. Runs on an arbitrary runtime thread; keep it short.
 */
typedef void (*sl_ack_fn)(void *cookie, sl_status delivered);

/*
 * Hands `*batch` (allocated with malloc, events initialised by the source) to the
 * pipeline and sets *batch to NULL. Blocks while the pipeline is full (backpressure).
 * Statuses: SL_OK; SL_CLOSED when the pipeline stops hard (the batch is freed and
 * `on_ack` is not called). For sources with a thread of their own.
 */
sl_status sl_source_emit(sl_source_port *port, sl_event_list **batch, sl_ack_fn on_ack,
                         void *cookie);

/*
 * Like sl_source_emit but never blocks and runs the batch through the processors right
 * here; only for code running on worker `worker`'s loop (see sl_source_worker_loop).
 * SL_AGAIN: the pipeline is full, *batch is untouched (answer 503 and retry later).
 */
sl_status sl_source_emit_on_worker(sl_source_port *port, unsigned worker, sl_event_list **batch,
                                   sl_ack_fn on_ack, void *cookie);

/*
 * Like sl_source_emit, but the batch leaves on the source's errors output (`ID.errors`):
 * events the source gives up on, such as a JetStream message delivered `max_deliver`
 * times. Each event should carry an `error` metadata pair saying why. When no node reads
 * ID.errors the events are counted as errors, logged and acknowledged (dropped). Only
 * for connectors that declare `errors_output`.
 */
sl_status sl_source_emit_errors(sl_source_port *port, sl_event_list **batch, sl_ack_fn on_ack,
                                void *cookie);

/* This source will emit nothing more. Call exactly once, from any thread. */
void sl_source_end(sl_source_port *port);

/* Worker loops, for sources that serve requests on every worker (HTTP). */
unsigned sl_source_worker_count(const sl_source_port *port);
struct uv_loop_s *sl_source_worker_loop(sl_source_port *port, unsigned worker);

/* Runs `fn(arg)` on worker `worker`'s loop thread soon. Any thread. */
void sl_source_post(sl_source_port *port, unsigned worker, void (*fn)(void *arg), void *arg);

/* Events per batch the pipeline asks sources to aim for (`batch_size`). */
size_t sl_source_batch_size(const sl_source_port *port);

/* --- the connector table --------------------------------------------------------- */

#define SL_CONNECTOR_VERSION 1

typedef struct sl_connector {
  unsigned version;            /* SL_CONNECTOR_VERSION; fields are only ever appended */
  const char *name;            /* the YAML `type` */
  sl_node_kind kind;           /* SL_NODE_SOURCE or SL_NODE_SINK */
  const char *summary;         /* one line, for --help and the reference page */
  const sl_conf_field *fields; /* settings, ended by a {NULL} entry */
  size_t config_size;          /* size of the struct `fields` fill */

  /* Creates the instance. `config` is the filled struct, borrowed for the node's
   * lifetime. Nothing may run yet: a failure here leaves nothing to stop. */
  sl_status (*init)(const sl_node_ctx *node, const void *config, void **state, sl_error *err);

  /* Sources: start producing through `port` (borrowed until sl_source_end). Sources
   * that block start a thread of their own; HTTP-like sources attach to worker loops. */
  sl_status (*start)(void *state, sl_source_port *port, sl_error *err);

  /* Sources: stop producing soon, finish what is in hand, then call sl_source_end.
   * Sinks (optional): the pipeline is being torn down; make a `write` that is blocked
   * (retrying, waiting on a peer) return soon. Any thread; must not block. */
  void (*stop)(void *state);

  /* Sinks: deliver one batch; blocking is fine (a thread of the sink's own). SL_OK means
   * accepted; a failure is recorded for these events and reported to their sources. */
  sl_status (*write)(void *state, const sl_event_list *batch, sl_error *err);

  /* Sinks: make accepted events durable/visible (called when the queue runs dry and at
   * shutdown). May be NULL. */
  sl_status (*flush)(void *state, sl_error *err);

  /* Releases the instance; for sources, only after sl_source_end. May be NULL. */
  void (*destroy)(void *state);

  /* Sources: several instances may run side by side, each event reaching one of them
   * (an HTTP listener with SO_REUSEPORT, a broker queue group). A hot swap then starts
   * the new graph before the old one drains, leaving no gap; otherwise the old graph
   * drains first. */
  bool shareable;

  /* Sources: may emit to `ID.errors` (sl_source_emit_errors), so pipelines may read it. */
  bool errors_output;
} sl_connector;

/* The registry (src/connectors/registry.c): NULL when no connector has that name+kind. */
const sl_connector *sl_connector_find(const char *name, sl_node_kind kind);

/* Every registered connector, NULL-terminated, in registry order. */
const sl_connector *const *sl_connector_all(void);

#endif
