/*
 * api_routes.c - one function per route of docs/reference/api.md. Each parses its
 * request, asks the manager or the store, and answers; the server (api_server.c) has
 * already checked the token and matched the path.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/daemon.h"
#include "wasm/cache.h"

/* --- request helpers ---------------------------------------------------------------- */

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The percent-decoded value of `key` in the query into `out`; false when absent. */
static bool query_param(const char *query, const char *key, char *out, size_t cap) {
  size_t key_len = strlen(key);
  for (const char *at = query; at && *at;) {
    const char *end = strchr(at, '&');
    size_t len = end ? (size_t)(end - at) : strlen(at);
    if (len >= key_len && strncmp(at, key, key_len) == 0 &&
        (len == key_len || at[key_len] == '=')) {
      const char *v = len == key_len ? at + len : at + key_len + 1;
      size_t o = 0;
      for (; v < at + len && o + 1 < cap; v++) {
        if (*v == '%' && v + 2 < at + len + 1 && hex_value(v[1]) >= 0 && hex_value(v[2]) >= 0) {
          out[o++] = (char)(hex_value(v[1]) * 16 + hex_value(v[2]));
          v += 2;
        } else {
          out[o++] = *v == '+' ? ' ' : *v;
        }
      }
      out[o] = '\0';
      return true;
    }
    at = end ? end + 1 : NULL;
  }
  return false;
}

static bool query_flag(const char *query, const char *key) {
  char value[16];
  return query_param(query, key, value, sizeof value) &&
         (value[0] == '\0' || strcmp(value, "true") == 0 || strcmp(value, "1") == 0);
}

/* A non-negative integer parameter; `fallback` when absent; false when malformed. */
static bool query_uint(const char *query, const char *key, uint64_t fallback, uint64_t *out) {
  char value[32];
  *out = fallback;
  if (!query_param(query, key, value, sizeof value)) return true;
  char *end;
  unsigned long long n = strtoull(value, &end, 10);
  if (!*value || *end || value[0] == '-') return false;
  *out = n;
  return true;
}

static bool has_prefix(const char *text, const char *prefix) {
  return strncasecmp(text, prefix, strlen(prefix)) == 0;
}

/* Statuses that mean "the request was wrong", for deploy-like routes. */
static bool invalid_request(sl_status status) {
  return status == SL_CONFIG || status == SL_BAD_MODULE || status == SL_COMPILE ||
         status == SL_LOAD || status == SL_INIT || status == SL_NOT_FOUND || status == SL_INVALID;
}

static void reply_deploy(sl_api_reply *reply, sl_status status, sl_deploy_result *result,
                         const sl_error *err, int not_found_code) {
  if (status == SL_OK) {
    json_t *body = json_pack("{s:s, s:I, s:s, s:s, s:f, s:O}", "name", result->name, "version",
                             (json_int_t)result->version, "status", "running", "swap", result->swap,
                             "swap_ms", round(result->swap_ms * 1e3) / 1e3, "modules",
                             result->modules ? result->modules : json_object());
    sl_api_reply_json(reply, result->created ? 201 : 200, body);
  } else if (status == SL_AGAIN) {
    sl_api_reply_error(reply, 409, "%s", err->message);
  } else if (status == SL_NOT_FOUND && not_found_code == 404) {
    sl_api_reply_error(reply, 404, "%s", err->message);
  } else if (invalid_request(status)) {
    json_t *problems = result->problems ? json_incref(result->problems) : json_array();
    if (json_array_size(problems) == 0) json_array_append_new(problems, json_string(err->message));
    sl_api_reply_json(reply, 400,
                      json_pack("{s:s, s:o}", "error", "invalid pipeline", "problems", problems));
  } else {
    sl_api_reply_error(reply, 500, "%s", err->message);
  }
  sl_deploy_result_clear(result);
}

/* --- health and metrics ------------------------------------------------------------ */

static void get_healthz(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_api_reply_json(reply, 200, json_pack("{s:s}", "status", "ok"));
}

