/*
 * api_server_stream.c - bodies that stay open: Server-Sent Events and other streams fed
 * from any thread while the loop sends them (see api_server_internal.h for the threads).
 *
 * A feeder appends to `pending` (at most SL_API_STREAM_BUFFER bytes) under the stream's
 * lock and queues a wake for the loop; it never waits. The loop moves `pending` into
 * `inflight` and hands that to h2o_send; h2o calls `on_proceed` when it may send again,
 * so one send is in flight at a time. Both buffers belong to the stream, which outlives
 * the request: h2o may use `inflight` until it proceeds or disposes of the request.
 *
 * Closing. The request's pool holds a slot that tells the stream when h2o disposes of the
 * request: the client left, or the body ended. Then the stream is closed: feeders hear
 * SL_STREAM_CLOSED, and on_close runs once, on the loop, unless the feeder already ended
 * the stream. A stopping server closes every attached stream the same way and ends its
 * body. sl_api_stream_end waits for an on_close running on another thread, so once it
 * returns the feeder may free what on_close uses. The stream is freed when the feeder
 * (sl_api_stream_end), the server side (h2o done, keep-alive timer closed) and every
 * queued wake have let go of it.
 *
 * Map: references | sending on the loop | the server side | the feeder's calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/api_server_internal.h"

static const char ping_comment[] = ": ping\n\n";

struct sl_api_stream {
  pthread_mutex_t lock;
  /* Under `lock`. */
  unsigned refs;
  char *pending; /* what feeders sent and the loop has not taken yet */
  size_t pending_len, pending_cap;
  bool closed;         /* the client left or the server stops: feeders hear CLOSED */
  bool ended;          /* sl_api_stream_end was called */
  bool can_wake;       /* the server may be woken for this stream (not closed yet) */
  bool wake_queued;    /* in server->inbox_streams, holding a reference */
  bool close_notified; /* on_close ran, or runs now */
  bool in_on_close;    /* on_close runs now, on `on_close_thread` */
  pthread_t on_close_thread;
  pthread_cond_t on_close_done; /* signalled when in_on_close becomes false */
  void (*on_close)(void *user);
  void *on_close_user;
  h2o_linklist_t wake_link; /* under the server's inbox_lock while wake_queued */

  /* Set when created, then read-only. */
  sl_api_server *server; /* NULL for a stream a handler opened after answering */
  char *content_type;
  bool sse;

  /* Loop thread only. */
  h2o_generator_t generator;
  h2o_req_t *req; /* while h2o has the body */
  char *inflight; /* handed to h2o_send */
  size_t inflight_len, inflight_cap;
  bool sending;     /* an h2o_send waits for on_proceed */
  bool started;     /* the headers went out */
  bool final_sent;  /* the body is finished */
  bool loop_closed; /* close_on_loop ran */
  bool has_timer;   /* `ping` is initialized and holds the server's reference */
  uv_timer_t ping;
  h2o_linklist_t link; /* in server->streams while attached */
};

/* --- references -------------------------------------------------------------------- */

static void stream_destroy(sl_api_stream *stream) {
  pthread_mutex_destroy(&stream->lock);
  pthread_cond_destroy(&stream->on_close_done);
  free(stream->pending);
  free(stream->inflight);
  free(stream->content_type);
  free(stream);
}

static void stream_release(sl_api_stream *stream) {
  pthread_mutex_lock(&stream->lock);
  bool last = --stream->refs == 0;
  pthread_mutex_unlock(&stream->lock);
  if (last) stream_destroy(stream);
}

/* Asks the loop to look at the stream; the caller holds the stream's lock. */
static void queue_wake_locked(sl_api_stream *stream) {
  if (!stream->can_wake || stream->wake_queued) return;
  stream->wake_queued = true;
  stream->refs++;
  sl_api_server *server = stream->server;
  pthread_mutex_lock(&server->inbox_lock);
  h2o_linklist_insert(&server->inbox_streams, &stream->wake_link);
  sl__api_server_wake_locked(server);
  pthread_mutex_unlock(&server->inbox_lock);
}

/* Appends to `pending`, which the caller checked has room (SL_API_STREAM_BUFFER). */
static void append_locked(sl_api_stream *stream, const void *data, size_t len) {
  size_t need = stream->pending_len + len;
  if (need > stream->pending_cap) {
    size_t cap = stream->pending_cap ? stream->pending_cap : 4096;
    while (cap < need) cap *= 2;
    if (cap > SL_API_STREAM_BUFFER) cap = SL_API_STREAM_BUFFER;
    char *grown = realloc(stream->pending, cap);
    if (!grown) abort();
    stream->pending = grown;
    stream->pending_cap = cap;
  }
  memcpy(stream->pending + stream->pending_len, data, len);
  stream->pending_len += len;
}

/* --- sending on the loop ----------------------------------------------------------- */

