/*
 * http_source.c - `type: http` without inputs: an HTTP/1.1 and HTTP/2 endpoint (h2o on
 * every worker loop). POST/PUT body = one event (or one per line with `split: lines`);
 * GET = the query parameters as one JSON object. Answers 2xx only after delivery
 * (http_source_request.c handles one request; this file owns sockets and life cycle).
 *
 * Listening. start() binds one socket per worker on the same address with SO_REUSEPORT,
 * on the calling thread, so "address in use" is reported as start's error; then it posts
 * each fd to its worker, which opens it on its loop next to an h2o context of its own.
 * The kernel spreads connections over the workers. HTTP/2 is cleartext (h2c): with prior
 * knowledge, or by `Upgrade: h2c`.
 *
 * Stopping. stop() posts a drain to every worker: close the listener, ask h2o to shut
 * down (GOAWAY on HTTP/2, no more keep-alive on HTTP/1), close idle connections, answer
 * new requests 503. A worker has drained once its listener, its connections and its
 * requests waiting for an ack are all gone; it then disposes of its h2o context on its
 * loop (h2o closes libuv handles there), and the last worker to drain ends the source.
 * Every h2o handle is closed by h2o itself before the runtime's workers stop, so their
 * final sweep of the loops finds only closed handles.
 *
 * Map: settings | parsing `listen` | binding | a worker's loop (attach, connections,
 * drain) | connector callbacks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/http/http_source_internal.h"

static const char *const split_choices[] = {"none", "lines", NULL};

/* --- binding ---------------------------------------------------------------------- */

/* A bound socket on src->addr; with `share`, SO_REUSEPORT and listening. */
static sl_status bind_socket(http_source *src, bool share, int *fd_out, sl_error *err) {
  int one = 1;
  int fd = socket(src->where.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return sl_error_set(err, SL_IO, "cannot listen on %s: socket: %s", src->where.display,
                        strerror(errno));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (share && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      bind(fd, (const struct sockaddr *)&src->where.addr, src->where.len) != 0 ||
      (share && listen(fd, SOMAXCONN) != 0)) {
    int saved = errno;
    close(fd);
    return sl_error_set(err, SL_IO, "cannot listen on %s: %s", src->where.display, strerror(saved));
  }
  *fd_out = fd;
  return SL_OK;
}

/*
 * One listening socket per worker. A probe bound without SO_REUSEPORT comes first:
 * SO_REUSEPORT alone would let a second `sluice run` on the same port share it silently,
 * where the user wants to hear "Address already in use". Port 0 becomes the probe's port.
 */
static sl_status bind_all(http_source *src, sl_error *err) {
  src->listen_claimed = true;
  /* A hot swap: our own previous version listens here, so share without a probe. */
  bool ours = sl__http_listen_claim(src->node->pipeline, src->node->id, src->config->listen);
  if (!ours) {
    int probe;
    sl_status st = bind_socket(src, false, &probe, err);
    if (st != SL_OK) return st;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    if (getsockname(probe, (struct sockaddr *)&bound, &bound_len) == 0)
      sl__listen_addr_set_port(&src->where, ntohs(bound.ss_family == AF_INET6
                                                      ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port));
    close(probe);
  }
  sl_status st = SL_OK;
  for (unsigned w = 0; w < src->worker_count && st == SL_OK; w++)
    st = bind_socket(src, true, &src->workers[w].listen_fd, err);
  return st;
}

/* --- a worker's loop: attach, connections, drain ----------------------------------- */

static void on_listener_closed(uv_handle_t *handle) {
  http_worker *worker = handle->data;
  worker->listener_closed = true;
  sl__http_worker_check_drained(worker);
}

static void close_listener(http_worker *worker) {
  if (!worker->listening) return;
  worker->listening = false;
  uv_close((uv_handle_t *)&worker->listener, on_listener_closed);
}

/* h2o freed its socket; the uv handle (our http_conn) is closed. */
static void on_conn_closed(uv_handle_t *handle) {
  http_conn *conn = (http_conn *)handle;
  http_worker *worker = conn->worker;
  h2o_linklist_unlink(&conn->link);
  free(conn);
  sl__http_worker_check_drained(worker);
}

static void on_unaccepted_closed(uv_handle_t *handle) { free(handle); }

static void on_connection(uv_stream_t *listener, int status) {
  http_worker *worker = listener->data;
  if (status < 0) {
    sl_node_log(worker->src->node, SL_LOG_WARN, "accept on %s: %s", worker->src->where.display,
                uv_strerror(status));
    return;
  }
  http_conn *conn = calloc(1, sizeof *conn);
  if (!conn) abort();
  conn->worker = worker;
  uv_tcp_init(listener->loop, &conn->tcp);
  if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
    uv_close((uv_handle_t *)&conn->tcp, on_unaccepted_closed);
    return;
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  h2o_linklist_insert(&worker->conns, &conn->link);
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_closed);
  h2o_accept(&worker->accept, sock);
}

