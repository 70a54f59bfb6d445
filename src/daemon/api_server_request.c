/*
 * api_server_request.c - one request to the API, from h2o's handler call to the answer
 * (see api_server_internal.h for the threads and the references).
 *
 * On the loop thread, before any handler: the token (unless the route is public), the
 * route (404, 405 with Allow), the body's size (413). Then the request is copied out of
 * h2o into a call, and the call goes to the handler pool. A handler thread runs the route
 * and fills in the answer; the call comes back through the inbox, and the loop sends the
 * answer if the client is still there. The client may leave while the handler runs: h2o
 * then disposes of the request, whose pool holds a slot that clears `call->req`, so the
 * late answer is dropped.
 *
 * Map: answering on the loop | the token | routes | the copy | the handler pool |
 * answers from handlers | a finished call.
 */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/api_server_internal.h"

/* --- answering on the loop --------------------------------------------------------- */

static const struct {
  int status;
  const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
};

static const char *reason_phrase(int status) {
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].status == status) return reasons[i].reason;
  return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

/* A header whose name and value are copied into the request's pool. */
static void add_header(h2o_req_t *req, const char *name, const char *value) {
  size_t name_len = strlen(name);
  h2o_iovec_t lower = h2o_strdup(&req->pool, name, name_len);
  h2o_strtolower(lower.base, lower.len);
  h2o_iovec_t kept = h2o_strdup(&req->pool, value, strlen(value));
  h2o_add_header_by_str(&req->pool, &req->res.headers, lower.base, lower.len, 1, NULL, kept.base,
                        kept.len);
}

static void respond(h2o_req_t *req, int status, const char *content_type, const char *body,
                    size_t len) {
  req->res.status = status;
  req->res.reason = reason_phrase(status);
  req->res.content_length = len;
  if (content_type && content_type[0]) add_header(req, "content-type", content_type);
  h2o_send_inline(req, body, len);
}

/* {"error":"..."} plus a newline; the message becomes valid JSON whatever it holds. */
static char *error_body(const char *message) {
  json_t *object = json_pack("{s:s}", "error", message);
  if (!object) object = json_pack("{s:s}", "error", "(the message is not UTF-8)");
  char *text = object ? json_dumps(object, JSON_COMPACT) : NULL;
  json_decref(object);
  if (!text) abort();
  size_t len = strlen(text);
  char *body = realloc(text, len + 2);
  if (!body) abort();
  memcpy(body + len, "\n", 2);
  return body;
}

static void respond_error(h2o_req_t *req, int status, const char *message) {
  char *body = error_body(message);
  respond(req, status, "application/json", body, strlen(body));
  free(body);
}

/* --- the token --------------------------------------------------------------------- */

/* `Authorization: Bearer TOKEN`, compared in constant time (the length is not secret). */
static bool authorized(const sl_api_server *server, const h2o_req_t *req) {
  ssize_t index = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
  if (index < 0) return false;
  h2o_iovec_t value = req->headers.entries[index].value;
  if (value.len < 7 || strncasecmp(value.base, "bearer ", 7) != 0) return false;
  const char *given = value.base + 7;
  size_t given_len = value.len - 7;
  while (given_len && *given == ' ') given++, given_len--;
  while (given_len && given[given_len - 1] == ' ') given_len--;
  return given_len == server->token_len &&
         CRYPTO_memcmp(given, server->token, server->token_len) == 0;
}

/* --- routes ------------------------------------------------------------------------ */

/* Whether `path` fits `pattern`; each {} binds one non-empty segment, raw, in `params`. */
static bool route_matches(const char *pattern, const char *path, size_t path_len,
                          h2o_iovec_t params[SL_API_MAX_PARAMS], unsigned *param_count) {
  const char *p = pattern, *s = path, *end = path + path_len;
  unsigned n = 0;
  while (*p && s < end) {
    if (p[0] == '{' && p[1] == '}') {
      const char *slash = memchr(s, '/', (size_t)(end - s));
      const char *segment_end = slash ? slash : end;
      if (segment_end == s || n == SL_API_MAX_PARAMS) return false;
      params[n++] = h2o_iovec_init(s, (size_t)(segment_end - s));
      s = segment_end;
      p += 2;
    } else if (*p == *s) {
      p++;
      s++;
    } else {
      return false;
    }
  }
  if (*p || s != end) return false;
  *param_count = n;
  return true;
}

