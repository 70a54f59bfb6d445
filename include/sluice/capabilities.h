/*
 * capabilities.h - what a processor node is granted (`capabilities:` in the pipeline file).
 *
 * The pipeline loader fills these from YAML (src/config/capabilities.c); the pipeline
 * turns them into live objects (key-value buckets, an HTTP policy) when it builds the
 * node. Logging and the node's config are always granted and have no entry here.
 * docs/design/capabilities.md has the reasoning; docs/capabilities/ the user's view.
 *
 * Everything here is owned by the pipeline spec that holds it.
 */
#ifndef SLUICE_CAPABILITIES_H
#define SLUICE_CAPABILITIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One bucket a node may open: `capabilities.keyvalue.NAME: BACKEND`. */
typedef struct sl_kv_grant {
  char *bucket;  /* the name the module passes to `open` */
  char *backend; /* "memory", "local" or "redis://HOST:PORT/DB[?prefix=P]" */
  int line, col; /* of the value, for messages */
} sl_kv_grant;

/* A header the host adds to every request to `host` (`capabilities.http.headers`). The
 * value usually comes from a secret and never enters guest memory. */
typedef struct sl_http_header_rule {
  char *host; /* as written: "api.example.com" or "*.example.com" */
  char *name;
  char *value;
} sl_http_header_rule;

#define SL_HTTP_DEFAULT_MAX_REQUEST_BYTES ((uint64_t)1 << 20)  /* 1 MiB */
#define SL_HTTP_DEFAULT_MAX_RESPONSE_BYTES ((uint64_t)4 << 20) /* 4 MiB */
#define SL_HTTP_DEFAULT_MAX_REDIRECTS 3
#define SL_HTTP_DEFAULT_TIMEOUT_MS 5000u

/* `capabilities.http`. Zero numbers mean the defaults above. */
typedef struct sl_http_grant {
  bool granted;
  char **allowed_hosts; /* "[SCHEME://]HOST[:PORT]", HOST may be "*.domain" or an IP literal */
  size_t allowed_count;
  uint64_t timeout_ms; /* the whole exchange, redirects included */
  uint64_t max_request_bytes;
  uint64_t max_response_bytes;
  int64_t max_redirects; /* -1: the default; 0: never follow */
  sl_http_header_rule *headers;
  size_t header_count;
} sl_http_grant;

/* wasi:logging levels, in the WIT enum's order. */
typedef enum sl_guest_log_level {
  SL_GUEST_LOG_TRACE,
  SL_GUEST_LOG_DEBUG,
  SL_GUEST_LOG_INFO,
  SL_GUEST_LOG_WARN,
  SL_GUEST_LOG_ERROR,
  SL_GUEST_LOG_CRITICAL,
} sl_guest_log_level;

typedef struct sl_capabilities {
  sl_kv_grant *buckets; /* keyvalue is granted when bucket_count > 0 */
  size_t bucket_count;
  sl_http_grant http;
  sl_guest_log_level log_level; /* lines below it are dropped; default info */
  int line, col;          /* of `capabilities:`; 0 when absent */
} sl_capabilities;

#endif
