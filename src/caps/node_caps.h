/*
 * node_caps.h - the live side of one processor node's grants: its open buckets and its
 * HTTP policy, built once per node when a pipeline is built and shared by every instance
 * of the node on every worker (all of it is thread-safe or immutable).
 *
 * The pipeline owns it (and the key-value registry the buckets come from) and destroys it
 * after the node's pools.
 */
#ifndef SL_CAPS_NODE_CAPS_H
#define SL_CAPS_NODE_CAPS_H

#include "caps/http.h"
#include "caps/kv.h"
#include "sluice/capabilities.h"

typedef struct sl_node_caps {
  sl_guest_log_level log_level;
  const sl_kv_grant *grants; /* the spec's, not owned */
  sl_kv_bucket **buckets;    /* buckets[i] is grants[i]'s, owned by the registry */
  size_t bucket_count;
  sl_http_policy *http; /* NULL: no http grant */
  /* An HTTP exchange ends before the node's wall-time backstop (10 x time_limit), so a
   * slow server fails the request rather than the instance. */
  uint64_t http_deadline_ms;
} sl_node_caps;

/* Opens the granted buckets in `registry` and compiles the HTTP policy. `time_limit_ms` is
 * the node's per-call limit (0: the engine default). SL_CONFIG/SL_IO with a message. */
sl_status sl_node_caps_new(const sl_capabilities *grants, sl_kv_registry *registry,
                           uint64_t time_limit_ms, sl_node_caps **out, sl_error *err);
void sl_node_caps_destroy(sl_node_caps *caps);

/* The bucket granted as `name`, or NULL. */
sl_kv_bucket *sl_node_caps_bucket(const sl_node_caps *caps, const char *name, size_t name_len);

#endif
