/*
 * http_source_internal.h - the parts of the `http` source shared by its two files:
 *
 *   http_source.c          settings, listening sockets, worker attachment, drain and end
 *   http_source_request.c  one request: routing, events, emit, waiting for the ack, answer
 *
 * Threads. Everything below a worker (its h2o context, listener, connections, pending
 * requests) is touched only on that worker's loop thread, except `on_ack`, which runs on
 * a runtime thread and only posts back to the loop (sl_source_post). So nothing here
 * needs a lock; `drained` is the one counter the workers share.
 */
#ifndef SL_CONNECTORS_HTTP_SOURCE_INTERNAL_H
#define SL_CONNECTORS_HTTP_SOURCE_INTERNAL_H

#include <h2o.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/listen_addr.h"
#include "sluice/connector.h"

typedef struct http_source_config {
  char *listen;
  char *path;
  char *split;
  uint64_t max_body;
  uint64_t retry_after; /* ms */
} http_source_config;

struct http_source;

/* One worker's share of the endpoint: a listener and an h2o context on its loop. */
typedef struct http_worker {
  struct http_source *src;
  unsigned index;
  int listen_fd;        /* bound in start(); -1 once the loop owns it (uv_tcp_open) */
  uv_tcp_t listener;    /* valid once `listening` */
  bool listening;       /* uv_tcp_open + uv_listen succeeded, not yet closed */
  bool listener_closed; /* its close callback ran, or it never opened */
  h2o_context_t ctx;    /* valid once `ctx_ready`; memory lives until destroy */
  h2o_accept_ctx_t accept;
  bool ctx_ready;
  bool draining;           /* stop() reached this worker: new requests get 503 */
  bool finished;           /* drained and the context disposed */
  h2o_linklist_t conns;    /* http_conn: accepted sockets not yet closed */
  h2o_linklist_t pendings; /* http_pending: emitted batches whose ack is not handled */
  size_t pending_count;
} http_worker;

/* An accepted connection: the uv handle h2o's socket wraps, freed in its close callback. */
typedef struct http_conn {
  uv_tcp_t tcp; /* first: the close callback gets this pointer */
  http_worker *worker;
  h2o_linklist_t link;
} http_conn;

typedef struct http_source {
  const sl_node_ctx *node;
  const http_source_config *config;
  bool split_lines;
  sl_listen_addr where;         /* parsed `listen`; the bound port after start() */
  h2o_globalconf_t globalconf; /* read-only once start() returns */
  bool globalconf_ready;
  sl_source_port *port; /* set by start() */
  http_worker *workers;
  unsigned worker_count;
  atomic_bool serving;  /* start() handed the sockets to the workers */
  atomic_bool stopping; /* stop() was called; it may come before start() is done */
  atomic_uint drained;  /* workers that finished draining; the last one ends the source */
  bool listen_claimed;  /* registered in listen_registry.c until destroy */
} http_source;

/* The request handler h2o calls for every request (registered on "/" in init). */
int sl__http_source_on_req(h2o_handler_t *self, h2o_req_t *req);

/* The worker that owns the h2o context `ctx`. */
static inline http_worker *sl__http_worker_of(h2o_context_t *ctx) {
  return H2O_STRUCT_FROM_MEMBER(http_worker, ctx, ctx);
}

/* Called whenever something a drain waits for went away (a listener, a connection, a
 * pending request): finishes the worker's drain once nothing is left. Loop thread. */
void sl__http_worker_check_drained(http_worker *worker);

/* Frees the pending requests left when the loops stopped before their acks came back
 * (only after a failed drain). After the worker threads have stopped. */
void sl__http_worker_free_pendings(http_worker *worker);

/* listen_registry.c: true when this pipeline's node already listens on `listen` in
 * this process (a hot swap's old version), so the new one shares it without a probe.
 * Every claim is paired with a release. */
bool sl__http_listen_claim(const char *pipeline, const char *node, const char *listen);
void sl__http_listen_release(const char *pipeline, const char *node, const char *listen);

#endif
