/*
 * event.h - one record moving through a pipeline, and lists of them.
 *
 * An event is payload bytes plus ordered string metadata (the WIT `event` record).
 * An `sl_event_list` owns every byte its events point to: the events and their data
 * live in one arena, so a whole list is freed in one step.
 */
#ifndef SLUICE_EVENT_H
#define SLUICE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

/* Bytes that are not necessarily NUL-terminated. */
typedef struct sl_bytes {
  const uint8_t *ptr;
  size_t len;
} sl_bytes;

typedef struct sl_meta {
  sl_bytes key;   /* UTF-8 */
  sl_bytes value; /* UTF-8 */
} sl_meta;

typedef struct sl_event {
  sl_bytes payload;
  const sl_meta *meta;
  size_t meta_count;
} sl_event;

/* A bump arena made of chunks; freed all at once. */
typedef struct sl_arena_chunk sl_arena_chunk;
typedef struct sl_arena {
  sl_arena_chunk *head;
  size_t bytes; /* total bytes handed out, for accounting */
} sl_arena;

/* Events and the arena that owns their bytes. Zero-initialise, or call sl_event_list_init. */
typedef struct sl_event_list {
  sl_event *items;
  size_t count;
  size_t capacity;
  sl_arena arena;
} sl_event_list;

void sl_event_list_init(sl_event_list *list);

/* Removes every event and releases the arena, keeping nothing. */
void sl_event_list_clear(sl_event_list *list);

/* Releases everything the list owns; the list may be reused after sl_event_list_init. */
void sl_event_list_destroy(sl_event_list *list);

/*
 * Appends an event with room for `meta_count` pairs and `payload_len` payload bytes,
 * all owned by the list. The caller fills *payload_out (may be NULL when 0) and the
 * pairs through *meta_out. Returns SL_NOMEM only if the host is out of memory.
 */
sl_status sl_event_list_push(sl_event_list *list, size_t payload_len, size_t meta_count,
                             uint8_t **payload_out, sl_meta **meta_out);

/* Copies `len` bytes into the list's arena; the copy lives as long as the list. */
sl_status sl_event_list_copy(sl_event_list *list, const void *src, size_t len, sl_bytes *out);

/* Appends a copy of `ev` (payload and metadata) followed by `extra_count` more metadata
 * pairs; everything is copied into the list's arena. SL_NOMEM only if the host is out of
 * memory. */
sl_status sl_event_list_push_copy(sl_event_list *list, const sl_event *ev, const sl_meta *extra,
                                  size_t extra_count);

/* Convenience for tests and CLIs: an event over C strings (borrowed, not copied). */
sl_bytes sl_bytes_from_cstr(const char *s);

#endif