/*
 * Sends what is pending when h2o is not busy: the headers first (even without bytes, so
 * the client sees the answer at once), then the buffered bytes, and finally the end of
 * the body once the feeder ended or the server stops. The stream may be freed inside
 * h2o_send (h2o disposing of the request drops the server's reference), so a reference
 * is held across it; callers must not touch the stream afterwards unless they hold one.
 */
static void flush(sl_api_stream *stream) {
  if (!stream->req || stream->sending || stream->final_sent) return;
  pthread_mutex_lock(&stream->lock);
  if (stream->pending_len) {
    char *buffer = stream->inflight;
    size_t cap = stream->inflight_cap;
    stream->inflight = stream->pending;
    stream->inflight_cap = stream->pending_cap;
    stream->inflight_len = stream->pending_len;
    stream->pending = buffer;
    stream->pending_cap = cap;
    stream->pending_len = 0;
  } else {
    stream->inflight_len = 0;
  }
  bool final = stream->ended || stream->closed;
  stream->refs++;
  pthread_mutex_unlock(&stream->lock);

  if (stream->inflight_len || final || !stream->started) {
    stream->started = true;
    h2o_iovec_t buf = h2o_iovec_init(stream->inflight, stream->inflight_len);
    if (final) {
      stream->final_sent = true;
      if (stream->has_timer) uv_timer_stop(&stream->ping);
    } else {
      stream->sending = true;
    }
    h2o_send(stream->req, &buf, buf.len ? 1 : 0,
             final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
  }
  stream_release(stream);
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req) {
  sl_api_stream *stream = H2O_STRUCT_FROM_MEMBER(sl_api_stream, generator, generator);
  stream->sending = false;
  flush(stream);
}

/* h2o stops the body abruptly (the client left); the pool slot below does the work. */
static void on_stop(h2o_generator_t *generator, h2o_req_t *req) {}

static void on_ping(uv_timer_t *timer) {
  sl_api_stream *stream = timer->data;
  /* Only on an idle body: bytes waiting or in flight already test the connection. */
  if (stream->sending) return;
  pthread_mutex_lock(&stream->lock);
  if (!stream->closed && stream->pending_len == 0)
    append_locked(stream, ping_comment, sizeof ping_comment - 1);
  pthread_mutex_unlock(&stream->lock);
  flush(stream);
}

/* --- the server side --------------------------------------------------------------- */

/* An on_close call taken under the lock, made after it. */
typedef struct close_call {
  void (*fn)(void *user); /* NULL: nothing to call */
  void *user;
} close_call;

/*
 * Takes the on_close call if it is due (set, not run yet, the feeder has not ended the
 * stream): marks it running on this thread and holds a reference for it, since on_close
 * may end the stream. The caller holds the lock and calls run_on_close after unlocking.
 */
static close_call take_on_close_locked(sl_api_stream *stream) {
  if (!stream->on_close || stream->ended || stream->close_notified) return (close_call){0};
  stream->close_notified = true;
  stream->in_on_close = true;
  stream->on_close_thread = pthread_self();
  stream->refs++;
  return (close_call){stream->on_close, stream->on_close_user};
}

static void run_on_close(sl_api_stream *stream, close_call call) {
  if (!call.fn) return;
  call.fn(call.user);
  pthread_mutex_lock(&stream->lock);
  stream->in_on_close = false;
  pthread_cond_broadcast(&stream->on_close_done);
  pthread_mutex_unlock(&stream->lock);
  stream_release(stream);
}

/* Feeders hear CLOSED from now on; on_close runs unless the feeder ended the stream. */
static void close_on_loop(sl_api_stream *stream) {
  if (stream->loop_closed) return;
  stream->loop_closed = true;
  pthread_mutex_lock(&stream->lock);
  stream->closed = true;
  stream->can_wake = false;
  close_call call = take_on_close_locked(stream);
  pthread_mutex_unlock(&stream->lock);
  run_on_close(stream, call);
}

static void on_ping_closed(uv_handle_t *handle) { stream_release(handle->data); }

/* h2o disposes of the request: the client left, or the body is complete. */
static void on_req_disposed(void *slot) {
  sl_api_stream *stream = *(sl_api_stream **)slot;
  stream->req = NULL;
  h2o_linklist_unlink(&stream->link);
  close_on_loop(stream);
  if (stream->has_timer)
    uv_close((uv_handle_t *)&stream->ping, on_ping_closed);
  else
    stream_release(stream);
}

void sl__api_stream_attach(sl_api_server *server, sl_api_stream *stream, h2o_req_t *req) {
  if (!req || server->stopping) {
    close_on_loop(stream);
    stream_release(stream);
    return;
  }
  stream->req = req;
  req->res.status = 200;
  req->res.reason = "OK";
  h2o_iovec_t type = h2o_strdup(&req->pool, stream->content_type, strlen(stream->content_type));
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type.base, type.len);
  if (stream->sse)
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
  sl_api_stream **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_req_disposed);
  *slot = stream;
  stream->generator = (h2o_generator_t){on_proceed, on_stop};
  h2o_start_response(req, &stream->generator);
  h2o_linklist_insert(&server->streams, &stream->link);
  if (stream->sse) {
    uv_timer_init(&server->loop, &stream->ping);
    stream->ping.data = stream;
    stream->has_timer = true;
    uv_timer_start(&stream->ping, on_ping, sl__api_server_ping_ms, sl__api_server_ping_ms);
  }
  flush(stream);
}