typedef struct route_lookup {
  const api_route *route; /* the route for this method and path, or NULL */
  bool path_known;        /* some route has this path */
  bool only_public;       /* every route with this path is public */
  char allow[128];        /* their methods, for 405 */
  h2o_iovec_t params[SL_API_MAX_PARAMS];
  unsigned param_count;
} route_lookup;

/* Whether the list "GET, PUT" holds `method`. */
static bool list_has(const char *list, const char *method) {
  size_t len = strlen(method);
  const char *item = list;
  while (*item) {
    size_t item_len = strcspn(item, ",");
    if (item_len == len && strncmp(item, method, len) == 0) return true;
    item += item_len;
    if (*item == ',') item += 2; /* ", " */
  }
  return false;
}

static void find_route(const sl_api_server *server, const h2o_req_t *req, size_t path_len,
                       route_lookup *found) {
  memset(found, 0, sizeof *found);
  found->only_public = true;
  for (size_t i = 0; i < server->route_count; i++) {
    const api_route *route = &server->routes[i];
    h2o_iovec_t params[SL_API_MAX_PARAMS];
    unsigned count = 0;
    if (!route_matches(route->pattern, req->input.path.base, path_len, params, &count)) continue;
    found->path_known = true;
    found->only_public &= route->public_route;
    if (!found->route &&
        h2o_memis(req->method.base, req->method.len, route->method, strlen(route->method))) {
      found->route = route;
      memcpy(found->params, params, sizeof params);
      found->param_count = count;
    }
    /* Allow: each method once, in table order. */
    size_t used = strlen(found->allow);
    if (!list_has(found->allow, route->method) &&
        used + strlen(route->method) + 3 < sizeof found->allow)
      snprintf(found->allow + used, sizeof found->allow - used, "%s%s", used ? ", " : "",
               route->method);
  }
}

/* --- the copy ---------------------------------------------------------------------- */

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* %XX escapes into `out` (NUL-terminated, at most `len` + 1 bytes). False on a broken
 * escape or an escaped NUL, which a C string cannot hold. */
static bool percent_decode(const char *s, size_t len, char *out) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '%') {
      out[n++] = s[i];
      continue;
    }
    int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
    int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
    if (lo < 0 || (hi == 0 && lo == 0)) return false;
    out[n++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[n] = '\0';
  return true;
}

static h2o_iovec_t header_value(const h2o_req_t *req, const h2o_token_t *token) {
  ssize_t index = h2o_find_header(&req->headers, token, -1);
  return index < 0 ? h2o_iovec_init("", 0) : req->headers.entries[index].value;
}

/* Copies `src` into `*cursor` as a C string and advances it. */
static const char *put(char **cursor, const char *src, size_t len) {
  char *dst = *cursor;
  if (len) memcpy(dst, src, len);
  dst[len] = '\0';
  *cursor += len + 1;
  return dst;
}

/*
 * A call holding a copy of everything a handler may read, in one allocation: method,
 * path, query, Content-Type, Accept, the decoded parameters and the body. NULL, with
 * `*problem` set, when a parameter has a broken escape.
 */
static sl_api_reply *copy_request(sl_api_server *server, h2o_req_t *req, size_t path_len,
                                  const route_lookup *found, const char **problem) {
  h2o_iovec_t method = req->method;
  h2o_iovec_t path = h2o_iovec_init(req->input.path.base, path_len);
  h2o_iovec_t query = h2o_iovec_init("", 0);
  if (path_len < req->input.path.len)
    query = h2o_iovec_init(req->input.path.base + path_len + 1, req->input.path.len - path_len - 1);
  h2o_iovec_t content_type = header_value(req, H2O_TOKEN_CONTENT_TYPE);
  h2o_iovec_t accept = header_value(req, H2O_TOKEN_ACCEPT);
  size_t body_len = req->entity.base ? req->entity.len : 0;
  size_t size = method.len + path.len + query.len + content_type.len + accept.len + body_len + 6;
  for (unsigned i = 0; i < found->param_count; i++) size += found->params[i].len + 1;

  sl_api_reply *call = calloc(1, sizeof *call);
  if (!call) abort();
  call->copy = malloc(size);
  if (!call->copy) abort();
  char *cursor = call->copy;
  sl_api_request *r = &call->request;
  r->method = put(&cursor, method.base, method.len);
  r->path = put(&cursor, path.base, path.len);
  r->query = put(&cursor, query.base, query.len);
  r->content_type = put(&cursor, content_type.base, content_type.len);
  r->accept = put(&cursor, accept.base, accept.len);
  r->body = (const uint8_t *)put(&cursor, req->entity.base, body_len);
  r->body_len = body_len;
  for (unsigned i = 0; i < SL_API_MAX_PARAMS; i++) r->params[i] = "";
  for (unsigned i = 0; i < found->param_count; i++) {
    if (!percent_decode(found->params[i].base, found->params[i].len, cursor)) {
      *problem = "the path has a broken %-escape (or an escaped NUL)";
      free(call->copy);
      free(call);
      return NULL;
    }
    r->params[i] = cursor;
    cursor += strlen(cursor) + 1;
  }
  call->server = server;
  call->route = found->route;
  return call;
}

