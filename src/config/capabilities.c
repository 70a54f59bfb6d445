/*
 * capabilities.c - a wasm node's `capabilities:` mapping (include/sluice/capabilities.h).
 *
 *   capabilities:
 *     keyvalue: {cache: memory, seen: local, users: "redis://127.0.0.1:6379/0"}
 *     http:
 *       allowed_hosts: ["api.example.com:443"]
 *       timeout: 2s
 *       headers: {"api.example.com": {Authorization: "Bearer ${secret:token}"}}
 *     logging: {level: debug}
 *
 * The scalar settings of `http` and `logging` go through ordinary settings tables, so they
 * get the same messages as every other setting; the mappings of mappings are read here.
 */
#include <stdio.h>
#include <string.h>

#include "caps/kv.h"
#include "config/conf_fields.h"
#include "config/suggest.h"
#include "config/yaml_doc.h"
#include "sluice/capabilities.h"

typedef struct http_settings {
  sl_conf_list allowed_hosts;
  uint64_t timeout;
  uint64_t max_request_bytes;
  uint64_t max_response_bytes;
  int64_t max_redirects;
} http_settings;

const sl_conf_field sl_http_grant_fields[] = {
    {"allowed_hosts", SL_CONF_LIST, SL_CONF_REQUIRED, NULL,
     offsetof(http_settings, allowed_hosts),
     "Targets a request may go to: [SCHEME://]HOST[:PORT], *.domain for sub-domains.", NULL},
    {"timeout", SL_CONF_DURATION, 0, "5s", offsetof(http_settings, timeout),
     "Time for a whole exchange, redirects included.", NULL},
    {"max_request_bytes", SL_CONF_SIZE, 0, "1MiB", offsetof(http_settings, max_request_bytes),
     "Largest request body a processor may send.", NULL},
    {"max_response_bytes", SL_CONF_SIZE, 0, "4MiB", offsetof(http_settings, max_response_bytes),
     "Largest response body; a larger one fails the request as too-large.", NULL},
    {"max_redirects", SL_CONF_INT, 0, "3", offsetof(http_settings, max_redirects),
     "Redirects followed (each to an allowed target only); 0 returns the 3xx response.", NULL},
    {NULL},
};

typedef struct logging_settings {
  char *level;
} logging_settings;

static const char *const level_names[] = {"trace", "debug", "info",
                                          "warn",  "error", "critical", NULL};

static const sl_conf_field logging_fields[] = {
    {"level", SL_CONF_ENUM, 0, "info", offsetof(logging_settings, level),
     "Lines below this level are dropped.", level_names},
    {NULL},
};

static const char *const capability_keys[] = {"keyvalue", "http", "logging"};
enum { CAPABILITY_KEYS = 3 };

static bool expect_map(const sl_load_ctx *ctx, const sl_ynode *value, const char *key,
                       const char *example) {
  if (value->type == SL_YAML_MAP) return true;
  if (!value->bad) sl__conf_report_value(ctx, value, key, example);
  return false;
}

static void read_keyvalue(const sl_load_ctx *ctx, const sl_ynode *map, sl_capabilities *caps) {
  if (!expect_map(ctx, map, "capabilities.keyvalue",
                  "a mapping of bucket names to backends, e.g. {cache: memory}"))
    return;
  caps->buckets = sl__store_array(ctx->store, map->count, sizeof *caps->buckets);
  for (size_t i = 0; i < map->count; i++) {
    const sl_ynode *name = map->pairs[i].key, *backend = map->pairs[i].value;
    char where[300], why[300];
    snprintf(where, sizeof where, "capabilities.keyvalue.%s", name->text);
    if (backend->bad) continue;
    if (backend->type != SL_YAML_SCALAR || sl__ynode_is_null(backend) ||
        strlen(backend->text) != backend->len) {
      sl__conf_report_value(ctx, backend, where,
                            "a backend: memory, local or redis://HOST:PORT/DB");
      continue;
    }
    if (!sl_kv_backend_spec_check(backend->text, why, sizeof why)) {
      sl__problems_add(ctx->problems, backend->line, backend->col, "%s: %s", where, why);
      continue;
    }
    caps->buckets[caps->bucket_count++] =
        (sl_kv_grant){sl__store_strndup(ctx->store, name->text, name->len),
                      sl__store_strdup(ctx->store, backend->text), backend->line, backend->col};
  }
}

