/*
 * event.c - event lists and the arena that owns their bytes.
 *
 * Chunks grow geometrically (4 KiB up to 1 MiB, or exactly the size of a larger request),
 * so a list of many small events costs few allocations and a 16 MiB payload costs one.
 */
#include "sluice/event.h"

#include <stdlib.h>
#include <string.h>

struct sl_arena_chunk {
  sl_arena_chunk *next;
  size_t used, size;
  _Alignas(16) uint8_t data[];
};

#define CHUNK_MIN 4096u
#define CHUNK_MAX (1u << 20)

static void *arena_alloc(sl_arena *arena, size_t len, size_t align) {
  sl_arena_chunk *c = arena->head;
  if (c) {
    size_t at = (c->used + align - 1) & ~(align - 1);
    if (at <= c->size && len <= c->size - at) {
      c->used = at + len;
      arena->bytes += len;
      return c->data + at;
    }
  }
  size_t size = c ? c->size * 2 : CHUNK_MIN;
  if (size > CHUNK_MAX) size = CHUNK_MAX;
  if (size < len) size = len;
  sl_arena_chunk *fresh = malloc(sizeof *fresh + size);
  if (!fresh) return NULL;
  fresh->next = c;
  fresh->size = size;
  fresh->used = len;
  arena->head = fresh;
  arena->bytes += len;
  return fresh->data;
}

static void arena_free(sl_arena *arena) {
  for (sl_arena_chunk *c = arena->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  arena->head = NULL;
  arena->bytes = 0;
}

void sl_event_list_init(sl_event_list *list) { memset(list, 0, sizeof *list); }

/* Keeps the newest chunk for reuse: a list cleared after every batch then allocates
 * nothing in steady state. */
void sl_event_list_clear(sl_event_list *list) {
  sl_arena_chunk *keep = list->arena.head;
  if (keep && keep->size > CHUNK_MAX) keep = NULL; /* an outsized chunk is not kept */
  if (keep) {
    list->arena.head = keep->next;
    keep->next = NULL;
    keep->used = 0;
  }
  arena_free(&list->arena);
  list->arena.head = keep;
  list->count = 0;
}

void sl_event_list_destroy(sl_event_list *list) {
  arena_free(&list->arena);
  free(list->items);
  memset(list, 0, sizeof *list);
}

sl_status sl_event_list_push(sl_event_list *list, size_t payload_len, size_t meta_count,
                             uint8_t **payload_out, sl_meta **meta_out) {
  if (list->count == list->capacity) {
    size_t cap = list->capacity ? list->capacity * 2 : 16;
    sl_event *items = realloc(list->items, cap * sizeof *items);
    if (!items) return SL_NOMEM;
    list->items = items;
    list->capacity = cap;
  }
  uint8_t *payload = NULL;
  sl_meta *meta = NULL;
  if (payload_len && !(payload = arena_alloc(&list->arena, payload_len, 1))) return SL_NOMEM;
  if (meta_count) {
    if (meta_count > SIZE_MAX / sizeof *meta) return SL_NOMEM;
    if (!(meta = arena_alloc(&list->arena, meta_count * sizeof *meta, _Alignof(sl_meta))))
      return SL_NOMEM;
    memset(meta, 0, meta_count * sizeof *meta);
  }
  sl_event *e = &list->items[list->count++];
  e->payload = (sl_bytes){payload, payload_len};
  e->meta = meta;
  e->meta_count = meta_count;
  if (payload_out) *payload_out = payload;
  if (meta_out) *meta_out = meta;
  return SL_OK;
}

sl_status sl_event_list_copy(sl_event_list *list, const void *src, size_t len, sl_bytes *out) {
  uint8_t *dst = len ? arena_alloc(&list->arena, len, 1) : NULL;
  if (len && !dst) return SL_NOMEM;
  if (len) memcpy(dst, src, len);
  *out = (sl_bytes){dst, len};
  return SL_OK;
}

static sl_status copy_meta(sl_event_list *list, const sl_meta *src, sl_meta *dst) {
  sl_status st = sl_event_list_copy(list, src->key.ptr, src->key.len, &dst->key);
  return st == SL_OK ? sl_event_list_copy(list, src->value.ptr, src->value.len, &dst->value) : st;
}

sl_status sl_event_list_push_copy(sl_event_list *list, const sl_event *ev, const sl_meta *extra,
                                  size_t extra_count) {
  uint8_t *payload;
  sl_meta *meta;
  sl_status st =
      sl_event_list_push(list, ev->payload.len, ev->meta_count + extra_count, &payload, &meta);
  if (st != SL_OK) return st;
  if (ev->payload.len) memcpy(payload, ev->payload.ptr, ev->payload.len);
  for (size_t m = 0; m < ev->meta_count && st == SL_OK; m++)
    st = copy_meta(list, &ev->meta[m], &meta[m]);
  for (size_t m = 0; m < extra_count && st == SL_OK; m++)
    st = copy_meta(list, &extra[m], &meta[ev->meta_count + m]);
  return st;
}

sl_bytes sl_bytes_from_cstr(const char *s) {
  return (sl_bytes){(const uint8_t *)s, s ? strlen(s) : 0};
}
