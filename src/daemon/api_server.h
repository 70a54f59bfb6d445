/*
 * api_server.h - the daemon's HTTP front door: h2o on a loop thread of its own.
 *
 * What it does, so route handlers do not have to:
 *   - listens (HTTP/1.1 and h2c; TLS with h2 when a certificate is given), and refuses a
 *     non-loopback address without TLS;
 *   - checks `Authorization: Bearer TOKEN` (constant time) on every route not marked
 *     public, answering 401 before any handler runs, also for unknown paths;
 *   - matches the route table ("/v1/pipelines/{}" binds one segment), answering 404 and
 *     405 (with Allow) itself;
 *   - buffers the whole request body (up to max_body, else 413);
 *   - runs handlers on a pool of its own threads, never on the loop, so a handler may
 *     block (a deploy compiles for seconds) while /healthz and streams keep going.
 *
 * Ownership: the server owns requests and replies. A handler answers exactly once, with
 * sl_api_reply_json / _error / _bytes, or by opening a stream. A stream is shared between
 * the server and whoever feeds it: the feeder's reference ends with sl_api_stream_end.
 */
#ifndef SL_DAEMON_API_SERVER_H
#define SL_DAEMON_API_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

typedef struct sl_api_server sl_api_server;
typedef struct sl_api_reply sl_api_reply;
typedef struct sl_api_stream sl_api_stream;

#define SL_API_MAX_PARAMS 4

/* Valid until the handler returns. Strings are NUL-terminated, "" when absent. */
typedef struct sl_api_request {
  const char *method;       /* "GET", "PUT", ... */
  const char *path;         /* without the query, as sent */
  const char *query;        /* raw, without '?' */
  const char *content_type; /* the Content-Type header */
  const char *accept;       /* the Accept header */
  const char *params[SL_API_MAX_PARAMS]; /* the pattern's {} segments, percent-decoded */
  const uint8_t *body;
  size_t body_len;
} sl_api_request;

/* Runs on a handler thread. */
typedef void (*sl_api_handler)(void *user, const sl_api_request *req, sl_api_reply *reply);

typedef struct sl_api_route {
  const char *method;  /* "GET" ... */
  const char *pattern; /* "/v1/pipelines/{}/nodes/{}/tap" */
  bool public_route;   /* no token needed (liveness only) */
  sl_api_handler handler;
} sl_api_route;

typedef struct sl_api_server_options {
  const char *listen;   /* "HOST:PORT", "[::1]:PORT"; port 0 picks a free one */
  const char *tls_cert; /* PEM files; both or neither */
  const char *tls_key;
  const char *token; /* required; compared in constant time */
  const sl_api_route *routes;
  size_t route_count;
  void *user;               /* handed to every handler */
  unsigned handler_threads; /* 0: 4 */
  size_t max_body;          /* 0: 256 MiB */
} sl_api_server_options;

/*
 * Binds and starts serving. Statuses: SL_OK; SL_CONFIG (malformed listen address, a
 * non-loopback address without TLS, one TLS file without the other, unreadable
 * certificate); SL_IO (the address is in use or cannot be bound: `err` says which
 * address and why). Nothing is left running on failure.
 */
sl_status sl_api_server_start(const sl_api_server_options *opts, sl_api_server **out,
                              sl_error *err);
/* "127.0.0.1:7400": the bound address (the real port when 0 was asked). */
const char *sl_api_server_address(const sl_api_server *server);
/* Stops listening, ends every open stream, waits for running handlers, frees. */
void sl_api_server_stop(sl_api_server *server);

/* --- answering ------------------------------------------------------------------- */

/* Takes ownership of `body`. */
void sl_api_reply_json(sl_api_reply *reply, int status, json_t *body);
/* {"error": "<message>"}; printf-style. */
void sl_api_reply_error(sl_api_reply *reply, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies `data`. */
void sl_api_reply_bytes(sl_api_reply *reply, int status, const char *content_type,
                        const void *data, size_t len);
/* Adds a response header to the answer not yet given (e.g. Retry-After). Copies both. */
void sl_api_reply_header(sl_api_reply *reply, const char *name, const char *value);

/* --- streams (Server-Sent Events, chunked bodies) --------------------------------- */

/*
 * Answers 200 with `content_type` and leaves the body open. The caller holds one
 * reference and must call sl_api_stream_end exactly once. The server sends a comment
 * line every 15 s on text/event-stream streams so a departed client is noticed.
 */
sl_api_stream *sl_api_reply_stream(sl_api_reply *reply, const char *content_type);

typedef enum sl_stream_send {
  SL_STREAM_SENT,    /* queued for the client */
  SL_STREAM_DROPPED, /* the client reads too slowly: the buffer (1 MiB) is full, dropped */
  SL_STREAM_CLOSED,  /* the client left or the server stops: stop feeding */
} sl_stream_send;

/* Any thread; never blocks. Copies `data`. */
sl_stream_send sl_api_stream_send(sl_api_stream *stream, const void *data, size_t len);
/* "data: <compact json>\n\n"; takes ownership of `event`. */
sl_stream_send sl_api_stream_send_event(sl_api_stream *stream, json_t *event);
/*
 * Calls `fn(user)` once, on the server's loop thread, when the client leaves or the
 * server stops (at once if that already happened). Set it before feeding.
 */
void sl_api_stream_on_close(sl_api_stream *stream, void (*fn)(void *user), void *user);
/* Finishes the body (if the client is still there) and drops the caller's reference. */
void sl_api_stream_end(sl_api_stream *stream);

#endif