static void get_readyz(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  bool ready = sl_manager_ready(d->manager);
  sl_api_reply_json(reply, ready ? 200 : 503,
                    json_pack("{s:s}", "status", ready ? "ready" : "restoring"));
}

static void get_metrics(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  size_t len = 0;
  char *text = sl_manager_metrics(d->manager, &len);
  if (!text) return sl_api_reply_error(reply, 500, "out of memory");
  sl_api_reply_bytes(reply, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
  free(text);
}

/* --- pipelines --------------------------------------------------------------------- */

static void list_pipelines(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  sl_api_reply_json(reply, 200, json_pack("{s:o}", "pipelines", sl_manager_list(d->manager)));
}

static void deploy(sl_daemon *d, const sl_api_request *req, sl_api_reply *reply,
                   const char *expect_name) {
  sl_deploy deploy = {.expect_name = expect_name};
  json_t *envelope = NULL;
  char file[256], dir[4096];
  if (has_prefix(req->content_type, "application/json")) {
    json_error_t jerr;
    envelope = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
    if (!envelope && req->body_len)
      return sl_api_reply_error(reply, 400, "the body is not JSON: %s (line %d)", jerr.text,
                                jerr.line);
    if (!json_is_string(json_object_get(envelope, "source"))) {
      json_decref(envelope); /* a JSON pipeline, not an envelope */
      envelope = NULL;
    }
  }
  if (envelope) {
    json_t *source = json_object_get(envelope, "source");
    json_t *modules = json_object_get(envelope, "modules");
    deploy.source = json_string_value(source);
    deploy.source_len = json_string_length(source);
    deploy.file = json_string_value(json_object_get(envelope, "file"));
    deploy.dir = json_string_value(json_object_get(envelope, "dir"));
    deploy.note = json_string_value(json_object_get(envelope, "note"));
    if (modules && !json_is_object(modules)) {
      json_decref(envelope);
      return sl_api_reply_error(reply, 400, "'modules' must map module paths to sha256 hashes");
    }
    deploy.modules = modules;
  } else {
    if (req->body_len == 0)
      return sl_api_reply_error(reply, 400, "the body is empty: send a pipeline");
    deploy.source = (const char *)req->body;
    deploy.source_len = req->body_len;
    if (query_param(req->query, "file", file, sizeof file)) deploy.file = file;
    if (query_param(req->query, "dir", dir, sizeof dir)) deploy.dir = dir;
  }
  if (deploy.dir && deploy.dir[0] != '/') {
    json_decref(envelope);
    return sl_api_reply_error(reply, 400, "'dir' must be an absolute path, got '%s'", deploy.dir);
  }
  sl_deploy_result result;
  sl_error err = {{0}};
  sl_status status = sl_manager_deploy(d->manager, &deploy, &result, &err);
  reply_deploy(reply, status, &result, &err, 400);
  json_decref(envelope);
}

static void post_pipeline(void *user, const sl_api_request *req, sl_api_reply *reply) {
  deploy(user, req, reply, NULL);
}

static void put_pipeline(void *user, const sl_api_request *req, sl_api_reply *reply) {
  deploy(user, req, reply, req->params[0]);
}

static void get_pipeline(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  json_t *body = sl_manager_describe(d->manager, req->params[0]);
  if (!body) return sl_api_reply_error(reply, 404, "no pipeline '%s'", req->params[0]);
  sl_api_reply_json(reply, 200, body);
}

static void delete_pipeline(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  sl_error err = {{0}};
  sl_status status = sl_manager_remove(d->manager, req->params[0], &err);
  if (status == SL_OK)
    return sl_api_reply_json(reply, 200,
                             json_pack("{s:s, s:b}", "name", req->params[0], "deleted", 1));
  sl_api_reply_error(reply,
                     status == SL_NOT_FOUND ? 404
                     : status == SL_AGAIN   ? 409
                                            : 500,
                     "%s", err.message);
}

static json_t *version_json(const sl_version *v, bool with_source) {
  json_error_t jerr;
  json_t *modules = json_loads(v->modules ? v->modules : "{}", 0, &jerr);
  json_t *out =
      json_pack("{s:I, s:I, s:s, s:b, s:o}", "version", (json_int_t)v->version, "created_at",
                (json_int_t)v->created_at_ms, "note", v->note ? v->note : "", "current", v->current,
                "modules", modules ? modules : json_object());
  if (with_source && out) {
    json_object_set_new(out, "source", json_string(v->source));
    json_object_set_new(out, "file", json_string(v->file ? v->file : ""));
    json_object_set_new(out, "dir", v->dir ? json_string(v->dir) : json_null());
  }
  return out;
}

static void list_versions(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  sl_version *versions = NULL;
  size_t count = 0;
  sl_error err = {{0}};
  sl_status status = sl_store_list_versions(d->store, req->params[0], &versions, &count, &err);
  if (status == SL_NOT_FOUND)
    return sl_api_reply_error(reply, 404, "no pipeline '%s'", req->params[0]);
  if (status != SL_OK) return sl_api_reply_error(reply, 500, "%s", err.message);
  json_t *list = json_array();
  for (size_t i = 0; i < count; i++) json_array_append_new(list, version_json(&versions[i], false));
  sl_versions_free(versions, count);
  sl_api_reply_json(reply, 200, json_pack("{s:o}", "versions", list));
}

static void get_version(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  char *end;
  long long n = strtoll(req->params[1], &end, 10);
  if (*end || n <= 0)
    return sl_api_reply_error(reply, 400, "'%s' is not a version number", req->params[1]);
  sl_version v = {0};
  sl_error err = {{0}};
  sl_status status = sl_store_get_version(d->store, req->params[0], n, &v, &err);
  if (status == SL_NOT_FOUND)
    return sl_api_reply_error(reply, 404, "'%s' has no version %lld", req->params[0], n);
  if (status != SL_OK) return sl_api_reply_error(reply, 500, "%s", err.message);
  sl_api_reply_json(reply, 200, version_json(&v, true));
  sl_version_clear(&v);
}

static void post_rollback(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  int64_t to = 0;
  if (req->body_len) {
    json_error_t jerr;
    json_t *body = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
    json_t *value = json_object_get(body, "to");
    if (!body || (value && (!json_is_integer(value) || json_integer_value(value) <= 0))) {
      json_decref(body);
      return sl_api_reply_error(reply, 400, "expected {\"to\": VERSION} with a positive number");
    }
    to = value ? json_integer_value(value) : 0;
    json_decref(body);
  }
  sl_deploy_result result;
  sl_error err = {{0}};
  sl_status status = sl_manager_rollback(d->manager, req->params[0], to, &result, &err);
  reply_deploy(reply, status, &result, &err, 404);
}

/* Stores and compiles a module; *status_code is 201 (new) or 200 (known). */
static sl_status upload_module(sl_daemon *d, const uint8_t *wasm, size_t len, const char *name,
                               char sha256[65], sl_compile_info *info, bool *existed,
                               sl_error *err) {
  sl_module *module = NULL;
  sl_status status = sl_module_load_bytes(d->engine, wasm, len, name, &module, info, err);
  if (status != SL_OK) return status;
  sl_module_release(module); /* compiled into the cache: deploys load it at once */
  return sl_store_put_module(d->store, wasm, len, name, sha256, existed, err);
}

static void put_node_module(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  char sha256[65];
  sl_error err = {{0}};
  if (has_prefix(req->content_type, "application/json")) {
    json_error_t jerr;
    json_t *body = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
    const char *hash = json_string_value(json_object_get(body, "sha256"));
    if (!hash || strlen(hash) != 64) {
      json_decref(body);
      return sl_api_reply_error(reply, 400, "expected {\"sha256\": \"<64 hex digits>\"}");
    }
    snprintf(sha256, sizeof sha256, "%s", hash);
    json_decref(body);
  } else {
    sl_compile_info info;
    bool existed;
    char name[300];
    snprintf(name, sizeof name, "%s.wasm", req->params[1]);
    sl_status status =
        upload_module(d, req->body, req->body_len, name, sha256, &info, &existed, &err);
    if (status != SL_OK)
      return sl_api_reply_error(reply, invalid_request(status) ? 400 : 500, "%s", err.message);
  }
  sl_deploy_result result;
  sl_status status =
      sl_manager_swap_module(d->manager, req->params[0], req->params[1], sha256, &result, &err);
  reply_deploy(reply, status, &result, &err, 404);
}

static void get_stats(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  json_t *body = sl_manager_stats(d->manager, req->params[0]);
  if (!body) return sl_api_reply_error(reply, 404, "no pipeline '%s'", req->params[0]);
  sl_api_reply_json(reply, 200, body);
}

static void get_all_stats(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  sl_api_reply_json(reply, 200, sl_manager_stats(d->manager, NULL));
}

static void get_logs(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  const char *name = req->params[0];
  char node[256];
  bool by_node = query_param(req->query, "node", node, sizeof node);
  uint64_t tail;
  if (!query_uint(req->query, "tail", 100, &tail))
    return sl_api_reply_error(reply, 400, "tail: expected a number of lines");
  if (!sl_manager_has(d->manager, name))
    return sl_api_reply_error(reply, 404, "no pipeline '%s'", name);
  if (query_flag(req->query, "follow")) {
    sl_api_stream *stream = sl_api_reply_stream(reply, "text/event-stream");
    sl_log_hub_follow(d->logs, name, by_node ? node : NULL, tail, stream);
    return;
  }
  json_t *lines = sl_log_hub_recent(d->logs, name, by_node ? node : NULL, tail);
  sl_api_reply_json(reply, 200, json_pack("{s:o}", "lines", lines));
}

static void get_tap(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  char output[16] = "out", rate_text[32];
  query_param(req->query, "output", output, sizeof output);
  if (strcmp(output, "out") != 0 && strcmp(output, "errors") != 0)
    return sl_api_reply_error(reply, 400, "output: expected 'out' or 'errors', got '%s'", output);
  double rate = 10;
  if (query_param(req->query, "rate", rate_text, sizeof rate_text)) {
    char *end;
    rate = strtod(rate_text, &end);
    if (*end || !(rate > 0))
      return sl_api_reply_error(reply, 400, "rate: expected events per second > 0, got '%s'",
                                rate_text);
  }
  uint64_t limit;
  if (!query_uint(req->query, "limit", 0, &limit))
    return sl_api_reply_error(reply, 400, "limit: expected a number of events");
  sl_error err = {{0}};
  sl_status status = sl_manager_tap(d->manager, req->params[0], req->params[1],
                                    strcmp(output, "errors") == 0, rate, limit, reply, &err);
  if (status != SL_OK)
    sl_api_reply_error(reply, status == SL_NOT_FOUND ? 404 : 400, "%s", err.message);
}

/* --- modules ------------------------------------------------------------------------ */

static json_t *module_json(const sl_module_row *row) {
  return json_pack("{s:s, s:I, s:s, s:I}", "sha256", row->sha256, "size", (json_int_t)row->size,
                   "name", row->name ? row->name : "", "created_at",
                   (json_int_t)row->created_at_ms);
}

static void put_module(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  char name[256] = "module.wasm";
  query_param(req->query, "name", name, sizeof name);
  if (req->body_len == 0) return sl_api_reply_error(reply, 400, "the body is empty: send a .wasm");
  bool progress = strstr(req->accept, "text/event-stream") != NULL;
  sl_api_stream *stream = NULL;
  if (progress) {
    stream = sl_api_reply_stream(reply, "text/event-stream");
    /* A module uploaded before was compiled then: no "compiling" stage to announce. */
    char known[65];
    sl_module_row row = {0};
    sl_error ignored;
    sl__sha256_hex(req->body, req->body_len, known);
    bool uploaded = sl_store_get_module(d->store, known, &row, &ignored) == SL_OK;
    free(row.name);
    if (!uploaded)
      sl_api_stream_send_event(stream, json_pack("{s:s, s:s, s:I}", "stage", "compiling", "name",
                                                 name, "size", (json_int_t)req->body_len));
  }
  char sha256[65];
  sl_compile_info info = {0};
  bool existed = false;
  sl_error err = {{0}};
  sl_status status =
      upload_module(d, req->body, req->body_len, name, sha256, &info, &existed, &err);
  if (status != SL_OK) {
    if (!stream)
      return sl_api_reply_error(reply, invalid_request(status) ? 400 : 500, "%s", err.message);
    sl_api_stream_send_event(stream,
                             json_pack("{s:s, s:s}", "stage", "failed", "error", err.message));
    sl_api_stream_end(stream);
    return;
  }
  json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:b, s:f}", "stage", "ready", "sha256", sha256,
                           "size", (json_int_t)req->body_len, "name", name, "cached", info.cached,
                           "compile_ms", info.compile_ms);
  if (stream) {
    sl_api_stream_send_event(stream, body);
    sl_api_stream_end(stream);
  } else {
    json_object_del(body, "stage");
    sl_api_reply_json(reply, existed ? 200 : 201, body);
  }
}

