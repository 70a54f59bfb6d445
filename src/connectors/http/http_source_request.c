/*
 * http_source_request.c - one request to the `http` source, from h2o's handler call to
 * the answer (see http_source_internal.h for the threads).
 *
 *   POST/PUT PATH   the body is one event, or one per non-empty line with `split: lines`
 *   GET PATH?QUERY  the query parameters as one JSON object of strings; a key given twice
 *                   keeps its last value; no query gives `{}`
 *   other methods   405 with Allow; other paths 404
 *
 * Every event carries `http.method`, `http.path` (without the query) and one
 * `http.header.<lower-case name>` per request header, values as sent.
 *
 * The answer waits for the batch's acknowledgement: 200 {"accepted":N} once every sink
 * took it, 500 {"error":...} when one failed, 503 with Retry-After right away when the
 * pipeline is full (SL_AGAIN) or stopping. The client may leave while its batch is in
 * flight; h2o then frees the request with its connection. So the state the ack needs
 * lives in a small refcounted `http_pending`, which the request's pool drops when h2o
 * disposes of the request: a late ack finds `req == NULL` and answers nobody.
 *
 * Map: answers | events from a request | pending requests and acks | the handler.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/http/http_source_internal.h"

/* --- answers --------------------------------------------------------------------- */

static void respond(h2o_req_t *req, int status, const char *reason, const char *body) {
  size_t len = strlen(body);
  req->res.status = status;
  req->res.reason = reason;
  req->res.content_length = len;
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                 H2O_STRLIT("application/json"));
  h2o_send_inline(req, body, len);
}

/* {"error":"message"}, escaped by jansson since messages may quote the configuration. */
static void respond_error(h2o_req_t *req, int status, const char *reason, const char *message) {
  json_t *object = json_pack("{s:s}", "error", message);
  if (!object) object = json_pack("{s:s}", "error", reason); /* not UTF-8 */
  char *body = object ? json_dumps(object, JSON_COMPACT) : NULL;
  if (!body) abort();
  respond(req, status, reason, body);
  free(body);
  json_decref(object);
}

/* 503 with Retry-After in whole seconds (at least 1): the pipeline is full or stopping. */
static void respond_unavailable(http_worker *worker, h2o_req_t *req, const char *message) {
  uint64_t seconds = (worker->src->config->retry_after + 999) / 1000;
  char value[32];
  int len = snprintf(value, sizeof value, "%llu", (unsigned long long)(seconds ? seconds : 1));
  h2o_iovec_t kept = h2o_strdup(&req->pool, value, (size_t)len);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, kept.base, kept.len);
  if (worker->draining) req->http1_is_persistent = 0; /* HTTP/1: close after this answer */
  respond_error(req, 503, "Service Unavailable", message);
}

/* --- events from a request ------------------------------------------------------- */

/* Copies bytes into the batch's arena; only the host running out of memory fails. */
static sl_bytes keep(sl_event_list *batch, const void *bytes, size_t len) {
  sl_bytes out;
  if (sl_event_list_copy(batch, bytes, len, &out) != SL_OK) abort();
  return out;
}

/*
 * The metadata every event of the request carries, its bytes copied once into the
 * batch's arena; each event's pairs point at the same bytes. The caller frees *meta.
 */
static void request_meta(h2o_req_t *req, size_t path_len, sl_event_list *batch, sl_meta **meta,
                         size_t *count) {
  size_t headers = req->headers.size;
  sl_meta *pairs = calloc(5 + headers, sizeof *pairs);
  if (!pairs) abort();
  size_t n = 0;
  pairs[n++] = (sl_meta){keep(batch, "http.method", 11),
                         keep(batch, req->input.method.base, req->input.method.len)};
  pairs[n++] = (sl_meta){keep(batch, "http.path", 9), keep(batch, req->input.path.base, path_len)};

  char *key = NULL;
  size_t key_cap = 0;
  bool has_host = false;
  for (size_t i = 0; i < headers; i++) {
    const h2o_header_t *h = &req->headers.entries[i];
    size_t len = 12 + h->name->len;
    if (len > key_cap) {
      key_cap = len * 2;
      key = realloc(key, key_cap);
      if (!key) abort();
    }
    memcpy(key, "http.header.", 12);
    for (size_t c = 0; c < h->name->len; c++) {
      char ch = h->name->base[c];
      key[12 + c] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    if (h->name->len == 4 && memcmp(key + 12, "host", 4) == 0) has_host = true;
    pairs[n++] = (sl_meta){keep(batch, key, len), keep(batch, h->value.base, h->value.len)};
  }
  free(key);
  /* h2o takes a few headers out of the list while parsing the request; put back the
   * ones it keeps: Host (HTTP/1) or :authority (HTTP/2), unless h2o made it up from the
   * host configuration for a request without one, Upgrade, and the body's length
   * (Content-Length, or the decoded length of a chunked body). Transfer-Encoding and
   * Expect are gone for good. */
  bool host_supplied =
      req->hostconf && req->input.authority.base == req->hostconf->authority.hostport.base;
  if (!has_host && req->input.authority.len && !host_supplied)
    pairs[n++] = (sl_meta){keep(batch, "http.header.host", 16),
                           keep(batch, req->input.authority.base, req->input.authority.len)};
  if (req->upgrade.base)
    pairs[n++] = (sl_meta){keep(batch, "http.header.upgrade", 19),
                           keep(batch, req->upgrade.base, req->upgrade.len)};
  if (req->entity.base && h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_LENGTH, -1) < 0) {
    char len[32];
    int len_len = snprintf(len, sizeof len, "%zu", req->entity.len);
    pairs[n++] =
        (sl_meta){keep(batch, "http.header.content-length", 26), keep(batch, len, (size_t)len_len)};
  }
  *meta = pairs;
  *count = n;
}

