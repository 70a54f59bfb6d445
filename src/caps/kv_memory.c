/*
 * kv_memory.c - the "memory" backend: each bucket is a skip list of keys in byte order
 * behind one mutex, living as long as the registry.
 *
 * Why a skip list and not a hash table: list-keys pages by "the keys after the last one
 * returned", which needs order; a skip list gives that and O(log n) lookups in one
 * structure, and its cursor stays valid whatever is added or removed between pages.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "caps/kv_backend.h"

#define MAX_HEIGHT 24 /* enough for 2^24 keys at p = 1/2 before lookups slow down */

typedef struct entry {
  uint8_t *key; /* NUL after key_len bytes */
  size_t key_len;
  uint8_t *value; /* NULL when empty */
  size_t value_len;
  int height;
  struct entry *next[]; /* `height` forward links */
} entry;

typedef struct memory_table {
  pthread_mutex_t lock; /* every operation holds it: that is what makes them atomic */
  entry *head;          /* a sentinel with MAX_HEIGHT links and no key */
  int height;           /* of the tallest entry */
  uint64_t random;      /* xorshift state for entry heights */
} memory_table;

static int key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
  int order = memcmp(a, b, a_len < b_len ? a_len : b_len);
  if (order) return order;
  return a_len < b_len ? -1 : a_len > b_len;
}

static entry *entry_new(int height) {
  entry *e = calloc(1, sizeof *e + (size_t)height * sizeof e->next[0]);
  if (!e) abort(); /* host out of memory */
  e->height = height;
  return e;
}

static void entry_free(entry *e) {
  free(e->key);
  free(e->value);
  free(e);
}

static int random_height(memory_table *table) {
  uint64_t x = table->random;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  table->random = x;
  int height = 1;
  while (height < MAX_HEIGHT && (x & 1)) {
    height++;
    x >>= 1;
  }
  return height;
}

/* The first entry whose key is >= `key` (NULL if none); before[level] is the last entry
 * before it at each level, where an insert or a removal relinks. */
static entry *seek(memory_table *table, const uint8_t *key, size_t key_len,
                   entry *before[MAX_HEIGHT]) {
  entry *at = table->head;
  for (int level = table->height - 1; level >= 0; level--) {
    while (at->next[level] &&
           key_compare(at->next[level]->key, at->next[level]->key_len, key, key_len) < 0)
      at = at->next[level];
    if (before) before[level] = at;
  }
  return at->next[0];
}

static entry *find(memory_table *table, const char *key, size_t key_len) {
  entry *e = seek(table, (const uint8_t *)key, key_len, NULL);
  if (e && key_compare(e->key, e->key_len, (const uint8_t *)key, key_len) == 0) return e;
  return NULL;
}

/* The entry for `key`, added with an empty value when absent. */
static entry *find_or_add(memory_table *table, const char *key, size_t key_len, bool *added) {
  entry *before[MAX_HEIGHT];
  entry *e = seek(table, (const uint8_t *)key, key_len, before);
  *added = false;
  if (e && key_compare(e->key, e->key_len, (const uint8_t *)key, key_len) == 0) return e;
  int height = random_height(table);
  for (int level = table->height; level < height; level++) before[level] = table->head;
  if (height > table->height) table->height = height;
  e = entry_new(height);
  e->key = sl__kv_copy(key, key_len, true);
  e->key_len = key_len;
  for (int level = 0; level < height; level++) {
    e->next[level] = before[level]->next[level];
    before[level]->next[level] = e;
  }
  *added = true;
  return e;
}

/* ---- operations ------------------------------------------------------------------------- */

static sl_status memory_get(sl_kv_bucket *bucket, const char *key, size_t key_len, uint8_t **value,
                            size_t *value_len, bool *found, sl_error *err) {
  memory_table *table = bucket->backend;
  pthread_mutex_lock(&table->lock);
  entry *e = find(table, key, key_len);
  if (e) {
    *found = true;
    *value = sl__kv_copy(e->value, e->value_len, false);
    *value_len = e->value_len;
  }
  pthread_mutex_unlock(&table->lock);
  return SL_OK;
}

static sl_status memory_set(sl_kv_bucket *bucket, const char *key, size_t key_len,
                            const uint8_t *value, size_t value_len, sl_error *err) {
  memory_table *table = bucket->backend;
  /* Copied before locking: the copy is the slow part and needs no lock. */
  uint8_t *copy = sl__kv_copy(value, value_len, false);
  pthread_mutex_lock(&table->lock);
  bool added;
  entry *e = find_or_add(table, key, key_len, &added);
  free(e->value);
  e->value = copy;
  e->value_len = value_len;
  pthread_mutex_unlock(&table->lock);
  return SL_OK;
}

