/*
 * api_server.c - the daemon's HTTP front door: options, the listening socket, TLS, the
 * loop thread with its connections, and stopping (see api_server_internal.h for the
 * threads; api_server_request.c handles one request, api_server_stream.c streamed bodies).
 *
 * Listening. start() resolves and binds on the calling thread, so "address in use" is
 * start's error, without SO_REUSEPORT: a second daemon on the same port must fail, not
 * share it. Then it builds the h2o context and the libuv handles and starts the loop
 * thread, which only runs the loop, and the handler threads. HTTP/2 is h2c (prior
 * knowledge or `Upgrade: h2c`) in clear, or negotiated by ALPN with TLS.
 *
 * Stopping. stop() asks the loop to stop, takes back the calls no handler started, waits
 * for the running handlers, then tells the loop that no handler is left. The loop, on the
 * stop request: closes the listener, asks h2o to shut down (GOAWAY on HTTP/2, no more
 * keep-alive on HTTP/1), closes idle connections and ends every stream (each feeder hears
 * CLOSED, each on_close runs). Every call that comes back after that is answered 503.
 * Once no handler is left, connections get a short grace to finish their answers; those
 * still open (a client that does not read) are cut with shutdown(2), which makes h2o see
 * an error and close them its normal way. With the last connection gone, the loop
 * disposes of the h2o context and closes its handles; uv_run returns and stop() joins it.
 *
 * Map: the listen address | binding | TLS | connections | the loop | start and stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/listen_addr.h"
#include "daemon/api_server_internal.h"

/* How long a stopping server lets connections finish their last answer. */
#define GRACE_MS 500

unsigned sl__api_server_ping_ms = 15000;

/* --- the listen address ------------------------------------------------------------ */

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 (what "localhost" resolves to). */
static bool is_loopback(const struct sockaddr_storage *addr) {
  if (addr->ss_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
  const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* --- binding ----------------------------------------------------------------------- */

/* A listening socket on `where`; SO_REUSEADDR (restart while old connections linger in
 * TIME_WAIT) but never SO_REUSEPORT. Sets server->address to the bound address. */
static sl_status bind_listener(sl_api_server *server, const sl_listen_addr *where, int *fd_out,
                               sl_error *err) {
  int one = 1;
  int fd = socket(where->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return sl_error_set(err, SL_IO, "cannot listen on %s: socket: %s", where->display,
                        strerror(errno));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (const struct sockaddr *)&where->addr, where->len) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    int saved = errno;
    close(fd);
    if (saved == EADDRINUSE)
      return sl_error_set(err, SL_IO,
                          "cannot listen on %s: address already in use (is another `sluice up` "
                          "running?)",
                          where->display);
    return sl_error_set(err, SL_IO, "cannot listen on %s: %s", where->display, strerror(saved));
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  char host[INET6_ADDRSTRLEN];
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
    int saved = errno;
    close(fd);
    return sl_error_set(err, SL_IO, "cannot listen on %s: getsockname: %s", where->display,
                        strerror(saved));
  }
  if (bound.ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&bound;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    snprintf(server->address, sizeof server->address, "[%s]:%u", host, ntohs(in6->sin6_port));
  } else {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&bound;
    inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
    snprintf(server->address, sizeof server->address, "%s:%u", host, ntohs(in4->sin_port));
  }
  *fd_out = fd;
  return SL_OK;
}

/* --- TLS --------------------------------------------------------------------------- */

/* OpenSSL's first queued error as text, and the queue emptied. */
static const char *tls_error(char *buf, size_t size) {
  unsigned long code = ERR_get_error();
  if (code)
    ERR_error_string_n(code, buf, size);
  else
    snprintf(buf, size, "%s", strerror(errno));
  ERR_clear_error();
  return buf;
}

/* A server context with the certificate chain and key, offering h2 then http/1.1. */
static sl_status load_tls(sl_api_server *server, const char *cert, const char *key, sl_error *err) {
  char why[256];
  sl_status st = SL_OK;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) abort();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    st = sl_error_set(err, SL_CONFIG, "--tls-cert: cannot load a PEM certificate from '%s': %s",
                      cert, tls_error(why, sizeof why));
    goto done;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    st = sl_error_set(err, SL_CONFIG, "--tls-key: cannot load a PEM private key from '%s': %s", key,
                      tls_error(why, sizeof why));
    goto done;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    st = sl_error_set(err, SL_CONFIG,
                      "--tls-key: the key in '%s' does not belong to the certificate in '%s': %s",
                      key, cert, tls_error(why, sizeof why));
    goto done;
  }
  h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols);
  server->ssl_ctx = ctx;
  ctx = NULL;