static void list_modules(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  sl_module_row *rows = NULL;
  size_t count = 0;
  sl_error err = {{0}};
  if (sl_store_list_modules(d->store, &rows, &count, &err) != SL_OK)
    return sl_api_reply_error(reply, 500, "%s", err.message);
  json_t *list = json_array();
  for (size_t i = 0; i < count; i++) json_array_append_new(list, module_json(&rows[i]));
  sl_module_rows_free(rows, count);
  sl_api_reply_json(reply, 200, json_pack("{s:o}", "modules", list));
}

static void get_module(void *user, const sl_api_request *req, sl_api_reply *reply) {
  sl_daemon *d = user;
  sl_module_row row = {0};
  sl_error err = {{0}};
  sl_status status = sl_store_get_module(d->store, req->params[0], &row, &err);
  if (status == SL_NOT_FOUND || status == SL_INVALID)
    return sl_api_reply_error(reply, 404, "no module '%s'", req->params[0]);
  if (status != SL_OK) return sl_api_reply_error(reply, 500, "%s", err.message);
  sl_api_reply_json(reply, 200, module_json(&row));
  free(row.name);
}

const sl_api_route sl_daemon_routes[] = {
    {"GET", "/healthz", true, get_healthz},
    {"GET", "/readyz", false, get_readyz},
    {"GET", "/metrics", false, get_metrics},
    {"GET", "/v1/pipelines", false, list_pipelines},
    {"POST", "/v1/pipelines", false, post_pipeline},
    {"PUT", "/v1/pipelines/{}", false, put_pipeline},
    {"GET", "/v1/pipelines/{}", false, get_pipeline},
    {"DELETE", "/v1/pipelines/{}", false, delete_pipeline},
    {"GET", "/v1/pipelines/{}/versions", false, list_versions},
    {"GET", "/v1/pipelines/{}/versions/{}", false, get_version},
    {"POST", "/v1/pipelines/{}/rollback", false, post_rollback},
    {"PUT", "/v1/pipelines/{}/nodes/{}/module", false, put_node_module},
    {"GET", "/v1/pipelines/{}/stats", false, get_stats},
    {"GET", "/v1/stats", false, get_all_stats},
    {"GET", "/v1/pipelines/{}/logs", false, get_logs},
    {"GET", "/v1/pipelines/{}/nodes/{}/tap", false, get_tap},
    {"PUT", "/v1/modules", false, put_module},
    {"GET", "/v1/modules", false, list_modules},
    {"GET", "/v1/modules/{}", false, get_module},
};
const size_t sl_daemon_route_count = sizeof sl_daemon_routes / sizeof sl_daemon_routes[0];