static void push_event(sl_event_list *batch, const void *payload, size_t len, const sl_meta *meta,
                       size_t meta_count) {
  uint8_t *dst;
  sl_meta *dst_meta;
  if (sl_event_list_push(batch, len, meta_count, &dst, &dst_meta) != SL_OK) abort();
  if (len) memcpy(dst, payload, len);
  memcpy(dst_meta, meta, meta_count * sizeof *meta);
}

/* One event per line; "\r\n" ends a line too; empty lines are skipped. */
static void push_lines(sl_event_list *batch, const char *body, size_t len, const sl_meta *meta,
                       size_t meta_count) {
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = nl ? nl : end;
    size_t line_len = (size_t)(line_end - p);
    if (line_len && p[line_len - 1] == '\r') line_len--;
    if (line_len) push_event(batch, p, line_len, meta, meta_count);
    p = nl ? nl + 1 : end;
  }
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Form decoding: %XX escapes, '+' as space. `out` holds at least `len` bytes. False on a
 * broken escape. */
static bool form_decode(const char *s, size_t len, char *out, size_t *out_len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '+') {
      out[n++] = ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
      int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
      if (lo < 0) return false;
      out[n++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[n++] = s[i];
    }
  }
  *out_len = n;
  return true;
}

/*
 * "a=1&b=x+y" -> {"a":"1","b":"x y"} (malloc'ed, in *json). Pairs without '=' have an
 * empty value; empty pairs are skipped; a repeated key keeps its last value. Returns
 * NULL, with *json untouched, or a message saying what is wrong with the query.
 */
static const char *query_to_json(const char *query, size_t len, char **json) {
  const char *problem = NULL;
  json_t *object = json_object();
  char *key = malloc(len + 1), *value = malloc(len + 1);
  if (!object || !key || !value) abort();
  const char *p = query, *end = query + len;
  while (p < end && !problem) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pair_end = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pair_end - p));
    const char *key_end = eq ? eq : pair_end;
    size_t key_len, value_len = 0;
    if (pair_end == p) {
      /* "a=1&&b=2": nothing between the ampersands */
    } else if (!form_decode(p, (size_t)(key_end - p), key, &key_len) ||
               (eq && !form_decode(eq + 1, (size_t)(pair_end - eq - 1), value, &value_len))) {
      problem = "the query has a broken %-escape";
    } else {
      json_t *string = json_stringn(value, value_len);
      if (!string || json_object_setn_new(object, key, key_len, string) != 0)
        problem = "the query is not UTF-8 once decoded";
    }
    p = amp ? amp + 1 : end;
  }
  if (!problem) {
    *json = json_dumps(object, JSON_COMPACT);
    if (!*json) abort();
  }
  free(key);
  free(value);
  json_decref(object);
  return problem;
}

/* --- pending requests and acks --------------------------------------------------- */

typedef struct http_pending {
  http_worker *worker;
  h2o_req_t *req; /* NULL once h2o disposed of the request */
  size_t events;
  sl_status delivered; /* written by on_ack, read on the loop after the post */
  unsigned refs;       /* the request's pool and the ack; loop thread only */
  h2o_linklist_t link; /* in worker->pendings until the ack is handled */
} http_pending;

static void pending_release(http_pending *pending) {
  if (--pending->refs == 0) free(pending);
}

/* The request's pool is being cleared: the request is gone (answered, or the client left). */
static void on_req_disposed(void *slot) {
  http_pending *pending = *(http_pending **)slot;
  pending->req = NULL;
  pending_release(pending);
}