static sl_status memory_remove(sl_kv_bucket *bucket, const char *key, size_t key_len,
                               sl_error *err) {
  memory_table *table = bucket->backend;
  entry *before[MAX_HEIGHT];
  pthread_mutex_lock(&table->lock);
  entry *e = seek(table, (const uint8_t *)key, key_len, before);
  if (e && key_compare(e->key, e->key_len, (const uint8_t *)key, key_len) == 0) {
    for (int level = 0; level < e->height; level++) before[level]->next[level] = e->next[level];
    while (table->height > 1 && !table->head->next[table->height - 1]) table->height--;
  } else {
    e = NULL;
  }
  pthread_mutex_unlock(&table->lock);
  if (e) entry_free(e);
  return SL_OK;
}

static sl_status memory_exists(sl_kv_bucket *bucket, const char *key, size_t key_len, bool *exists,
                               sl_error *err) {
  memory_table *table = bucket->backend;
  pthread_mutex_lock(&table->lock);
  *exists = find(table, key, key_len) != NULL;
  pthread_mutex_unlock(&table->lock);
  return SL_OK;
}

static sl_status memory_list_keys(sl_kv_bucket *bucket, const char *cursor, sl_kv_key_page *page,
                                  sl_error *err) {
  memory_table *table = bucket->backend;
  uint8_t *after = NULL;
  size_t after_len = 0;
  if (cursor && !sl__kv_cursor_decode(cursor, &after, &after_len))
    return sl__kv_error(bucket, err, SL_INVALID,
                        "list-keys: \"%.40s\" is not a cursor this bucket returned", cursor);
  pthread_mutex_lock(&table->lock);
  entry *e = table->head->next[0];
  if (cursor) {
    e = seek(table, after, after_len, NULL);
    if (e && key_compare(e->key, e->key_len, after, after_len) == 0) e = e->next[0];
  }
  for (; e && page->count < SL_KV_PAGE_KEYS; e = e->next[0])
    sl__kv_page_add(page, e->key, e->key_len);
  /* More after a full page: the next one starts after its last key. */
  if (e)
    page->cursor =
        sl__kv_cursor_encode(page->keys[page->count - 1], page->key_lens[page->count - 1]);
  pthread_mutex_unlock(&table->lock);
  free(after);
  return SL_OK;
}

static sl_status memory_increment(sl_kv_bucket *bucket, const char *key, size_t key_len,
                                  int64_t delta, int64_t *result, sl_error *err) {
  memory_table *table = bucket->backend;
  sl_status st = SL_OK;
  pthread_mutex_lock(&table->lock);
  int64_t value = 0, sum;
  entry *e = find(table, key, key_len);
  if (e && !sl__kv_counter_parse(e->value, e->value_len, &value)) {
    st = sl__kv_error(bucket, err, SL_INVALID,
                      "increment of '%.*s': the value there is not a decimal integer",
                      (int)(key_len > 100 ? 100 : key_len), key);
    goto done;
  }
  if (!sl__kv_counter_add(value, delta, &sum)) {
    st = sl__kv_error(bucket, err, SL_INVALID,
                      "increment of '%.*s': adding %lld would overflow a 64-bit integer",
                      (int)(key_len > 100 ? 100 : key_len), key, (long long)delta);
    goto done;
  }
  bool added;
  if (!e) e = find_or_add(table, key, key_len, &added);
  char text[21];
  size_t len = sl__kv_counter_format(sum, text);
  free(e->value);
  e->value = sl__kv_copy(text, len, false);
  e->value_len = len;
  *result = sum;
done:
  pthread_mutex_unlock(&table->lock);
  return st;
}

static void memory_close(sl_kv_bucket *bucket) {
  memory_table *table = bucket->backend;
  entry *e = table->head;
  while (e) {
    entry *next = e->next[0];
    entry_free(e);
    e = next;
  }
  pthread_mutex_destroy(&table->lock);
  free(table);
  bucket->backend = NULL;
}

static const sl__kv_ops memory_ops = {
    .get = memory_get,
    .set = memory_set,
    .remove = memory_remove,
    .exists = memory_exists,
    .list_keys = memory_list_keys,
    .increment = memory_increment,
    .close = memory_close,
};

sl_status sl__kv_memory_open(sl_kv_bucket *bucket, sl_error *err) {
  memory_table *table = calloc(1, sizeof *table);
  if (!table) abort();
  pthread_mutex_init(&table->lock, NULL);
  table->head = entry_new(MAX_HEIGHT);
  table->height = 1;
  table->random = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)table;
  bucket->ops = &memory_ops;
  bucket->backend = table;
  return SL_OK;
}