void sl__api_streams_close_all(sl_api_server *server) {
  /* Closing one may dispose of requests (unlinking their streams), so each stream moves
   * back to server->streams before it is closed and no iterator is kept. */
  h2o_linklist_t open;
  h2o_linklist_init_anchor(&open);
  h2o_linklist_insert_list(&open, &server->streams);
  while (!h2o_linklist_is_empty(&open)) {
    sl_api_stream *stream = H2O_STRUCT_FROM_MEMBER(sl_api_stream, link, open.next);
    h2o_linklist_unlink(&stream->link);
    h2o_linklist_insert(&server->streams, &stream->link);
    close_on_loop(stream);
    flush(stream);
  }
}

void sl__api_streams_woken(h2o_linklist_t *wakes) {
  while (!h2o_linklist_is_empty(wakes)) {
    sl_api_stream *stream = H2O_STRUCT_FROM_MEMBER(sl_api_stream, wake_link, wakes->next);
    h2o_linklist_unlink(&stream->wake_link);
    pthread_mutex_lock(&stream->lock);
    stream->wake_queued = false;
    pthread_mutex_unlock(&stream->lock);
    flush(stream);
    stream_release(stream);
  }
}

/* --- the feeder's calls ------------------------------------------------------------ */

sl_api_stream *sl_api_reply_stream(sl_api_reply *reply, const char *content_type) {
  sl_api_stream *stream = calloc(1, sizeof *stream);
  if (!stream) abort();
  pthread_mutex_init(&stream->lock, NULL);
  pthread_cond_init(&stream->on_close_done, NULL);
  stream->content_type = strdup(content_type ? content_type : "application/octet-stream");
  if (!stream->content_type) abort();
  stream->sse = strncasecmp(stream->content_type, "text/event-stream", 17) == 0;
  if (!sl__api_reply_begin(reply, 200, stream->content_type)) {
    /* The handler answered already: a stream nobody reads, closed from the start. */
    stream->refs = 1;
    stream->closed = true;
    return stream;
  }
  stream->refs = 2; /* the feeder's and the server's */
  stream->server = reply->server;
  stream->can_wake = true;
  reply->stream = stream;
  return stream;
}

sl_stream_send sl_api_stream_send(sl_api_stream *stream, const void *data, size_t len) {
  sl_stream_send result = SL_STREAM_SENT;
  pthread_mutex_lock(&stream->lock);
  if (stream->closed || stream->ended) {
    result = SL_STREAM_CLOSED;
  } else if (len > SL_API_STREAM_BUFFER - stream->pending_len) {
    result = SL_STREAM_DROPPED;
  } else if (len) {
    append_locked(stream, data, len);
    queue_wake_locked(stream);
  }
  pthread_mutex_unlock(&stream->lock);
  return result;
}

sl_stream_send sl_api_stream_send_event(sl_api_stream *stream, json_t *event) {
  char *text = event ? json_dumps(event, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(event);
  if (!text) return SL_STREAM_DROPPED;
  size_t len = strlen(text);
  char *frame = malloc(len + 8);
  if (!frame) abort();
  memcpy(frame, "data: ", 6);
  memcpy(frame + 6, text, len);
  memcpy(frame + 6 + len, "\n\n", 2);
  free(text);
  sl_stream_send result = sl_api_stream_send(stream, frame, len + 8);
  free(frame);
  return result;
}

void sl_api_stream_on_close(sl_api_stream *stream, void (*fn)(void *user), void *user) {
  pthread_mutex_lock(&stream->lock);
  stream->on_close = fn;
  stream->on_close_user = user;
  /* Already closed: now, on this thread (the loop will not look again). */
  close_call call = stream->closed ? take_on_close_locked(stream) : (close_call){0};
  pthread_mutex_unlock(&stream->lock);
  run_on_close(stream, call);
}

/*
 * Once this returns, on_close is not running and never will: a feeder may free what it
 * gave on_close. So it waits for an on_close running on another thread (on_close is
 * short: it runs on the loop), but not for one running on this thread (on_close ending
 * the stream itself).
 */
void sl_api_stream_end(sl_api_stream *stream) {
  pthread_mutex_lock(&stream->lock);
  bool first = !stream->ended;
  stream->ended = true;
  while (stream->in_on_close && !pthread_equal(stream->on_close_thread, pthread_self()))
    pthread_cond_wait(&stream->on_close_done, &stream->lock);
  if (first) queue_wake_locked(stream);
  pthread_mutex_unlock(&stream->lock);
  if (first) stream_release(stream);
}