done:
  SSL_CTX_free(ctx);
  return st;
}

/* --- connections ------------------------------------------------------------------- */

/* h2o closed the socket; the uv handle (our api_conn) is closed. */
static void on_conn_closed(uv_handle_t *handle) {
  api_conn *conn = (api_conn *)handle;
  sl_api_server *server = conn->server;
  h2o_linklist_unlink(&conn->link);
  free(conn);
  sl__api_server_check_drained(server);
}

static void on_unaccepted_closed(uv_handle_t *handle) { free(handle); }

static void on_connection(uv_stream_t *listener, int status) {
  sl_api_server *server = listener->data;
  if (status < 0 || server->stopping) return;
  api_conn *conn = calloc(1, sizeof *conn);
  if (!conn) abort();
  conn->server = server;
  uv_tcp_init(listener->loop, &conn->tcp);
  if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
    uv_close((uv_handle_t *)&conn->tcp, on_unaccepted_closed);
    return;
  }
  uv_tcp_nodelay(&conn->tcp, 1);
  h2o_linklist_insert(&server->conns, &conn->link);
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_closed);
  h2o_accept(&server->accept, sock);
}

/*
 * h2o 2.2 has no call that closes idle connections, but it closes a connection whose
 * timeout expires: HTTP/1 connections waiting for (more of) a request sit on
 * http1.req_timeout, HTTP/2 connections without a stream on http2.idle_timeout. Zero
 * timeouts, run now, close those at once and every other one as soon as it is idle.
 */
static void expire_idle_connections(sl_api_server *server) {
  h2o_context_t *ctx = &server->ctx;
  ctx->http1.req_timeout.timeout = 0;
  ctx->http2.idle_timeout.timeout = 0;
  uint64_t now = h2o_now(ctx->loop);
  h2o_timeout_run(ctx->loop, &ctx->http1.req_timeout, now);
  h2o_timeout_run(ctx->loop, &ctx->http2.idle_timeout, now);
}

/* The grace is over: shutdown(2) makes every connection left fail its next read or its
 * pending write, and h2o closes it (disposing of its requests) the way it always does. */
static void on_grace_over(uv_timer_t *timer) {
  sl_api_server *server = timer->data;
  expire_idle_connections(server);
  for (h2o_linklist_t *node = server->conns.next; node != &server->conns; node = node->next) {
    api_conn *conn = H2O_STRUCT_FROM_MEMBER(api_conn, link, node);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) == 0) shutdown(fd, SHUT_RDWR);
  }
}

/* --- the loop ---------------------------------------------------------------------- */

void sl__api_server_wake_locked(sl_api_server *server) {
  if (!server->wake_closed) uv_async_send(&server->wake);
}

static void on_listener_closed(uv_handle_t *handle) {
  sl_api_server *server = handle->data;
  server->listener_closed = true;
  sl__api_server_check_drained(server);
}