/* --- the handler pool -------------------------------------------------------------- */

static void call_free(sl_api_reply *call) {
  free(call->copy);
  free(call->content_type);
  free(call->body);
  for (size_t i = 0; i < call->header_count; i++) {
    free(call->headers[i].name);
    free(call->headers[i].value);
  }
  free(call->headers);
  free(call);
}

static void call_release(sl_api_reply *call) {
  if (--call->refs == 0) call_free(call);
}

/* The request's pool is being cleared: the request is gone (answered, or the client left). */
static void on_req_disposed(void *slot) {
  sl_api_reply *call = *(sl_api_reply **)slot;
  call->req = NULL;
  call_release(call);
}

static void post_to_loop(sl_api_server *server, sl_api_reply *call) {
  pthread_mutex_lock(&server->inbox_lock);
  h2o_linklist_insert(&server->inbox_calls, &call->link);
  sl__api_server_wake_locked(server);
  pthread_mutex_unlock(&server->inbox_lock);
}

static void run_handler(sl_api_reply *call) {
  call->route->handler(call->server->user, &call->request, call);
  if (!call->answered) sl_api_reply_error(call, 500, "the handler gave no answer");
}

static void *pool_main(void *arg) {
  sl_api_server *server = arg;
  pthread_mutex_lock(&server->pool_lock);
  for (;;) {
    while (h2o_linklist_is_empty(&server->jobs) && !server->pool_stopping)
      pthread_cond_wait(&server->pool_cond, &server->pool_lock);
    if (server->pool_stopping) break;
    sl_api_reply *call = H2O_STRUCT_FROM_MEMBER(sl_api_reply, link, server->jobs.next);
    h2o_linklist_unlink(&call->link);
    pthread_mutex_unlock(&server->pool_lock);
    run_handler(call);
    post_to_loop(server, call);
    pthread_mutex_lock(&server->pool_lock);
  }
  pthread_mutex_unlock(&server->pool_lock);
  return NULL;
}

void sl__api_pool_start(sl_api_server *server) {
  server->threads = calloc(server->thread_count, sizeof *server->threads);
  if (!server->threads) abort();
  for (unsigned i = 0; i < server->thread_count; i++)
    if (pthread_create(&server->threads[i], NULL, pool_main, server) != 0) abort();
}

void sl__api_pool_stop(sl_api_server *server) {
  h2o_linklist_t queued;
  h2o_linklist_init_anchor(&queued);
  pthread_mutex_lock(&server->pool_lock);
  server->pool_stopping = true;
  h2o_linklist_insert_list(&queued, &server->jobs);
  pthread_cond_broadcast(&server->pool_cond);
  pthread_mutex_unlock(&server->pool_lock);
  while (!h2o_linklist_is_empty(&queued)) {
    sl_api_reply *call = H2O_STRUCT_FROM_MEMBER(sl_api_reply, link, queued.next);
    h2o_linklist_unlink(&call->link);
    call->discarded = true;
    post_to_loop(server, call);
  }
  for (unsigned i = 0; i < server->thread_count; i++) pthread_join(server->threads[i], NULL);
}

/* Queues the call for a handler thread; false when the pool stops. Loop thread. */
static bool dispatch(sl_api_server *server, sl_api_reply *call) {
  pthread_mutex_lock(&server->pool_lock);
  bool open = !server->pool_stopping;
  if (open) {
    h2o_linklist_insert(&server->jobs, &call->link);
    pthread_cond_signal(&server->pool_cond);
  }
  pthread_mutex_unlock(&server->pool_lock);
  if (open) server->calls_out++;
  return open;
}

