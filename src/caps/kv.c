/*
 * kv.c - the key-value registry and the public calls of kv.h.
 *
 * The registry keeps the buckets a pipeline opened, in a list keyed by (name, spec),
 * behind one mutex, and the SQLite connection its "local" buckets share (opened with
 * the first of them). Every public call checks its arguments, resets its out-parameters
 * and goes to the bucket's backend through its table of operations (kv_backend.h).
 *
 * Sections: registry - spec check - public calls - shared helpers.
 */
#include "caps/kv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps/kv_backend.h"

struct sl_kv_registry {
  pthread_mutex_t lock; /* guards `buckets` and `local` */
  char *state_dir;      /* NULL: "local" buckets are refused */
  sl__kv_local_db *local;
  sl_kv_bucket *buckets;
};

/* ---- registry ------------------------------------------------------------------------ */

sl_status sl_kv_registry_new(const char *state_dir, sl_kv_registry **out, sl_error *err) {
  if (!out) return sl_error_set(err, SL_INVALID, "key-value registry: no place for the result");
  *out = NULL;
  sl_kv_registry *registry = calloc(1, sizeof *registry);
  if (!registry) abort(); /* host out of memory */
  pthread_mutex_init(&registry->lock, NULL);
  if (state_dir && state_dir[0])
    registry->state_dir = (char *)sl__kv_copy(state_dir, strlen(state_dir), true);
  *out = registry;
  return SL_OK;
}

static void bucket_free(sl_kv_bucket *bucket) {
  if (bucket->ops) bucket->ops->close(bucket);
  free(bucket->name);
  free(bucket->spec);
  free(bucket->shown_spec);
  free(bucket);
}

void sl_kv_registry_destroy(sl_kv_registry *registry) {
  if (!registry) return;
  sl_kv_bucket *bucket = registry->buckets;
  while (bucket) {
    sl_kv_bucket *next = bucket->next;
    bucket_free(bucket);
    bucket = next;
  }
  /* After the buckets: they borrow the connection. */
  if (registry->local) sl__kv_local_db_close(registry->local);
  pthread_mutex_destroy(&registry->lock);
  free(registry->state_dir);
  free(registry);
}

/* Makes the bucket's backend; called with the registry locked. */
static sl_status open_backend(sl_kv_registry *registry, sl_kv_bucket *bucket, sl_error *err) {
  if (strcmp(bucket->spec, "memory") == 0) return sl__kv_memory_open(bucket, err);
  if (strcmp(bucket->spec, "local") == 0) {
    if (!registry->state_dir)
      return sl__kv_error(bucket, err, SL_INVALID,
                          "this pipeline has no state folder, so a \"local\" bucket cannot be "
                          "kept; use \"memory\" or a redis:// URL");
    if (!registry->local) {
      sl_status st = sl__kv_local_db_open(registry->state_dir, &registry->local, err);
      if (st != SL_OK) return st;
    }
    return sl__kv_local_open(registry->local, bucket, err);
  }
  return sl__kv_redis_open(bucket, err);
}

sl_status sl_kv_registry_open(sl_kv_registry *registry, const char *name, const char *spec,
                              sl_kv_bucket **out, sl_error *err) {
  if (!out) return sl_error_set(err, SL_INVALID, "key-value open: no place for the result");
  *out = NULL;
  if (!registry || !name || !name[0] || !spec)
    return sl_error_set(err, SL_INVALID,
                        "key-value open: needs a registry, a bucket name and a backend");
  char why[300];
  if (!sl_kv_backend_spec_check(spec, why, sizeof why))
    return sl_error_set(err, SL_INVALID, "bucket '%s': %s", name, why);

  sl_status st = SL_OK;
  pthread_mutex_lock(&registry->lock);
  for (sl_kv_bucket *bucket = registry->buckets; bucket; bucket = bucket->next) {
    if (strcmp(bucket->name, name) == 0 && strcmp(bucket->spec, spec) == 0) {
      *out = bucket;
      goto done;
    }
  }
  sl_kv_bucket *bucket = calloc(1, sizeof *bucket);
  if (!bucket) abort();
  bucket->name = (char *)sl__kv_copy(name, strlen(name), true);
  bucket->spec = (char *)sl__kv_copy(spec, strlen(spec), true);
  bucket->shown_spec = sl__kv_redis_spec_is_redis(spec)
                           ? sl__kv_redis_spec_shown(spec)
                           : (char *)sl__kv_copy(spec, strlen(spec), true);
  st = open_backend(registry, bucket, err);
  if (st != SL_OK) {
    bucket_free(bucket);
    goto done;
  }
  bucket->next = registry->buckets;
  registry->buckets = bucket;
  *out = bucket;
done:
  pthread_mutex_unlock(&registry->lock);
  return st;
}