/* headers: {HOST: {NAME: VALUE}} */
static void read_http_headers(const sl_load_ctx *ctx, const sl_ynode *map, sl_http_grant *http) {
  if (!expect_map(ctx, map, "capabilities.http.headers",
                  "a mapping of hosts to header mappings, e.g. {api.example.com: {X-Key: abc}}"))
    return;
  size_t total = 0;
  for (size_t i = 0; i < map->count; i++)
    if (map->pairs[i].value->type == SL_YAML_MAP) total += map->pairs[i].value->count;
  http->headers = sl__store_array(ctx->store, total, sizeof *http->headers);
  for (size_t i = 0; i < map->count; i++) {
    const sl_ynode *host = map->pairs[i].key, *fields = map->pairs[i].value;
    char where[300];
    snprintf(where, sizeof where, "capabilities.http.headers.%s", host->text);
    if (!expect_map(ctx, fields, where, "a mapping of header names to values")) continue;
    for (size_t k = 0; k < fields->count; k++) {
      const sl_ynode *name = fields->pairs[k].key, *value = fields->pairs[k].value;
      if (value->bad) continue;
      if (value->type != SL_YAML_SCALAR || strlen(value->text) != value->len) {
        char field_where[600];
        snprintf(field_where, sizeof field_where, "%s.%s", where, name->text);
        sl__conf_report_value(ctx, value, field_where, "a text value");
        continue;
      }
      http->headers[http->header_count++] =
          (sl_http_header_rule){sl__store_strndup(ctx->store, host->text, host->len),
                                sl__store_strndup(ctx->store, name->text, name->len),
                                sl__store_strndup(ctx->store, value->text, value->len)};
    }
  }
}

static void read_http(const sl_load_ctx *ctx, const sl_ynode *map, sl_capabilities *caps) {
  if (!expect_map(ctx, map, "capabilities.http",
                  "a mapping like {allowed_hosts: [\"api.example.com:443\"]}"))
    return;
  static const char *const own[] = {"headers"};
  http_settings settings = {0};
  sl_conf_scope scope = {.what = "capabilities.http", .own_keys = own, .own_count = 1};
  sl__conf_fill(ctx, sl_http_grant_fields, map, &scope, &settings);
  sl_http_grant *http = &caps->http;
  http->granted = true;
  http->allowed_hosts = settings.allowed_hosts.items;
  http->allowed_count = settings.allowed_hosts.count;
  http->timeout_ms = settings.timeout;
  http->max_request_bytes = settings.max_request_bytes;
  http->max_response_bytes = settings.max_response_bytes;
  http->max_redirects = settings.max_redirects;
  const sl_ypair *headers = sl__ymap_find(map, "headers");
  if (headers) read_http_headers(ctx, headers->value, http);
  const sl_ypair *redirects = sl__ymap_find(map, "max_redirects");
  if (redirects && (settings.max_redirects < 0 || settings.max_redirects > 20))
    sl__conf_report_value(ctx, redirects->value, "max_redirects", "a number from 0 to 20");
  const sl_ypair *timeout = sl__ymap_find(map, "timeout");
  if (timeout && settings.timeout == 0)
    sl__conf_report_value(ctx, timeout->value, "timeout", "a duration above 0");
}

static void read_logging(const sl_load_ctx *ctx, const sl_ynode *map, sl_capabilities *caps) {
  if (!expect_map(ctx, map, "capabilities.logging", "a mapping like {level: debug}")) return;
  logging_settings settings = {0};
  sl_conf_scope scope = {.what = "capabilities.logging"};
  sl__conf_fill(ctx, logging_fields, map, &scope, &settings);
  for (int i = 0; settings.level && level_names[i]; i++)
    if (strcmp(settings.level, level_names[i]) == 0) caps->log_level = (sl_guest_log_level)i;
}

void sl__capabilities_fill(const sl_load_ctx *ctx, const sl_ynode *value, sl_capabilities *caps) {
  caps->log_level = SL_GUEST_LOG_INFO;
  caps->line = value->line;
  caps->col = value->col;
  if (!expect_map(ctx, value, "capabilities",
                  "a mapping like {keyvalue: {cache: memory}, http: {allowed_hosts: [...]}}"))
    return;
  for (size_t i = 0; i < value->count; i++) {
    const sl_ynode *key = value->pairs[i].key, *v = value->pairs[i].value;
    if (strcmp(key->text, "keyvalue") == 0) {
      read_keyvalue(ctx, v, caps);
    } else if (strcmp(key->text, "http") == 0) {
      read_http(ctx, v, caps);
    } else if (strcmp(key->text, "logging") == 0) {
      read_logging(ctx, v, caps);
    } else {
      char hint[400], quoted[96];
      sl__hint(hint, sizeof hint, key->text, capability_keys, CAPABILITY_KEYS, "capabilities are");
      sl__problems_add(ctx->problems, key->line, key->col, "capabilities: unknown capability '%s'%s",
                       sl__quote(quoted, sizeof quoted, key->text, key->len), hint);
    }
  }
}
