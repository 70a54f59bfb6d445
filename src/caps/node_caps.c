/*
 * node_caps.c - a node's grants turned into live objects (see node_caps.h).
 */
#include "caps/node_caps.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/engine.h"

sl_status sl_node_caps_new(const sl_capabilities *grants, sl_kv_registry *registry,
                           uint64_t time_limit_ms, sl_node_caps **out, sl_error *err) {
  *out = NULL;
  sl_node_caps *caps = calloc(1, sizeof *caps);
  if (!caps) abort();
  caps->log_level = grants ? grants->log_level : SL_GUEST_LOG_INFO;
  uint64_t limit = time_limit_ms ? time_limit_ms : SL_LIMIT_TIME_MS_DEFAULT;
  /* The watchdog stops a call after 10 limits of wall time; leave a tenth of that for
   * lowering the response and the processor's own work. */
  caps->http_deadline_ms = limit * 9;
  sl_status status = SL_OK;
  if (grants && grants->bucket_count) {
    caps->grants = grants->buckets;
    caps->bucket_count = grants->bucket_count;
    caps->buckets = calloc(grants->bucket_count, sizeof *caps->buckets);
    if (!caps->buckets) abort();
    for (size_t i = 0; i < grants->bucket_count && status == SL_OK; i++)
      status = sl_kv_registry_open(registry, grants->buckets[i].bucket, grants->buckets[i].backend,
                                   &caps->buckets[i], err);
  }
  if (status == SL_OK && grants && grants->http.granted)
    status = sl_http_policy_new(&grants->http, &caps->http, err);
  if (status != SL_OK) {
    sl_node_caps_destroy(caps);
    return status;
  }
  *out = caps;
  return SL_OK;
}

void sl_node_caps_destroy(sl_node_caps *caps) {
  if (!caps) return;
  sl_http_policy_destroy(caps->http);
  free(caps->buckets);
  free(caps);
}

sl_kv_bucket *sl_node_caps_bucket(const sl_node_caps *caps, const char *name, size_t name_len) {
  for (size_t i = 0; i < caps->bucket_count; i++) {
    const char *granted = caps->grants[i].bucket;
    if (strlen(granted) == name_len && memcmp(granted, name, name_len) == 0)
      return caps->buckets[i];
  }
  return NULL;
}
