/*
 * manager.h - the pipelines a daemon (or `sluice dev`) runs: deploy, hot swap, rollback,
 * remove, restore after a restart, and the views the API shows of them.
 *
 * Owns every running sl_pipeline and its spec. Borrows the engine, the store and the
 * log hub, which must outlive it. Every function is safe from any thread; deploys of
 * one pipeline are exclusive (a second one gets SL_AGAIN: HTTP 409), deploys of
 * different pipelines run side by side. docs/design/control-plane.md explains the swap.
 */
#ifndef SL_DAEMON_MANAGER_H
#define SL_DAEMON_MANAGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/api_server.h"
#include "daemon/log_hub.h"
#include "daemon/store.h"
#include "sluice/engine.h"

typedef struct sl_manager sl_manager;

typedef struct sl_manager_options {
  sl_engine *engine; /* required */
  sl_store *store;   /* NULL (`sluice dev`): nothing is recorded, modules run from disk */
  sl_log_hub *logs;  /* required: every pipeline's log lines go here */
} sl_manager_options;

sl_status sl_manager_new(const sl_manager_options *opts, sl_manager **out, sl_error *err);
/* Drains and stops every pipeline (each within its drain_timeout), then frees. */
void sl_manager_destroy(sl_manager *manager);

/* Starts every stored pipeline at its current version. One that cannot start is kept,
 * with status "failed" and the reason, until a deploy or rollback fixes it. */
void sl_manager_restore(sl_manager *manager);
/* True once sl_manager_restore has returned. */
bool sl_manager_ready(const sl_manager *manager);

/* A deploy request (api.md "Deploy"). Strings are borrowed for the call. */
typedef struct sl_deploy {
  const char *expect_name; /* the pipeline's `name:` must be this; NULL: any */
  const char *source;      /* YAML or JSON text */
  size_t source_len;
  const char *file;      /* for messages; NULL: "pipeline.yaml" */
  const char *dir;       /* relative paths resolve here; NULL: the manager's home */
  const json_t *modules; /* {absolute module path: sha256 of an uploaded module}; may be NULL */
  const char *note;      /* kept with the version; NULL: "deploy" */
} sl_deploy;

/* What a deploy, swap or rollback did. Clear it with sl_deploy_result_clear. */
typedef struct sl_deploy_result {
  char name[256];
  int64_t version;
  bool created;     /* the pipeline did not exist before */
  const char *swap; /* "start", "overlap" or "drain" (static strings) */
  double swap_ms;   /* from the first change to the running graphs to the last */
  json_t *modules;  /* {node id: sha256} */
  json_t *problems; /* on failure: every problem, one string each ("file:line:col: ...") */
} sl_deploy_result;

void sl_deploy_result_clear(sl_deploy_result *result);

/*
 * Builds the new version (validate, pin modules, compile, init), records it, and swaps it
 * in. Statuses: SL_OK; SL_AGAIN (another deploy of this pipeline is running);
 * SL_CONFIG, SL_BAD_MODULE, SL_COMPILE, SL_LOAD, SL_INIT, SL_NOT_FOUND (an unknown module
 * hash): the request is invalid, `problems` says why, nothing changed; SL_IO and others:
 * the daemon failed (the old version keeps running).
 */
sl_status sl_manager_deploy(sl_manager *manager, const sl_deploy *deploy, sl_deploy_result *result,
                            sl_error *err);
/* A new version with processor `node` pinned to module `sha256`. SL_NOT_FOUND: no such
 * pipeline, or `node` is not one of its processors. Otherwise as for deploy. */
sl_status sl_manager_swap_module(sl_manager *manager, const char *name, const char *node,
                                 const char *sha256, sl_deploy_result *result, sl_error *err);
/* Runs version `to` (0: the highest below the current one) and makes it current. */
sl_status sl_manager_rollback(sl_manager *manager, const char *name, int64_t to,
                              sl_deploy_result *result, sl_error *err);
/* Drains, stops and forgets a pipeline. SL_NOT_FOUND; SL_AGAIN while it deploys. */
sl_status sl_manager_remove(sl_manager *manager, const char *name, sl_error *err);

/* --- views (api.md) --------------------------------------------------------------- */

bool sl_manager_has(sl_manager *manager, const char *name);         /* known, whatever its state */
json_t *sl_manager_list(sl_manager *manager);                       /* array of summaries */
json_t *sl_manager_describe(sl_manager *manager, const char *name); /* NULL: not found */
/* One pipeline's stats object, or {"pipelines": [...]} when `name` is NULL. */
json_t *sl_manager_stats(sl_manager *manager, const char *name);
/* Prometheus text exposition format; malloc'ed. */
char *sl_manager_metrics(sl_manager *manager, size_t *len);

/*
 * Answers `reply` with a stream of sampled events at `node`'s output (or its .errors
 * output): at most `rate` per second, ending after `limit` events (0: never). Follows the
 * pipeline across swaps. SL_NOT_FOUND / SL_INVALID (`err` says what) leave `reply`
 * unanswered for the caller.
 */
sl_status sl_manager_tap(sl_manager *manager, const char *name, const char *node, bool errors,
                         double rate, uint64_t limit, sl_api_reply *reply, sl_error *err);

#endif