const char *sl_kv_bucket_name(const sl_kv_bucket *bucket) { return bucket ? bucket->name : "?"; }

const char *sl_kv_bucket_spec(const sl_kv_bucket *bucket) {
  return bucket ? bucket->shown_spec : "?";
}

/* ---- spec check ------------------------------------------------------------------------ */

bool sl_kv_backend_spec_check(const char *spec, char *why, size_t why_cap) {
  if (why && why_cap) why[0] = '\0';
  if (spec && (strcmp(spec, "memory") == 0 || strcmp(spec, "local") == 0)) return true;
  if (spec && sl__kv_redis_spec_is_redis(spec)) return sl__kv_redis_spec_check(spec, why, why_cap);
  if (why && why_cap)
    snprintf(why, why_cap,
             "the backend must be \"memory\", \"local\" or "
             "\"redis://HOST:PORT[/DB][?prefix=P]\", got \"%s\"",
             spec ? spec : "(nothing)");
  return false;
}

/* ---- public calls ---------------------------------------------------------------------- */

/* Checks what every keyed call needs; an empty key arrives at the backend as "". */
static sl_status check_key(const sl_kv_bucket *bucket, const char **key, size_t key_len,
                           sl_error *err) {
  if (!bucket) return sl_error_set(err, SL_INVALID, "key-value: no bucket");
  if (!*key && key_len > 0)
    return sl__kv_error(bucket, err, SL_INVALID, "a key of %zu bytes without its bytes", key_len);
  if (!*key) *key = "";
  return SL_OK;
}

sl_status sl_kv_get(sl_kv_bucket *bucket, const char *key, size_t key_len, uint8_t **value,
                    size_t *value_len, bool *found, sl_error *err) {
  if (value) *value = NULL;
  if (value_len) *value_len = 0;
  if (found) *found = false;
  sl_status st = check_key(bucket, &key, key_len, err);
  if (st != SL_OK) return st;
  if (!value || !value_len || !found)
    return sl__kv_error(bucket, err, SL_INVALID, "get: no place for the result");
  return bucket->ops->get(bucket, key, key_len, value, value_len, found, err);
}

sl_status sl_kv_set(sl_kv_bucket *bucket, const char *key, size_t key_len, const uint8_t *value,
                    size_t value_len, sl_error *err) {
  sl_status st = check_key(bucket, &key, key_len, err);
  if (st != SL_OK) return st;
  if (!value && value_len > 0)
    return sl__kv_error(bucket, err, SL_INVALID, "set: a value of %zu bytes without its bytes",
                        value_len);
  if (!value) value = (const uint8_t *)"";
  return bucket->ops->set(bucket, key, key_len, value, value_len, err);
}

sl_status sl_kv_delete(sl_kv_bucket *bucket, const char *key, size_t key_len, sl_error *err) {
  sl_status st = check_key(bucket, &key, key_len, err);
  if (st != SL_OK) return st;
  return bucket->ops->remove(bucket, key, key_len, err);
}

sl_status sl_kv_exists(sl_kv_bucket *bucket, const char *key, size_t key_len, bool *exists,
                       sl_error *err) {
  if (exists) *exists = false;
  sl_status st = check_key(bucket, &key, key_len, err);
  if (st != SL_OK) return st;
  if (!exists) return sl__kv_error(bucket, err, SL_INVALID, "exists: no place for the result");
  return bucket->ops->exists(bucket, key, key_len, exists, err);
}

sl_status sl_kv_list_keys(sl_kv_bucket *bucket, const char *cursor, sl_kv_key_page *page,
                          sl_error *err) {
  if (page) memset(page, 0, sizeof *page);
  if (!bucket) return sl_error_set(err, SL_INVALID, "key-value: no bucket");
  if (!page) return sl__kv_error(bucket, err, SL_INVALID, "list-keys: no place for the result");
  sl_status st = bucket->ops->list_keys(bucket, cursor, page, err);
  if (st != SL_OK) sl_kv_key_page_free(page); /* nothing half-filled leaves */
  return st;
}

void sl_kv_key_page_free(sl_kv_key_page *page) {
  if (!page) return;
  for (size_t i = 0; i < page->count; i++) free(page->keys[i]);
  free(page->keys);
  free(page->key_lens);
  free(page->cursor);
  memset(page, 0, sizeof *page);
}

