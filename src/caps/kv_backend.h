/*
 * kv_backend.h - what kv.c (the registry and the public calls) and the three backends
 * (kv_memory.c, kv_local.c, kv_redis.c) share: the bucket object, the small table of
 * operations each backend fills, and helpers every backend needs the same way (messages
 * that name the bucket, counters as decimal text, key pages, byte-order cursors).
 *
 * kv.c checks the arguments of every public call before it reaches a backend, so a
 * backend may assume: `bucket` is not NULL, `key` is not NULL (an empty key is ""),
 * `value` is not NULL, out-parameters are not NULL and already reset, `page` is zeroed.
 */
#ifndef SL_CAPS_KV_BACKEND_H
#define SL_CAPS_KV_BACKEND_H

#include <stdarg.h>

#include "caps/kv.h"

/* One backend's operations; the statuses and ownership are those of kv.h. */
typedef struct sl__kv_ops {
  sl_status (*get)(sl_kv_bucket *bucket, const char *key, size_t key_len, uint8_t **value,
                   size_t *value_len, bool *found, sl_error *err);
  sl_status (*set)(sl_kv_bucket *bucket, const char *key, size_t key_len, const uint8_t *value,
                   size_t value_len, sl_error *err);
  sl_status (*remove)(sl_kv_bucket *bucket, const char *key, size_t key_len, sl_error *err);
  sl_status (*exists)(sl_kv_bucket *bucket, const char *key, size_t key_len, bool *exists,
                      sl_error *err);
  sl_status (*list_keys)(sl_kv_bucket *bucket, const char *cursor, sl_kv_key_page *page,
                         sl_error *err);
  sl_status (*increment)(sl_kv_bucket *bucket, const char *key, size_t key_len, int64_t delta,
                         int64_t *result, sl_error *err);
  /* Frees `bucket->backend` (not the bucket itself); no call is running or follows. */
  void (*close)(sl_kv_bucket *bucket);
} sl__kv_ops;

struct sl_kv_bucket {
  const sl__kv_ops *ops;
  char *name;                /* as the grant names it */
  char *spec;                /* as given: with the name, the registry's key for sharing buckets */
  char *shown_spec;          /* the spec with any password replaced by ***, for messages */
  void *backend;             /* the backend's own state, freed by ops->close */
  struct sl_kv_bucket *next; /* the registry's list */
};

/* ---- backends: each fills bucket->ops and bucket->backend ------------------------------ */

sl_status sl__kv_memory_open(sl_kv_bucket *bucket, sl_error *err);

/* The registry's one SQLite connection, shared by all its "local" buckets. */
typedef struct sl__kv_local_db sl__kv_local_db;

/* Opens (creating the folder and the file as needed) STATE_DIR/keyvalue.sqlite.
 * *out is freed with sl__kv_local_db_close, after every bucket on it is closed. */
sl_status sl__kv_local_db_open(const char *state_dir, sl__kv_local_db **out, sl_error *err);
void sl__kv_local_db_close(sl__kv_local_db *db);
/* The bucket borrows `db`, which must outlive it. */
sl_status sl__kv_local_open(sl__kv_local_db *db, sl_kv_bucket *bucket, sl_error *err);

/* True when `spec` starts with redis:// (then sl__kv_redis_spec_check decides). */
bool sl__kv_redis_spec_is_redis(const char *spec);
bool sl__kv_redis_spec_check(const char *spec, char *why, size_t why_cap);
/* A malloc'ed copy of the spec with any password replaced by ***. */
char *sl__kv_redis_spec_shown(const char *spec);
/* Parses the spec; does not connect (the first operation does). */
sl_status sl__kv_redis_open(sl_kv_bucket *bucket, sl_error *err);

/* ---- shared helpers (kv.c) --------------------------------------------------------------- */

/* Sets `err` to "bucket 'NAME' (SPEC): " + the formatted text and returns `status`. */
sl_status sl__kv_error(const sl_kv_bucket *bucket, sl_error *err, sl_status status, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

/* A malloc'ed copy of `len` bytes, plus a NUL after them (so keys print as text);
 * NULL when len is 0 and `nul_terminate` is false. Aborts when the host is out of memory. */
uint8_t *sl__kv_copy(const void *bytes, size_t len, bool nul_terminate);

/*
 * Counters are decimal text in the form Redis accepts (string2ll): an optional '-', then
 * digits without leading zeros ("0" alone is zero), fitting in int64. Accepting exactly
 * what Redis accepts keeps a value that is a counter in one backend a counter in all.
 */
bool sl__kv_counter_parse(const uint8_t *text, size_t len, int64_t *value);
/* Writes `value` in decimal into `text` (at least 21 bytes); returns the length. */
size_t sl__kv_counter_format(int64_t value, char *text);
/* `*sum` = value + delta; false on overflow. */
bool sl__kv_counter_add(int64_t value, int64_t delta, int64_t *sum);

/* Appends a copy of `key` to `page` (at most SL_KV_PAGE_KEYS; the caller keeps count). */
void sl__kv_page_add(sl_kv_key_page *page, const void *key, size_t key_len);

/*
 * Cursors of the ordered backends (memory, local): "k" followed by the last key returned,
 * in hex, so a key holding any byte (NUL too) survives the trip through a C string.
 * sl__kv_cursor_encode returns a malloc'ed string; sl__kv_cursor_decode returns false when
 * `cursor` was not made by encode (then the caller answers SL_INVALID), else a malloc'ed
 * key in *key (free it) and its length.
 */
char *sl__kv_cursor_encode(const void *key, size_t key_len);
bool sl__kv_cursor_decode(const char *cursor, uint8_t **key, size_t *key_len);

#endif
