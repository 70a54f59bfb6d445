/*
 * store.c - the arena behind sl_pipeline_spec.storage: a list of chunks, bump-allocated,
 * freed all at once.
 */
#include "config/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK_SIZE = 16384, ALIGN = 16 };

typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char bytes[];
} chunk;

struct sl_conf_store {
  chunk *head;
};

sl_conf_store *sl__store_new(void) {
  sl_conf_store *store = calloc(1, sizeof *store);
  if (!store) abort();
  return store;
}

void sl__store_free(sl_conf_store *store) {
  if (!store) return;
  chunk *c = store->head;
  while (c) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
  free(store);
}

void *sl__store_alloc(sl_conf_store *store, size_t size) {
  size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (size == 0) size = ALIGN;
  chunk *c = store->head;
  if (!c || c->cap - c->used < size) {
    /* Large requests get a chunk of their own, behind the current one, so the space
     * left in the current chunk is not wasted. */
    size_t cap = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
    chunk *fresh = malloc(sizeof *fresh + cap);
    if (!fresh) abort();
    fresh->used = 0;
    fresh->cap = cap;
    if (c && cap != CHUNK_SIZE) {
      fresh->next = c->next;
      c->next = fresh;
    } else {
      fresh->next = c;
      store->head = fresh;
    }
    c = fresh;
  }
  void *p = c->bytes + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

void *sl__store_array(sl_conf_store *store, size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) abort();
  return sl__store_alloc(store, count * size);
}

char *sl__store_strndup(sl_conf_store *store, const char *text, size_t len) {
  char *copy = sl__store_alloc(store, len + 1);
  if (len) memcpy(copy, text, len);
  copy[len] = '\0';
  return copy;
}

char *sl__store_strdup(sl_conf_store *store, const char *text) {
  return sl__store_strndup(store, text, strlen(text));
}

char *sl__store_printf(sl_conf_store *store, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) abort();
  char *out = sl__store_alloc(store, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(out, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return out;
}
