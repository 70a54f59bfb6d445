/*
 * kv.h - key-value buckets for processors (wasi:keyvalue), behind one interface.
 *
 * Backends, chosen per bucket by a spec string:
 *   "memory"                          a hash table that lives as long as the registry
 *   "local"                           SQLite at STATE_DIR/keyvalue.sqlite (persistent)
 *   "redis://HOST:PORT[/DB][?prefix=P]"  a Redis database; keys are P + key
 *       (also redis://[USER]:PASSWORD@HOST:PORT/...: AUTH; the password never appears in
 *       a message, which shows *** instead)
 *
 * A registry belongs to one running pipeline and owns every bucket opened through it;
 * opening the same (name, spec) twice returns the same bucket, so nodes of a pipeline
 * share buckets by name. Every function is thread-safe: the workers of a pipeline call
 * them concurrently. Operations on one bucket are atomic with respect to each other.
 *
 * Keys and values are byte strings with lengths (keys are UTF-8 text from the guest, but
 * may contain any byte). Counters (`sl_kv_increment`) are stored as decimal text, as
 * Redis INCRBY stores them, so `get` of a counter returns e.g. "42" in every backend.
 *
 * Errors are SL_IO (the backend failed: connection, disk) or SL_INVALID (e.g. increment
 * of a value that is not a decimal integer, or overflow), with a message that names the
 * bucket. A backend never blocks longer than its timeout (Redis: 500 ms per command,
 * including connecting); it reconnects on the next call after a failure.
 */
#ifndef SL_CAPS_KV_H
#define SL_CAPS_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

typedef struct sl_kv_registry sl_kv_registry;
typedef struct sl_kv_bucket sl_kv_bucket;

/* `state_dir` is where "local" buckets keep their file (created on first use). */
sl_status sl_kv_registry_new(const char *state_dir, sl_kv_registry **out, sl_error *err);
/* Closes every bucket. No call on any of them may be running or follow. */
void sl_kv_registry_destroy(sl_kv_registry *registry);

/* Checks a backend spec's syntax without connecting (used when a pipeline file is loaded).
 * false with a sentence in `why` that says what is accepted. */
bool sl_kv_backend_spec_check(const char *spec, char *why, size_t why_cap);

/* Opens bucket `name` on `spec`, or returns the one already open. Memory and local buckets
 * are ready at once; a Redis bucket connects lazily, on its first operation. */
sl_status sl_kv_registry_open(sl_kv_registry *registry, const char *name, const char *spec,
                              sl_kv_bucket **out, sl_error *err);

/* The bucket's name and its spec (any password in a Redis URL shown as ***), for messages.
 * Both live as long as the bucket. */
const char *sl_kv_bucket_name(const sl_kv_bucket *bucket);
const char *sl_kv_bucket_spec(const sl_kv_bucket *bucket);

/* `*value` (malloc'ed, caller frees; NULL when not found or empty) */
sl_status sl_kv_get(sl_kv_bucket *bucket, const char *key, size_t key_len, uint8_t **value,
                    size_t *value_len, bool *found, sl_error *err);
sl_status sl_kv_set(sl_kv_bucket *bucket, const char *key, size_t key_len, const uint8_t *value,
                    size_t value_len, sl_error *err);
sl_status sl_kv_delete(sl_kv_bucket *bucket, const char *key, size_t key_len, sl_error *err);
sl_status sl_kv_exists(sl_kv_bucket *bucket, const char *key, size_t key_len, bool *exists,
                       sl_error *err);

/* One page of keys. `cursor` is NULL when there are no more pages. Owned by the caller:
 * free with sl_kv_key_page_free. */
typedef struct sl_kv_key_page {
  char **keys; /* each malloc'ed, NUL-terminated, with its length in key_lens */
  size_t *key_lens;
  size_t count;
  char *cursor;
} sl_kv_key_page;

#define SL_KV_PAGE_KEYS 1000 /* most keys one page holds */

/* `cursor` NULL: the first page; otherwise a cursor a previous page returned. Keys come in
 * no particular order (memory and local: byte order; Redis: SCAN's). A page may hold fewer
 * keys than SL_KV_PAGE_KEYS (even none) and still have a cursor. Every key present from the
 * first page to the last is listed; with Redis, a key may be listed twice if the keyspace
 * changes meanwhile (SCAN's guarantee). SL_INVALID for a cursor this bucket did not make. */
sl_status sl_kv_list_keys(sl_kv_bucket *bucket, const char *cursor, sl_kv_key_page *page,
                          sl_error *err);
void sl_kv_key_page_free(sl_kv_key_page *page);

/* Adds `delta` to the counter at `key` (absent: 0) and returns the new value. */
sl_status sl_kv_increment(sl_kv_bucket *bucket, const char *key, size_t key_len, int64_t delta,
                          int64_t *result, sl_error *err);

#endif
