/*
 * http_sink.h - the settings the `http` sink reads, shared with its unit tests so they can
 * fill the struct by hand instead of going through a pipeline file.
 */
#ifndef SL_CONNECTORS_HTTP_SINK_H
#define SL_CONNECTORS_HTTP_SINK_H

#include <stdint.h>

#include "sluice/connector.h"

/* Filled from the `fields` table in http_sink.c; borrowed by the sink for its lifetime. */
typedef struct http_sink_config {
  char *url;            /* http:// or https:// */
  char *method;         /* "POST" or "PUT" */
  sl_conf_map headers;  /* sent with every request, in order */
  int64_t batch;        /* events per request, >= 1 */
  uint64_t timeout;     /* ms allowed for one request; 0: no limit */
  int64_t max_retries;  /* retries after a retryable failure; -1: until destroy */
  uint64_t backoff;     /* ms before the first retry; doubles on each retry */
  uint64_t max_backoff; /* ms, the cap for backoff and for Retry-After */
} http_sink_config;

extern const sl_connector sl_http_sink;

#endif