/* Posted by start(): the context and the listener, on the worker's own loop. */
static void on_attach(void *arg) {
  http_worker *worker = arg;
  http_source *src = worker->src;
  uv_loop_t *loop = sl_source_worker_loop(src->port, worker->index);
  h2o_context_init(&worker->ctx, loop, &src->globalconf);
  worker->accept.ctx = &worker->ctx;
  worker->accept.hosts = src->globalconf.hosts;
  worker->ctx_ready = true;

  uv_tcp_init(loop, &worker->listener);
  worker->listener.data = worker;
  worker->listening = true;
  int rc = uv_tcp_open(&worker->listener, worker->listen_fd);
  if (rc == 0) {
    worker->listen_fd = -1;
    rc = uv_listen((uv_stream_t *)&worker->listener, SOMAXCONN, on_connection);
  }
  if (rc != 0) {
    sl_node_log(src->node, SL_LOG_ERROR, "worker %u cannot serve %s: %s", worker->index,
                src->where.display, uv_strerror(rc));
    close_listener(worker);
  }
}

/*
 * h2o 2.2 has no call that closes idle connections, but it closes a connection whose
 * timeout expires: HTTP/1 connections waiting for (more of) a request sit on
 * ctx.http1.req_timeout, HTTP/2 connections with no request in hand on
 * ctx.http2.idle_timeout. Making both timeouts zero and running them closes those now,
 * and every other one as soon as it becomes idle, i.e. right after it answered its last
 * request. A request waiting for its ack keeps its connection on neither list.
 */
static void expire_idle_connections(http_worker *worker) {
  h2o_context_t *ctx = &worker->ctx;
  ctx->http1.req_timeout.timeout = 0;
  ctx->http2.idle_timeout.timeout = 0;
  uint64_t now = h2o_now(ctx->loop);
  h2o_timeout_run(ctx->loop, &ctx->http1.req_timeout, now);
  h2o_timeout_run(ctx->loop, &ctx->http2.idle_timeout, now);
}

/* Posted by stop(). */
static void on_drain(void *arg) {
  http_worker *worker = arg;
  if (worker->draining) return;
  worker->draining = true;
  close_listener(worker);
  if (worker->ctx_ready) {
    h2o_context_request_shutdown(&worker->ctx);
    expire_idle_connections(worker);
  }
  sl__http_worker_check_drained(worker);
}

/* h2o_context_dispose asserts that no timeout has entries left; with every connection
 * closed none should, but a leak is better than an abort if h2o thinks otherwise. */
static bool ctx_timeouts_idle(h2o_context_t *ctx) {
  h2o_timeout_t *timeouts[] = {&ctx->zero_timeout,
                               &ctx->one_sec_timeout,
                               &ctx->hundred_ms_timeout,
                               &ctx->handshake_timeout,
                               &ctx->http1.req_timeout,
                               &ctx->http2.idle_timeout,
                               &ctx->http2.graceful_shutdown_timeout,
                               &ctx->proxy.io_timeout};
  for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++)
    if (!h2o_linklist_is_empty(&timeouts[i]->_entries)) return false;
  return true;
}

void sl__http_worker_check_drained(http_worker *worker) {
  if (!worker->draining || worker->finished || !worker->listener_closed ||
      !h2o_linklist_is_empty(&worker->conns) || worker->pending_count)
    return;
  worker->finished = true;
  http_source *src = worker->src;
  if (worker->ctx_ready) {
    /* h2o's HTTP/2 shutdown re-sends GOAWAY a second later; no connection is left to get it. */
    h2o_timeout_unlink(&worker->ctx.http2._graceful_shutdown_timeout);
    if (ctx_timeouts_idle(&worker->ctx)) {
      h2o_context_dispose(&worker->ctx);
    } else {
      sl_node_log(src->node, SL_LOG_WARN,
                  "worker %u: h2o still has timers after its last connection; "
                  "its context is left undisposed",
                  worker->index);
    }
    worker->ctx_ready = false;
  }
  if (atomic_fetch_add(&src->drained, 1) + 1 == src->worker_count) sl_source_end(src->port);
}

/* --- connector callbacks --------------------------------------------------------- */

static void post_drains(http_source *src) {
  for (unsigned w = 0; w < src->worker_count; w++)
    sl_source_post(src->port, w, on_drain, &src->workers[w]);
}