int sl__api_server_on_req(h2o_handler_t *self, h2o_req_t *req) {
  sl_api_server *server = ((api_handler *)self)->server;
  if (server->stopping) {
    req->http1_is_persistent = 0;
    respond_error(req, 503, "the server is stopping");
    return 0;
  }
  size_t path_len = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
  route_lookup found;
  find_route(server, req, path_len, &found);
  bool needs_token =
      found.route ? !found.route->public_route : !(found.path_known && found.only_public);
  if (needs_token && !authorized(server, req)) {
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer"));
    respond_error(req, 401,
                  "a valid token is required: send `Authorization: Bearer TOKEN` "
                  "(the token is in $SLUICE_HOME/token)");
    return 0;
  }
  if (!found.path_known) {
    respond_error(req, 404, "no such API path");
    return 0;
  }
  if (!found.route) {
    add_header(req, "allow", found.allow);
    char message[200];
    snprintf(message, sizeof message, "method not allowed here; use %s", found.allow);
    respond_error(req, 405, message);
    return 0;
  }
  if (req->entity.len > server->max_body) {
    respond_error(req, 413, "the request body is too large");
    return 0;
  }
  const char *problem = NULL;
  sl_api_reply *call = copy_request(server, req, path_len, &found, &problem);
  if (!call) {
    respond_error(req, 400, problem);
    return 0;
  }
  call->req = req;
  call->refs = 2;
  sl_api_reply **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_req_disposed);
  *slot = call;
  if (!dispatch(server, call)) {
    call_release(call);
    req->http1_is_persistent = 0;
    respond_error(req, 503, "the server is stopping");
  }
  return 0;
}

/* --- answers from handlers --------------------------------------------------------- */

bool sl__api_reply_begin(sl_api_reply *reply, int status, const char *content_type) {
  if (reply->answered) return false;
  reply->answered = true;
  reply->status = status;
  reply->content_type = strdup(content_type ? content_type : "");
  if (!reply->content_type) abort();
  return true;
}

void sl_api_reply_json(sl_api_reply *reply, int status, json_t *body) {
  char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(body);
  if (!text) {
    sl_api_reply_error(reply, 500, "the answer could not be rendered as JSON");
    return;
  }
  if (!sl__api_reply_begin(reply, status, "application/json")) {
    free(text);
    return;
  }
  size_t len = strlen(text);
  reply->body = realloc(text, len + 2);
  if (!reply->body) abort();
  memcpy(reply->body + len, "\n", 2);
  reply->body_len = len + 1;
}

void sl_api_reply_error(sl_api_reply *reply, int status, const char *fmt, ...) {
  if (reply->answered) return;
  char message[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  sl__api_reply_begin(reply, status, "application/json");
  reply->body = error_body(message);
  reply->body_len = strlen(reply->body);
}

void sl_api_reply_bytes(sl_api_reply *reply, int status, const char *content_type, const void *data,
                        size_t len) {
  if (!sl__api_reply_begin(reply, status, content_type)) return;
  reply->body = malloc(len ? len : 1);
  if (!reply->body) abort();
  if (len) memcpy(reply->body, data, len);
  reply->body_len = len;
}

void sl_api_reply_header(sl_api_reply *reply, const char *name, const char *value) {
  if (reply->answered) return;
  api_header *grown = realloc(reply->headers, (reply->header_count + 1) * sizeof *grown);
  if (!grown) abort();
  reply->headers = grown;
  api_header *header = &reply->headers[reply->header_count++];
  header->name = strdup(name);
  header->value = strdup(value);
  if (!header->name || !header->value) abort();
}

/* --- a finished call --------------------------------------------------------------- */

static void send_answer(sl_api_reply *call) {
  h2o_req_t *req = call->req;
  for (size_t i = 0; i < call->header_count; i++)
    add_header(req, call->headers[i].name, call->headers[i].value);
  respond(req, call->status, call->content_type, call->body ? call->body : "", call->body_len);
}

void sl__api_call_finish(sl_api_reply *call) {
  sl_api_server *server = call->server;
  h2o_req_t *req = call->req;
  if (req && (call->discarded || server->stopping)) {
    req->http1_is_persistent = 0;
    respond_error(req, 503, "the server is stopping");
    req = NULL; /* answered: a stream, if any, closes below */
  }
  if (call->stream) {
    sl_api_stream *stream = call->stream;
    call->stream = NULL;
    if (req)
      for (size_t i = 0; i < call->header_count; i++)
        add_header(req, call->headers[i].name, call->headers[i].value);
    sl__api_stream_attach(server, stream, req);
  } else if (req) {
    send_answer(call);
  }
  call_release(call);
}