sl_status sl_kv_increment(sl_kv_bucket *bucket, const char *key, size_t key_len, int64_t delta,
                          int64_t *result, sl_error *err) {
  if (result) *result = 0;
  sl_status st = check_key(bucket, &key, key_len, err);
  if (st != SL_OK) return st;
  if (!result) return sl__kv_error(bucket, err, SL_INVALID, "increment: no place for the result");
  return bucket->ops->increment(bucket, key, key_len, delta, result, err);
}

/* ---- shared helpers ---------------------------------------------------------------------- */

sl_status sl__kv_error(const sl_kv_bucket *bucket, sl_error *err, sl_status status, const char *fmt,
                       ...) {
  if (!err) return status;
  char text[sizeof err->message];
  va_list args;
  va_start(args, fmt);
  vsnprintf(text, sizeof text, fmt, args);
  va_end(args);
  return sl_error_set(err, status, "bucket '%s' (%s): %s", bucket->name, bucket->shown_spec, text);
}

uint8_t *sl__kv_copy(const void *bytes, size_t len, bool nul_terminate) {
  if (len == 0 && !nul_terminate) return NULL;
  uint8_t *copy = malloc(len + (nul_terminate ? 1 : 0));
  if (!copy) abort(); /* host out of memory */
  if (len) memcpy(copy, bytes, len);
  if (nul_terminate) copy[len] = '\0';
  return copy;
}

bool sl__kv_counter_parse(const uint8_t *text, size_t len, int64_t *value) {
  if (len == 0 || len > 20) return false;
  if (len == 1 && text[0] == '0') {
    *value = 0;
    return true;
  }
  bool negative = text[0] == '-';
  size_t at = negative ? 1 : 0;
  if (at >= len || text[at] < '1' || text[at] > '9') return false;
  /* Accumulate as a negative number: its range holds INT64_MIN. */
  int64_t sum = 0;
  for (; at < len; at++) {
    if (text[at] < '0' || text[at] > '9') return false;
    if (__builtin_mul_overflow(sum, 10, &sum) || __builtin_sub_overflow(sum, text[at] - '0', &sum))
      return false;
  }
  if (!negative && sum == INT64_MIN) return false;
  *value = negative ? sum : -sum;
  return true;
}

size_t sl__kv_counter_format(int64_t value, char *text) {
  return (size_t)snprintf(text, 21, "%lld", (long long)value);
}

bool sl__kv_counter_add(int64_t value, int64_t delta, int64_t *sum) {
  return !__builtin_add_overflow(value, delta, sum);
}

void sl__kv_page_add(sl_kv_key_page *page, const void *key, size_t key_len) {
  if (!page->keys) {
    page->keys = calloc(SL_KV_PAGE_KEYS, sizeof *page->keys);
    page->key_lens = calloc(SL_KV_PAGE_KEYS, sizeof *page->key_lens);
    if (!page->keys || !page->key_lens) abort();
  }
  if (page->count >= SL_KV_PAGE_KEYS) abort(); /* a backend bug: pages hold at most this */
  page->keys[page->count] = (char *)sl__kv_copy(key, key_len, true);
  page->key_lens[page->count] = key_len;
  page->count++;
}

char *sl__kv_cursor_encode(const void *key, size_t key_len) {
  static const char digits[] = "0123456789abcdef";
  char *cursor = malloc(2 + 2 * key_len);
  if (!cursor) abort();
  const uint8_t *bytes = key;
  cursor[0] = 'k';
  for (size_t i = 0; i < key_len; i++) {
    cursor[1 + 2 * i] = digits[bytes[i] >> 4];
    cursor[2 + 2 * i] = digits[bytes[i] & 15];
  }
  cursor[1 + 2 * key_len] = '\0';
  return cursor;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool sl__kv_cursor_decode(const char *cursor, uint8_t **key, size_t *key_len) {
  *key = NULL;
  *key_len = 0;
  if (!cursor || cursor[0] != 'k') return false;
  size_t hex_len = strlen(cursor + 1);
  if (hex_len % 2) return false;
  uint8_t *bytes = malloc(hex_len / 2 + 1);
  if (!bytes) abort();
  for (size_t i = 0; i < hex_len / 2; i++) {
    int hi = hex_value(cursor[1 + 2 * i]), lo = hex_value(cursor[2 + 2 * i]);
    if (hi < 0 || lo < 0) {
      free(bytes);
      return false;
    }
    bytes[i] = (uint8_t)(hi * 16 + lo);
  }
  bytes[hex_len / 2] = '\0';
  *key = bytes;
  *key_len = hex_len / 2;
  return true;
}