static sl_status init(const sl_node_ctx *node, const void *config, void **state, sl_error *err) {
  const http_source_config *cfg = config;
  if (!cfg->path || cfg->path[0] != '/')
    return sl_error_set(err, SL_CONFIG, "path: must start with '/', e.g. \"/events\", not '%s'",
                        cfg->path ? cfg->path : "");
  http_source *src = calloc(1, sizeof *src);
  if (!src) return sl_error_set(err, SL_NOMEM, "out of memory");
  src->node = node;
  src->config = cfg;
  src->split_lines = cfg->split && strcmp(cfg->split, "lines") == 0;
  sl_status st =
      sl__listen_addr_parse(cfg->listen ? cfg->listen : "", "127.0.0.1:9000", &src->where, err);
  if (st != SL_OK) {
    free(src);
    return st;
  }
  h2o_config_init(&src->globalconf);
  src->globalconf_ready = true;
  src->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("sluice"));
  src->globalconf.max_request_entity_size = (size_t)cfg->max_body;
  h2o_hostconf_t *host =
      h2o_config_register_host(&src->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *every_path = h2o_config_register_path(host, "/", 0);
  h2o_handler_t *handler = h2o_create_handler(every_path, sizeof *handler);
  handler->on_req = sl__http_source_on_req;
  atomic_init(&src->serving, false);
  atomic_init(&src->stopping, false);
  atomic_init(&src->drained, 0);
  *state = src;
  return SL_OK;
}

static sl_status start(void *state, sl_source_port *port, sl_error *err) {
  http_source *src = state;
  src->worker_count = sl_source_worker_count(port);
  src->workers = calloc(src->worker_count, sizeof *src->workers);
  if (!src->workers) abort();
  for (unsigned w = 0; w < src->worker_count; w++) {
    http_worker *worker = &src->workers[w];
    worker->src = src;
    worker->index = w;
    worker->listen_fd = -1;
    h2o_linklist_init_anchor(&worker->conns);
    h2o_linklist_init_anchor(&worker->pendings);
  }
  sl_status st = bind_all(src, err);
  if (st != SL_OK) {
    for (unsigned w = 0; w < src->worker_count; w++)
      if (src->workers[w].listen_fd >= 0) close(src->workers[w].listen_fd);
    free(src->workers);
    src->workers = NULL;
    src->worker_count = 0;
    return st;
  }
  src->port = port;
  for (unsigned w = 0; w < src->worker_count; w++)
    sl_source_post(port, w, on_attach, &src->workers[w]);
  sl_node_log(src->node, SL_LOG_INFO, "listening on http://%s%s (%u workers)", src->where.display,
              src->config->path, src->worker_count);
  atomic_store(&src->serving, true);
  if (atomic_load(&src->stopping)) post_drains(src); /* stop() came while we started */
  return SL_OK;
}

/* A signal can call stop() while start() still runs: whichever of the two sees the
 * other's flag posts the drains (on_drain runs once per worker even if posted twice). */
static void stop(void *state) {
  http_source *src = state;
  if (atomic_exchange(&src->stopping, true)) return;
  if (atomic_load(&src->serving)) post_drains(src);
}

static void destroy(void *state) {
  http_source *src = state;
  if (src->listen_claimed)
    sl__http_listen_release(src->node->pipeline, src->node->id, src->config->listen);
  for (unsigned w = 0; w < src->worker_count; w++) {
    http_worker *worker = &src->workers[w];
    if (worker->listen_fd >= 0) close(worker->listen_fd);
    /* Not drained (the pipeline gave up waiting): the loop is gone and its final sweep
     * closed h2o's handles, so the context cannot be disposed of any more; it is left. */
    sl__http_worker_free_pendings(worker);
  }
  free(src->workers);
  if (src->globalconf_ready) h2o_config_dispose(&src->globalconf);
  free(src);
}

static const sl_conf_field fields[] = {
    {"listen", SL_CONF_STRING, SL_CONF_REQUIRED, NULL, offsetof(http_source_config, listen),
     "HOST:PORT to listen on; \":9000\" listens on every address, \"[::1]:9000\" on an IPv6 one.",
     NULL},
    {"path", SL_CONF_STRING, 0, "/", offsetof(http_source_config, path),
     "The request path that accepts events (exact match); other paths answer 404.", NULL},
    {"split", SL_CONF_ENUM, 0, "none", offsetof(http_source_config, split),
     "none: a body is one event; lines: one event per non-empty line of the body.", split_choices},
    {"max_body", SL_CONF_SIZE, 0, "10MiB", offsetof(http_source_config, max_body),
     "Larger bodies are refused with 413.", NULL},
    {"retry_after", SL_CONF_DURATION, 0, "1s", offsetof(http_source_config, retry_after),
     "The Retry-After (whole seconds, at least 1) a 503 carries when the pipeline is full.", NULL},
    {NULL},
};

const sl_connector sl_http_source = {
    .version = SL_CONNECTOR_VERSION,
    .name = "http",
    .kind = SL_NODE_SOURCE,
    .summary = "HTTP/1.1 and HTTP/2 endpoint: a POST body is an event; 2xx after delivery.",
    .fields = fields,
    .config_size = sizeof(http_source_config),
    .init = init,
    .start = start,
    .stop = stop,
    .destroy = destroy,
    .shareable = true,
};