static void on_ack_in_loop(void *arg) {
  http_pending *pending = arg;
  http_worker *worker = pending->worker;
  h2o_linklist_unlink(&pending->link);
  worker->pending_count--;
  if (pending->req) {
    if (pending->delivered == SL_OK) {
      char body[64];
      snprintf(body, sizeof body, "{\"accepted\":%zu}", pending->events);
      respond(pending->req, 200, "OK", body);
    } else {
      char message[256];
      snprintf(message, sizeof message, "not delivered: %s", sl_status_str(pending->delivered));
      respond_error(pending->req, 500, "Internal Server Error", message);
    }
  }
  pending_release(pending);
  sl__http_worker_check_drained(worker);
}

/* Runs on a runtime thread: hand the outcome back to the request's loop. */
static void on_ack(void *cookie, sl_status delivered) {
  http_pending *pending = cookie;
  pending->delivered = delivered;
  sl_source_post(pending->worker->src->port, pending->worker->index, on_ack_in_loop, pending);
}

/* Hands the batch to the pipeline; the answer comes with the ack, or now if refused. */
static void emit(http_worker *worker, h2o_req_t *req, sl_event_list **batch) {
  size_t events = (*batch)->count;
  if (events == 0) {
    sl_event_list_destroy(*batch);
    free(*batch);
    *batch = NULL;
    respond(req, 200, "OK", "{\"accepted\":0}");
    return;
  }
  http_pending *pending = calloc(1, sizeof *pending);
  if (!pending) abort();
  pending->worker = worker;
  pending->req = req;
  pending->events = events;
  pending->refs = 1; /* the ack's; it cannot be handled before this handler returns */
  sl_status st = sl_source_emit_on_worker(worker->src->port, worker->index, batch, on_ack, pending);
  if (st != SL_OK) {
    free(pending);
    sl_event_list_destroy(*batch);
    free(*batch);
    *batch = NULL;
    respond_unavailable(worker, req,
                        st == SL_AGAIN ? "the pipeline is full; retry later"
                                       : "the pipeline is stopping");
    return;
  }
  pending->refs++;
  http_pending **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_req_disposed);
  *slot = pending;
  h2o_linklist_insert(&worker->pendings, &pending->link);
  worker->pending_count++;
}

void sl__http_worker_free_pendings(http_worker *worker) {
  while (!h2o_linklist_is_empty(&worker->pendings)) {
    http_pending *pending = H2O_STRUCT_FROM_MEMBER(http_pending, link, worker->pendings.next);
    h2o_linklist_unlink(&pending->link);
    free(pending);
  }
  worker->pending_count = 0;
}

/* --- the handler ----------------------------------------------------------------- */

static bool method_is(const h2o_req_t *req, const char *name) {
  return h2o_memis(req->input.method.base, req->input.method.len, name, strlen(name));
}

int sl__http_source_on_req(h2o_handler_t *self, h2o_req_t *req) {
  http_worker *worker = sl__http_worker_of(req->conn->ctx);
  http_source *src = worker->src;
  const http_source_config *config = src->config;
  size_t path_len = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
  if (!h2o_memis(req->input.path.base, path_len, config->path, strlen(config->path))) {
    char message[300];
    snprintf(message, sizeof message, "not found; events go to %.200s", config->path);
    respond_error(req, 404, "Not Found", message);
    return 0;
  }
  bool is_get = method_is(req, "GET");
  if (!is_get && !method_is(req, "POST") && !method_is(req, "PUT")) {
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                   H2O_STRLIT("GET, POST, PUT"));
    respond_error(req, 405, "Method Not Allowed", "use POST or PUT (the body) or GET (the query)");
    return 0;
  }
  if (worker->draining) {
    respond_unavailable(worker, req, "the pipeline is stopping");
    return 0;
  }
  if (!is_get && req->entity.len > config->max_body) {
    respond_error(req, 413, "Request Entity Too Large", "the body is larger than max_body");
    return 0;
  }

  sl_event_list *batch = malloc(sizeof *batch);
  if (!batch) abort();
  sl_event_list_init(batch);
  sl_meta *meta;
  size_t meta_count;
  request_meta(req, path_len, batch, &meta, &meta_count);
  const char *problem = NULL;
  if (is_get) {
    char *json = NULL;
    const char *query = req->input.path.base + path_len;
    size_t query_len = req->input.path.len - path_len;
    if (query_len) query++, query_len--; /* the '?' */
    problem = query_to_json(query, query_len, &json);
    if (json) push_event(batch, json, strlen(json), meta, meta_count);
    free(json);
  } else if (src->split_lines) {
    push_lines(batch, req->entity.base, req->entity.len, meta, meta_count);
  } else {
    push_event(batch, req->entity.base, req->entity.len, meta, meta_count);
  }
  free(meta);
  if (problem) {
    sl_event_list_destroy(batch);
    free(batch);
    respond_error(req, 400, "Bad Request", problem);
    return 0;
  }
  emit(worker, req, &batch);
  return 0;
}