static void begin_stop(sl_api_server *server) {
  server->stopping = true;
  uv_close((uv_handle_t *)&server->listener, on_listener_closed);
  h2o_context_request_shutdown(&server->ctx);
  sl__api_streams_close_all(server);
  expire_idle_connections(server);
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

static void close_handle(uv_handle_t *handle, void *arg) {
  if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

/* Nothing is left but handles: dispose of the context and close them, so uv_run returns. */
static void finish(sl_api_server *server) {
  server->finished = true;
  uv_close((uv_handle_t *)&server->grace, NULL);
  /* h2o's HTTP/2 shutdown re-sends GOAWAY a second later; no connection is left to get it. */
  h2o_timeout_unlink(&server->ctx.http2._graceful_shutdown_timeout);
  bool disposable = ctx_timeouts_idle(&server->ctx);
  if (disposable) h2o_context_dispose(&server->ctx);
  /* Every stream was closed, so no feeder can queue a wake any more; take the last ones. */
  h2o_linklist_t wakes;
  h2o_linklist_init_anchor(&wakes);
  pthread_mutex_lock(&server->inbox_lock);
  server->wake_closed = true;
  h2o_linklist_insert_list(&wakes, &server->inbox_streams);
  pthread_mutex_unlock(&server->inbox_lock);
  sl__api_streams_woken(&wakes);
  uv_close((uv_handle_t *)&server->wake, NULL);
  if (!disposable) {
    /* Closing h2o's handles ourselves lets the loop end; its memory is left behind. */
    fprintf(stderr, "sluice: api server: h2o still has timers after its last connection; "
                    "its context is left undisposed\n");
    uv_walk(&server->loop, close_handle, NULL);
  }
}

void sl__api_server_check_drained(sl_api_server *server) {
  if (!server->stopping || server->finished || !server->handlers_done || server->calls_out) return;
  if (!h2o_linklist_is_empty(&server->conns)) {
    if (!server->grace_started) {
      server->grace_started = true;
      uv_timer_start(&server->grace, on_grace_over, GRACE_MS, 0);
    }
    return;
  }
  if (server->listener_closed) finish(server);
}

static void on_wake(uv_async_t *async) {
  sl_api_server *server = async->data;
  h2o_linklist_t calls, wakes;
  h2o_linklist_init_anchor(&calls);
  h2o_linklist_init_anchor(&wakes);
  pthread_mutex_lock(&server->inbox_lock);
  h2o_linklist_insert_list(&calls, &server->inbox_calls);
  h2o_linklist_insert_list(&wakes, &server->inbox_streams);
  bool stop_requested = server->stop_requested;
  bool handlers_done = server->inbox_handlers_done;
  pthread_mutex_unlock(&server->inbox_lock);

  if (stop_requested && !server->stopping) begin_stop(server);
  while (!h2o_linklist_is_empty(&calls)) {
    sl_api_reply *call = H2O_STRUCT_FROM_MEMBER(sl_api_reply, link, calls.next);
    h2o_linklist_unlink(&call->link);
    server->calls_out--;
    sl__api_call_finish(call);
  }
  sl__api_streams_woken(&wakes);
  /* Read after the calls: the pool posts its last calls before it says it is done. */
  if (handlers_done) server->handlers_done = true;
  sl__api_server_check_drained(server);
}

static void *loop_main(void *arg) {
  sl_api_server *server = arg;
  uv_run(&server->loop, UV_RUN_DEFAULT);
  /* h2o keeps freed socket buffers on a free list per thread, and this thread ends: give
   * them back (the other lists of h2o 2.2 are not reachable; lsan_suppressions.c). */
  h2o_mem_recycle_t *socket_buffers = &h2o_socket_buffer_prototype.allocator;
  while (socket_buffers->cnt) free(h2o_mem_alloc_recycle(socket_buffers, 1));
  return NULL;
}

/* The h2o configuration: one host, one handler on "/" that sees every request. */
static void configure_h2o(sl_api_server *server) {
  h2o_config_init(&server->globalconf);
  server->globalconf_ready = true;
  server->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("sluice"));
  server->globalconf.max_request_entity_size = server->max_body;
  h2o_hostconf_t *host =
      h2o_config_register_host(&server->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *every_path = h2o_config_register_path(host, "/", 0);
  api_handler *handler = (api_handler *)h2o_create_handler(every_path, sizeof *handler);
  handler->super.on_req = sl__api_server_on_req;
  handler->server = server;
}

/* The loop, the h2o context and the handles, on the calling thread before the loop
 * thread exists. Only fails if libuv refuses the socket it just got. */
static sl_status open_loop(sl_api_server *server, int *listen_fd, sl_error *err) {
  uv_loop_init(&server->loop);
  h2o_context_init(&server->ctx, &server->loop, &server->globalconf);
  server->accept.ctx = &server->ctx;
  server->accept.hosts = server->globalconf.hosts;
  server->accept.ssl_ctx = server->ssl_ctx;
  uv_async_init(&server->loop, &server->wake, on_wake);
  server->wake.data = server;
  uv_timer_init(&server->loop, &server->grace);
  server->grace.data = server;
  uv_tcp_init(&server->loop, &server->listener);
  server->listener.data = server;
  int rc = uv_tcp_open(&server->listener, *listen_fd);
  if (rc == 0) {
    *listen_fd = -1;
    rc = uv_listen((uv_stream_t *)&server->listener, SOMAXCONN, on_connection);
  }
  if (rc == 0) return SL_OK;
  /* Undo on this thread: close every handle and let the loop run their callbacks. */
  uv_close((uv_handle_t *)&server->listener, NULL);
  uv_close((uv_handle_t *)&server->wake, NULL);
  uv_close((uv_handle_t *)&server->grace, NULL);
  h2o_context_dispose(&server->ctx);
  uv_run(&server->loop, UV_RUN_DEFAULT);
  uv_loop_close(&server->loop);
  return sl_error_set(err, SL_IO, "cannot listen on %s: %s", server->address, uv_strerror(rc));
}

/* --- start and stop ---------------------------------------------------------------- */

static sl_status check_options(const sl_api_server_options *opts, sl_listen_addr *where,
                               sl_error *err) {
  sl_status st =
      sl__listen_addr_parse(opts->listen ? opts->listen : "", "127.0.0.1:7400", where, err);
  if (st != SL_OK) return st;
  bool has_cert = opts->tls_cert && opts->tls_cert[0];
  bool has_key = opts->tls_key && opts->tls_key[0];
  if (has_cert != has_key)
    return sl_error_set(err, SL_CONFIG,
                        "--tls-cert and --tls-key go together: only %s was given; pass both PEM "
                        "files, or neither to serve plain HTTP on loopback",
                        has_cert ? "--tls-cert" : "--tls-key");
  if (!has_cert && !is_loopback(&where->addr))
    return sl_error_set(err, SL_CONFIG,
                        "listen: '%s' is not a loopback address, and the API is not served "
                        "there without TLS: pass --tls-cert FILE and --tls-key FILE, or listen "
                        "on 127.0.0.1",
                        where->display);
  if (!opts->token || !opts->token[0])
    return sl_error_set(err, SL_CONFIG, "the API needs a token; none was given");
  for (size_t i = 0; i < opts->route_count; i++) {
    const sl_api_route *route = &opts->routes[i];
    const char *pattern = route->pattern ? route->pattern : "";
    unsigned params = 0;
    bool ok = pattern[0] == '/' && route->method && route->method[0] && route->handler;
    for (const char *p = strstr(pattern, "{}"); ok && p; p = strstr(p + 2, "{}")) {
      ok = p[-1] == '/' && (p[2] == '/' || p[2] == '\0');
      params++;
    }
    if (!ok || params > SL_API_MAX_PARAMS || strchr(pattern, '?'))
      return sl_error_set(err, SL_CONFIG,
                          "route %zu (%s %s): needs a method, a handler and a pattern that "
                          "starts with '/' and has at most %d whole-segment {}",
                          i, route->method ? route->method : "", pattern, SL_API_MAX_PARAMS);
  }
  return SL_OK;
}

static char *copy_string(const char *s) {
  char *copy = strdup(s);
  if (!copy) abort();
  return copy;
}

static void free_server(sl_api_server *server) {
  for (size_t i = 0; i < server->route_count; i++) {
    free(server->routes[i].method);
    free(server->routes[i].pattern);
  }
  free(server->routes);
  if (server->token) OPENSSL_cleanse(server->token, server->token_len);
  free(server->token);
  if (server->globalconf_ready) h2o_config_dispose(&server->globalconf);
  SSL_CTX_free(server->ssl_ctx);
  pthread_mutex_destroy(&server->inbox_lock);
  pthread_mutex_destroy(&server->pool_lock);
  pthread_cond_destroy(&server->pool_cond);
  free(server->threads);
  free(server);
}

sl_status sl_api_server_start(const sl_api_server_options *opts, sl_api_server **out,
                              sl_error *err) {
  *out = NULL;
  sl_listen_addr where;
  sl_status st = check_options(opts, &where, err);
  if (st != SL_OK) return st;

  sl_api_server *server = calloc(1, sizeof *server);
  if (!server) abort();
  pthread_mutex_init(&server->inbox_lock, NULL);
  pthread_mutex_init(&server->pool_lock, NULL);
  pthread_cond_init(&server->pool_cond, NULL);
  h2o_linklist_init_anchor(&server->conns);
  h2o_linklist_init_anchor(&server->streams);
  h2o_linklist_init_anchor(&server->inbox_calls);
  h2o_linklist_init_anchor(&server->inbox_streams);
  h2o_linklist_init_anchor(&server->jobs);
  server->token = copy_string(opts->token);
  server->token_len = strlen(opts->token);
  server->user = opts->user;
  server->max_body = opts->max_body ? opts->max_body : (size_t)256 << 20;
  server->thread_count = opts->handler_threads ? opts->handler_threads : 4;
  server->routes = calloc(opts->route_count ? opts->route_count : 1, sizeof *server->routes);
  if (!server->routes) abort();
  for (size_t i = 0; i < opts->route_count; i++) {
    server->routes[i] = (api_route){.method = copy_string(opts->routes[i].method),
                                    .pattern = copy_string(opts->routes[i].pattern),
                                    .public_route = opts->routes[i].public_route,
                                    .handler = opts->routes[i].handler};
    server->route_count++;
  }

  int listen_fd = -1;
  if (opts->tls_cert && opts->tls_cert[0]) {
    st = load_tls(server, opts->tls_cert, opts->tls_key, err);
    if (st != SL_OK) goto fail;
  }
  st = bind_listener(server, &where, &listen_fd, err);
  if (st != SL_OK) goto fail;
  configure_h2o(server);
  st = open_loop(server, &listen_fd, err);
  if (st != SL_OK) goto fail;

  /* Our threads take no signal: the process's handlers run elsewhere, and a write to a
   * departed client fails with EPIPE on the loop thread instead of raising SIGPIPE. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  if (pthread_create(&server->loop_thread, NULL, loop_main, server) != 0) abort();
  sl__api_pool_start(server);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  *out = server;
  return SL_OK;

fail:
  if (listen_fd >= 0) close(listen_fd);
  free_server(server);
  return st;
}

const char *sl_api_server_address(const sl_api_server *server) { return server->address; }

void sl_api_server_stop(sl_api_server *server) {
  if (!server) return;
  pthread_mutex_lock(&server->inbox_lock);
  server->stop_requested = true;
  sl__api_server_wake_locked(server);
  pthread_mutex_unlock(&server->inbox_lock);

  sl__api_pool_stop(server);

  pthread_mutex_lock(&server->inbox_lock);
  server->inbox_handlers_done = true;
  sl__api_server_wake_locked(server);
  pthread_mutex_unlock(&server->inbox_lock);

  pthread_join(server->loop_thread, NULL);
  if (uv_loop_close(&server->loop) != 0)
    fprintf(stderr, "sluice: api server: libuv handles left open after stopping\n");
  free_server(server);
}
