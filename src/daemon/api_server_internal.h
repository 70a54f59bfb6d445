/*
 * api_server_internal.h - the parts of the API server shared by its three files:
 *
 *   api_server.c          options, listening, TLS, the loop thread, connections, stopping
 *   api_server_request.c  one request: auth, routing, the copy, the handler pool, answers
 *   api_server_stream.c   streamed bodies (SSE): the buffer, the generator, closing
 *
 * Threads. h2o and libuv objects (the context, the listener, connections, requests,
 * generators, timers) are touched only on the loop thread. Other threads talk to the
 * loop through the inbox: a list of finished calls and a list of streams with something
 * to send, under `inbox_lock`, followed by uv_async_send on `wake`. Handler threads take
 * calls from `jobs` under `pool_lock`. A stream's shared fields are under its own lock;
 * the only nesting is stream lock, then inbox lock (a feeder waking the loop).
 *
 * Lifetimes. A call (struct sl_api_reply) holds two references, both counted on the loop
 * thread: the request's (dropped when h2o disposes of the request: answered, or the
 * client left) and the job's (dropped when the loop has handled the finished call). A
 * stream holds the feeder's reference (sl_api_stream_end), the server's (dropped once h2o
 * is done with the body and the keep-alive timer is closed) and one per pending wake.
 */
#ifndef SL_DAEMON_API_SERVER_INTERNAL_H
#define SL_DAEMON_API_SERVER_INTERNAL_H

#include <h2o.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "daemon/api_server.h"

/* What a stream buffers for a client that reads slowly before sends are dropped. */
#define SL_API_STREAM_BUFFER ((size_t)1 << 20)

/* Milliseconds between ": ping" comments on text/event-stream bodies (15 s); the tests
 * shorten it to see a ping without waiting. Read when a stream opens. */
extern unsigned sl__api_server_ping_ms;

/* A route as the server keeps it: the caller's table copied. */
typedef struct api_route {
  char *method;
  char *pattern;
  bool public_route;
  sl_api_handler handler;
} api_route;

/* The h2o handler registered on "/": every request comes through it. */
typedef struct api_handler {
  h2o_handler_t super;
  sl_api_server *server;
} api_handler;

/* An accepted connection: the uv handle h2o's socket wraps, freed in its close callback. */
typedef struct api_conn {
  uv_tcp_t tcp; /* first: the close callback gets this pointer */
  sl_api_server *server;
  h2o_linklist_t link; /* in server->conns */
} api_conn;

typedef struct api_header {
  char *name; /* lower case */
  char *value;
} api_header;

/* One request from h2o's handler call to the answer (the public sl_api_reply). */
struct sl_api_reply {
  sl_api_server *server;
  const api_route *route;
  h2o_req_t *req;         /* loop thread: NULL once h2o disposed of the request */
  unsigned refs;          /* loop thread: the request's and the job's */
  bool discarded;         /* the handler never ran (the server stopped first) */
  sl_api_request request; /* copied out of h2o; its strings and body live in `copy` */
  char *copy;
  /* The answer: written by the handler thread, read by the loop after the handoff. */
  bool answered;
  int status;
  char *content_type;
  char *body;
  size_t body_len;
  api_header *headers;
  size_t header_count;
  sl_api_stream *stream; /* the server's reference when answered with a stream */
  h2o_linklist_t link;   /* in server->jobs, then in server->inbox_calls */
};

struct sl_api_server {
  /* Set by start, read-only afterwards. */
  char *token;
  size_t token_len;
  api_route *routes;
  size_t route_count;
  void *user;
  size_t max_body;
  char address[128]; /* "127.0.0.1:7400", "[::1]:7400" */
  SSL_CTX *ssl_ctx;  /* NULL without TLS */
  h2o_globalconf_t globalconf;
  bool globalconf_ready;

  /* The loop thread's. */
  pthread_t loop_thread;
  uv_loop_t loop;
  uv_async_t wake;   /* the inbox has something */
  uv_timer_t grace;  /* while stopping: connections left after it fires are cut */
  uv_tcp_t listener; /* closed when stopping */
  h2o_context_t ctx;
  h2o_accept_ctx_t accept;
  h2o_linklist_t conns;   /* api_conn */
  h2o_linklist_t streams; /* sl_api_stream attached to a request */
  size_t calls_out;       /* calls handed to the pool and not handled back yet */
  bool stopping;          /* stop began: the listener closes, new requests get 503 */
  bool listener_closed;
  bool handlers_done; /* seen in the inbox: no handler runs any more */
  bool grace_started;
  bool finished; /* the context is disposed of and the last handles are closing */

  /* The inbox, under inbox_lock. */
  pthread_mutex_t inbox_lock;
  h2o_linklist_t inbox_calls;   /* finished (or discarded) calls */
  h2o_linklist_t inbox_streams; /* streams to flush, one reference each */
  bool stop_requested;
  bool inbox_handlers_done;
  bool wake_closed; /* uv_async_send is no longer allowed */

  /* The handler pool, under pool_lock. */
  pthread_mutex_t pool_lock;
  pthread_cond_t pool_cond;
  h2o_linklist_t jobs;
  bool pool_stopping;
  pthread_t *threads;
  unsigned thread_count;
};

/* --- api_server.c ------------------------------------------------------------------ */

/* Wakes the loop; the caller holds inbox_lock. */
void sl__api_server_wake_locked(sl_api_server *server);

/* Called on the loop whenever something a stop waits for went away. */
void sl__api_server_check_drained(sl_api_server *server);

/* --- api_server_request.c ---------------------------------------------------------- */

/* h2o's handler callback for every request. Loop thread. */
int sl__api_server_on_req(h2o_handler_t *self, h2o_req_t *req);

/* Starts the handler threads (with the caller's signal mask). */
void sl__api_pool_start(sl_api_server *server);

/* Runs no new handler, hands the queued calls back as discarded, waits for the running
 * ones. Not on the loop thread. */
void sl__api_pool_stop(sl_api_server *server);

/* Handles a call that came back from the pool: the answer, a 503 when stopping, or
 * nothing when the client left. Drops the job's reference. Loop thread. */
void sl__api_call_finish(sl_api_reply *call);

/* Records the status and content type of the answer; false when the handler already
 * answered (a second answer is a handler bug and is ignored). Handler thread. */
bool sl__api_reply_begin(sl_api_reply *reply, int status, const char *content_type);

/* --- api_server_stream.c ----------------------------------------------------------- */

/* Starts the body on `req`, or closes the stream when `req` is NULL (the client left) or
 * the server stops. Takes over the server's reference. Loop thread. */
void sl__api_stream_attach(sl_api_server *server, sl_api_stream *stream, h2o_req_t *req);

/* The server stops: every attached stream's feeder hears CLOSED, its on_close runs and
 * its body ends. Loop thread. */
void sl__api_streams_close_all(sl_api_server *server);

/* Handles the streams taken out of the inbox (`wakes`, emptied): sends what they buffer
 * and drops each wake's reference. Loop thread. */
void sl__api_streams_woken(h2o_linklist_t *wakes);

#endif
