/*
 * sluice.h - write a Sluice processor in C: one .c file, this header, one macro.
 *
 *     #include <ctype.h>
 *     #include "sluice.h"
 *
 *     static int upper(const sluice_event *in, sluice_out *out) {
 *       uint8_t *payload = sluice_emit_alloc(out, in->payload.len);
 *       if (payload == NULL) return -1;
 *       for (size_t i = 0; i < in->payload.len; i++)
 *         payload[i] = (uint8_t)toupper(in->payload.ptr[i]);
 *       return 0;
 *     }
 *     SLUICE_PROCESSOR(upper)
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -Isdk/c upper.c -o upper.wasm
 *
 * A processor turns one input event into zero (drop), one (transform) or many (fan-out)
 * output events, or fails it with a message. The host calls it once per event; nothing
 * runs concurrently inside one instance, and an instance may live for millions of events.
 *
 * Memory, the one rule to know: everything the SDK hands you or allocates for you during
 * a call (the input event, emitted payloads and metadata, sluice_alloc, sluice_buf)
 * lives in a per-call arena that is released in one step after the host has copied the
 * result out. You never free any of it, nothing leaks from one event to the next, and you
 * must not keep pointers to it across calls: copy into malloc'd memory what must outlive
 * the event. Configuration (sluice_config_get) lives as long as the instance.
 * Output functions return false (or NULL) when memory runs out; the call then fails with
 * "out of memory" even if the processor ignores the return value.
 *
 * Logging: write whole lines to stderr or stdout (fprintf, printf); the host turns them
 * into log lines tagged with the node id. Files and sockets are not available (WASI calls
 * for them return an error), nor is anything else outside WASI.
 *
 * This header implements the canonical-ABI lowering of the world in wit/processor.wit
 * (exports memory, cabi_realloc, process, cabi_post_process, init, cabi_post_init).
 * Everything in it is static, so include it from exactly one .c file: the processor.
 *
 * Sections: 1. types  2. reading the input  3. emitting output  4. building payloads
 *           5. configuration and init  6. SLUICE_PROCESSOR / SLUICE_INIT
 *           7. implementation (not API: names with a double underscore are private)
 */
#ifndef SLUICE_H
#define SLUICE_H

#if !defined(__wasm32__)
#error "sluice.h builds WebAssembly processors: compile with clang --target=wasm32-wasi"
#endif

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything is static (the processor is one translation unit) and may go unused. */
#define SLUICE__API static __attribute__((unused))

/* ---------------------------------------------------------------------------------------
 * 1. Types
 *
 * On wasm32 these structs have exactly the canonical-ABI layout of the WIT types
 * (`list<u8>`, `tuple<string, string>`, `event`), so the SDK lifts and lowers events
 * without converting them.
 */

/* Bytes that are not NUL-terminated. Metadata keys and values are UTF-8. */
typedef struct sluice_bytes {
  const uint8_t *ptr;
  size_t len;
} sluice_bytes;

/* One metadata pair. */
typedef struct sluice_meta {
  sluice_bytes key;
  sluice_bytes value;
} sluice_meta;

/* One record: payload bytes plus ordered metadata (duplicate keys are possible). */
typedef struct sluice_event {
  sluice_bytes payload;
  const sluice_meta *meta;
  size_t meta_count;
} sluice_event;

_Static_assert(sizeof(sluice_bytes) == 8, "sluice_bytes must be the ABI's list<u8>");
_Static_assert(sizeof(sluice_meta) == 16, "sluice_meta must be the ABI's tuple<string,string>");
_Static_assert(sizeof(sluice_event) == 16, "sluice_event must be the ABI's event record");

/* The result of one call, under construction. Only the functions below touch its fields. */
typedef struct sluice_out {
  const sluice_event *input;
  sluice_event *events;     /* the ABI's list<event>, in the arena */
  uint32_t *meta_capacity;  /* per event: 0 = metadata still borrowed from the input */
  size_t count;
  size_t capacity;
  const char *error;        /* set by sluice_fail: the call returns err(error) */
  size_t error_len;
} sluice_out;

/* The context of an init call, for reporting a configuration error. */
typedef struct sluice_init {
  const char *error;
  size_t error_len;
} sluice_init;

/* A payload built piece by piece in the arena. Zero-initialise it: `sluice_buf b = {0};` */
typedef struct sluice_buf {
  uint8_t *ptr;
  size_t len;
  size_t cap;
} sluice_buf;

/* The processor function: fill `out`, return 0 for ok or non-zero for err (with the message
 * given to sluice_fail). `in` and everything it points to are borrowed for the call. */
typedef int (*sluice_process_fn)(const sluice_event *in, sluice_out *out);

/* The optional init function: read configuration with sluice_config_get, return 0 to accept
 * it or `sluice_init_fail(init, "...")` to refuse it (the node then does not start). */
typedef int (*sluice_init_fn)(sluice_init *init);

/* ---------------------------------------------------------------------------------------
 * 2. Reading the input
 */

/* A NUL-terminated string as bytes (borrowed, not copied). */
SLUICE__API sluice_bytes sluice_str(const char *s) {
  sluice_bytes bytes = {(const uint8_t *)s, strlen(s)};
  return bytes;
}

/* True when `bytes` holds exactly the characters of the C string `s`. */
SLUICE__API bool sluice_bytes_equal(sluice_bytes bytes, const char *s) {
  size_t len = strlen(s);
  return bytes.len == len && (len == 0 || memcmp(bytes.ptr, s, len) == 0);
}

/* The value of the first metadata pair whose key is `key`, or NULL when there is none.
 * The pointer is borrowed from `event` and is valid as long as the event is. */
SLUICE__API const sluice_bytes *sluice_meta_get(const sluice_event *event, const char *key) {
  for (size_t i = 0; i < event->meta_count; i++)
    if (sluice_bytes_equal(event->meta[i].key, key)) return &event->meta[i].value;
  return NULL;
}

/* ---------------------------------------------------------------------------------------
 * 3. Emitting output
 *
 * Every emitted event starts with the input's metadata, as a transform expects; change
 * it with the sluice_meta_* functions, which act on the event emitted last. Events are
 * returned to the host in the order they were emitted. Emitting nothing drops the input.
 */

/* Appends an event whose payload is a copy of `payload` (`len` bytes). */
SLUICE__API bool sluice_emit(sluice_out *out, const void *payload, size_t len);

/* Appends an event whose payload is `payload` itself, not a copy. The bytes must stay
 * valid until the call returns to the host: the input's bytes, static data, sluice_alloc
 * memory and sluice_buf contents qualify; a local array on the stack does not. */
SLUICE__API bool sluice_emit_ref(sluice_out *out, const void *payload, size_t len);

/* Appends an event with a `len`-byte payload for the caller to fill in, and returns it
 * (NULL when out of memory). Writing the output in place saves a copy. */
SLUICE__API uint8_t *sluice_emit_alloc(sluice_out *out, size_t len);

/* Appends the input event unchanged, payload and metadata, without copying anything. */
SLUICE__API bool sluice_forward(sluice_out *out, const sluice_event *in);

/* Sets metadata `key` of the last emitted event to `value` (both copied): replaces the
 * first pair with that key, or appends a pair. False when out of memory or when no event
 * has been emitted yet (that misuse also fails the call, so it cannot go unnoticed). */
SLUICE__API bool sluice_meta_set(sluice_out *out, const char *key, const char *value);
SLUICE__API bool sluice_meta_set_bytes(sluice_out *out, sluice_bytes key, sluice_bytes value);

/* Removes every pair with key `key` from the last emitted event. */
SLUICE__API bool sluice_meta_remove(sluice_out *out, const char *key);

/* Removes all metadata from the last emitted event. */
SLUICE__API bool sluice_meta_clear(sluice_out *out);

/* Fails the call: the host receives err(message) and the input event goes to the node's
 * `.errors` output; events emitted so far are discarded. `message` is copied. Returns -1
 * so a processor can `return sluice_fail(out, "...");`. */
SLUICE__API int sluice_fail(sluice_out *out, const char *message);

/* sluice_fail with a printf format (pulls printf into the module, ~20 KiB). */
SLUICE__API int sluice_failf(sluice_out *out, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------------------
 * 4. Building payloads
 */

/* `size` bytes of arena memory, aligned to 8, valid until the call returns to the host
 * (never free it). NULL when out of memory or when `size` is 0. */
SLUICE__API void *sluice_alloc(size_t size);

/* Appends `len` bytes to `buf`, growing it in the arena. Emit the result with
 * sluice_emit_ref(out, buf.ptr, buf.len): no further copy is needed. False when out of
 * memory. */
SLUICE__API bool sluice_buf_append(sluice_buf *buf, const void *bytes, size_t len);

/* sluice_buf_append for a NUL-terminated string and for one byte. */
SLUICE__API bool sluice_buf_append_str(sluice_buf *buf, const char *s) {
  return sluice_buf_append(buf, s, strlen(s));
}
SLUICE__API bool sluice_buf_append_byte(sluice_buf *buf, uint8_t byte) {
  return sluice_buf_append(buf, &byte, 1);
}

/* ---------------------------------------------------------------------------------------
 * 5. Configuration and init
 *
 * The node's `config` map from the pipeline file reaches the processor once, before the
 * first event. The SDK keeps a copy for the life of the instance, in init and in every
 * call, whether or not the processor declares an init function.
 */

/* The value of configuration key `key` as a NUL-terminated string owned by the SDK and
 * valid for the life of the instance, or NULL when the key is not configured. */
SLUICE__API const char *sluice_config_get(const char *key);

/* sluice_config_get, with `fallback` (borrowed, returned as is) when the key is absent. */
SLUICE__API const char *sluice_config_or(const char *key, const char *fallback);

/* Refuses the configuration with `message` (copied); returns -1 for `return`. */
SLUICE__API int sluice_init_fail(sluice_init *init, const char *message);
SLUICE__API int sluice_init_failf(sluice_init *init, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------------------------
 * 6. Declaring the processor
 *
 * SLUICE_PROCESSOR(fn) defines the module's exports and must appear exactly once, at file
 * scope, after `fn` (a sluice_process_fn). SLUICE_INIT(fn) is optional, at file scope
 * after `fn` (a sluice_init_fn), which then runs once per instance after the
 * configuration has been stored. Neither needs a semicolon.
 *
 * `init` is exported even without SLUICE_INIT, so sluice_config_get always works.
 * cabi_post_process and cabi_post_init release the call's arena. The ABI lets a host
 * skip them; Sluice never does, and a host that did would see the arena grow.
 */
#define SLUICE_PROCESSOR(fn)                                                           \
  __attribute__((export_name("cabi_realloc"))) void *sluice__export_realloc(           \
      void *old_ptr, size_t old_size, size_t align, size_t new_size) {                 \
    return sluice__realloc(old_ptr, old_size, align, new_size);                        \
  }                                                                                    \
  __attribute__((export_name("process"))) void *sluice__export_process(                \
      const uint8_t *payload, size_t payload_len, const sluice_meta *meta,             \
      size_t meta_count) {                                                             \
    return sluice__process((fn), payload, payload_len, meta, meta_count);              \
  }                                                                                    \
  __attribute__((export_name("cabi_post_process"))) void sluice__export_post_process(  \
      void *result) {                                                                  \
    (void)result;                                                                      \
    sluice__arena_reset();                                                             \
  }                                                                                    \
  __attribute__((export_name("init"))) void *sluice__export_init(                      \
      const sluice_meta *config, size_t config_count) {                                \
    return sluice__init(config, config_count);                                         \
  }                                                                                    \
  __attribute__((export_name("cabi_post_init"))) void sluice__export_post_init(        \
      void *result) {                                                                  \
    (void)result;                                                                      \
    sluice__arena_reset();                                                             \
  }

#define SLUICE_INIT(fn) static sluice_init_fn sluice__init_hook = (fn);

/* ---------------------------------------------------------------------------------------
 * 7. Implementation
 *
 * The arena is a list of malloc'd chunks. cabi_realloc allocates from it, so the host's
 * copy of the input lands there too; cabi_post_process and cabi_post_init release it all,
 * keeping one standard chunk so a steady stream of small events never calls malloc.
 * Allocations larger than a quarter chunk get a chunk of their own, freed at the reset.
 */

#define SLUICE__CHUNK_SIZE ((size_t)64 * 1024)
#define SLUICE__ALIGN ((size_t)8)

typedef struct sluice__chunk {
  struct sluice__chunk *next;
  size_t size; /* bytes in data[] */
  size_t used;
  _Alignas(SLUICE__ALIGN) uint8_t data[];
} sluice__chunk;

static struct {
  sluice__chunk *head;  /* the chunk small allocations come from; then the others */
  uint8_t *last;        /* start of the latest allocation in head, which may grow in place */
  bool out_of_memory;   /* an allocation failed during this call */
} sluice__arena;

/* Where zero-length allocations point: aligned, never written, never freed. */
static _Alignas(SLUICE__ALIGN) uint8_t sluice__empty[SLUICE__ALIGN];

/* The tentative definition SLUICE_INIT completes; NULL when the processor has no init. */
static sluice_init_fn sluice__init_hook;

/* The configuration: `count` pairs of NUL-terminated strings, malloc'd, instance-long. */
static struct {
  char **pairs; /* key0, value0, key1, value1, ... */
  size_t count;
} sluice__config;

/* The result area the ABI returns a pointer to: result<list<event>, string>. */
static struct {
  uint8_t discriminant; /* 0 ok, 1 err */
  const void *ptr;      /* ok: the events; err: the message */
  size_t len;
} sluice__result;
_Static_assert(offsetof(__typeof__(sluice__result), ptr) == 4, "result payload at offset 4");
_Static_assert(sizeof(sluice__result) == 12, "result area is 12 bytes");

static sluice_out sluice__out;

static const char sluice__oom[] = "out of memory";

SLUICE__API uintptr_t sluice__align_up(uintptr_t value, size_t align) {
  return (value + (align - 1)) & ~(uintptr_t)(align - 1);
}

SLUICE__API void *sluice__arena_alloc(size_t size, size_t align) {
  if (size == 0) return sluice__empty;
  if (align < SLUICE__ALIGN) align = SLUICE__ALIGN;
  if ((align & (align - 1)) != 0 || size > SIZE_MAX / 4) goto fail;

  sluice__chunk *head = sluice__arena.head;
  if (head != NULL) {
    uintptr_t start = sluice__align_up((uintptr_t)head->data + head->used, align);
    if (start + size <= (uintptr_t)head->data + head->size) {
      head->used = start + size - (uintptr_t)head->data;
      sluice__arena.last = (uint8_t *)start;
      return (void *)start;
    }
  }

  bool own_chunk = size > SLUICE__CHUNK_SIZE / 4;
  size_t chunk_size = own_chunk ? size + align : SLUICE__CHUNK_SIZE;
  sluice__chunk *chunk = malloc(sizeof(sluice__chunk) + chunk_size);
  if (chunk == NULL) goto fail;
  chunk->size = chunk_size;
  uintptr_t start = sluice__align_up((uintptr_t)chunk->data, align);
  chunk->used = start + size - (uintptr_t)chunk->data;
  if (own_chunk && head != NULL) {
    /* Behind the head, so the head's free space keeps serving small allocations. */
    chunk->next = head->next;
    head->next = chunk;
  } else {
    chunk->next = head;
    sluice__arena.head = chunk;
    sluice__arena.last = (uint8_t *)start;
  }
  return (void *)start;

fail:
  sluice__arena.out_of_memory = true;
  return NULL;
}

/* cabi_realloc: the canonical ABI allocates (old_ptr == NULL) and never shrinks, but
 * every case is handled. The latest allocation grows in place when the head has room. */
SLUICE__API void *sluice__realloc(void *old_ptr, size_t old_size, size_t align, size_t new_size) {
  if (old_ptr == NULL || old_ptr == sluice__empty || old_size == 0)
    return sluice__arena_alloc(new_size, align);
  if (new_size <= old_size) return old_ptr;
  sluice__chunk *head = sluice__arena.head;
  if ((uint8_t *)old_ptr == sluice__arena.last && new_size <= SIZE_MAX / 4) {
    size_t offset = (size_t)((uint8_t *)old_ptr - head->data);
    if (offset + new_size <= head->size) {
      head->used = offset + new_size;
      return old_ptr;
    }
  }
  void *new_ptr = sluice__arena_alloc(new_size, align);
  if (new_ptr != NULL) memcpy(new_ptr, old_ptr, old_size);
  return new_ptr;
}

SLUICE__API void sluice__arena_reset(void) {
  sluice__chunk *kept = NULL;
  sluice__chunk *chunk = sluice__arena.head;
  while (chunk != NULL) {
    sluice__chunk *next = chunk->next;
    if (kept == NULL && chunk->size == SLUICE__CHUNK_SIZE) {
      kept = chunk;
    } else {
      free(chunk);
    }
    chunk = next;
  }
  if (kept != NULL) {
    kept->next = NULL;
    kept->used = 0;
  }
  sluice__arena.head = kept;
  sluice__arena.last = NULL;
  sluice__arena.out_of_memory = false;
}

SLUICE__API void *sluice_alloc(size_t size) {
  return size == 0 ? NULL : sluice__arena_alloc(size, SLUICE__ALIGN);
}

SLUICE__API bool sluice_buf_append(sluice_buf *buf, const void *bytes, size_t len) {
  if (len == 0) return true;
  if (len > buf->cap - buf->len) {
    if (len > SIZE_MAX / 4 - buf->len) return false;
    size_t cap = buf->cap < 64 ? 64 : buf->cap;
    while (cap < buf->len + len) cap *= 2;
    uint8_t *grown = buf->ptr == NULL ? sluice__arena_alloc(cap, 1)
                                      : sluice__realloc(buf->ptr, buf->cap, 1, cap);
    if (grown == NULL) return false;
    buf->ptr = grown;
    buf->cap = cap;
  }
  memcpy(buf->ptr + buf->len, bytes, len);
  buf->len += len;
  return true;
}

/* A copy of `len` bytes in the arena; NULL only when out of memory. */
SLUICE__API bool sluice__bytes_same(sluice_bytes a, sluice_bytes b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

SLUICE__API const uint8_t *sluice__dup(const void *bytes, size_t len) {
  uint8_t *copy = sluice__arena_alloc(len, 1);
  if (copy != NULL && len > 0) memcpy(copy, bytes, len);
  return copy;
}

/* Stores a copy of a failure message in `*error`; static text when memory is gone. */
SLUICE__API void sluice__set_error(const char **error, size_t *error_len, const char *message,
                              size_t len) {
  const uint8_t *copy = sluice__dup(message, len);
  if (copy == NULL) {
    *error = sluice__oom;
    *error_len = sizeof sluice__oom - 1;
    return;
  }
  *error = (const char *)copy;
  *error_len = len;
}

SLUICE__API void sluice__set_errorv(const char **error, size_t *error_len, const char *format,
                               va_list args) {
  char message[512];
  int len = vsnprintf(message, sizeof message, format, args);
  if (len < 0) len = 0;
  if ((size_t)len >= sizeof message) len = sizeof message - 1;
  sluice__set_error(error, error_len, message, (size_t)len);
}

SLUICE__API bool sluice__push(sluice_out *out, const uint8_t *payload, size_t len) {
  if (out->count == out->capacity) {
    size_t capacity = out->capacity == 0 ? 4 : out->capacity * 2;
    sluice_event *events =
        sluice__realloc(out->events, out->capacity * sizeof *events, 4, capacity * sizeof *events);
    uint32_t *meta_capacity = sluice__arena_alloc(capacity * sizeof *meta_capacity, 4);
    if (events == NULL || meta_capacity == NULL) return false;
    if (out->count > 0)
      memcpy(meta_capacity, out->meta_capacity, out->count * sizeof *meta_capacity);
    out->events = events;
    out->meta_capacity = meta_capacity;
    out->capacity = capacity;
  }
  sluice_event *event = &out->events[out->count];
  event->payload.ptr = len == 0 ? sluice__empty : payload;
  event->payload.len = len;
  event->meta = out->input->meta;
  event->meta_count = out->input->meta_count;
  out->meta_capacity[out->count] = 0;
  out->count++;
  return true;
}

SLUICE__API bool sluice_emit_ref(sluice_out *out, const void *payload, size_t len) {
  return sluice__push(out, payload, len);
}

SLUICE__API bool sluice_emit(sluice_out *out, const void *payload, size_t len) {
  const uint8_t *copy = sluice__dup(payload, len);
  return copy != NULL && sluice__push(out, copy, len);
}

SLUICE__API uint8_t *sluice_emit_alloc(sluice_out *out, size_t len) {
  uint8_t *payload = sluice__arena_alloc(len, 1);
  if (payload == NULL || !sluice__push(out, payload, len)) return NULL;
  return payload;
}

SLUICE__API bool sluice_forward(sluice_out *out, const sluice_event *in) {
  if (!sluice__push(out, in->payload.ptr, in->payload.len)) return false;
  out->events[out->count - 1].meta = in->meta;
  out->events[out->count - 1].meta_count = in->meta_count;
  return true;
}

/* The last event's metadata as an owned array with room for `extra` more pairs. */
SLUICE__API sluice_meta *sluice__meta_own(sluice_out *out, size_t extra) {
  if (out->count == 0) {
    sluice_fail(out, "sluice.h: metadata was changed before any event was emitted");
    return NULL;
  }
  sluice_event *event = &out->events[out->count - 1];
  uint32_t *capacity = &out->meta_capacity[out->count - 1];
  size_t needed = event->meta_count + extra;
  /* With a capacity the array is the SDK's own, so dropping `const` is sound. */
  sluice_meta *owned = *capacity > 0 ? (sluice_meta *)(uintptr_t)event->meta : NULL;
  if (owned != NULL && *capacity >= needed) return owned;
  size_t grown = needed < 4 ? 4 : needed * 2;
  sluice_meta *meta = owned == NULL ? sluice__arena_alloc(grown * sizeof *meta, 4)
                                    : sluice__realloc(owned, *capacity * sizeof *meta, 4,
                                                      grown * sizeof *meta);
  if (meta == NULL) return NULL;
  if (*capacity == 0 && event->meta_count > 0)
    memcpy(meta, event->meta, event->meta_count * sizeof *meta);
  event->meta = meta;
  *capacity = (uint32_t)grown;
  return meta;
}

SLUICE__API bool sluice_meta_set_bytes(sluice_out *out, sluice_bytes key, sluice_bytes value) {
  sluice_meta *meta = sluice__meta_own(out, 1);
  const uint8_t *key_copy = sluice__dup(key.ptr, key.len);
  const uint8_t *value_copy = sluice__dup(value.ptr, value.len);
  if (meta == NULL || key_copy == NULL || value_copy == NULL) return false;
  sluice_event *event = &out->events[out->count - 1];
  size_t i = 0;
  while (i < event->meta_count && !sluice__bytes_same(meta[i].key, key)) i++;
  meta[i].key.ptr = key_copy;
  meta[i].key.len = key.len;
  meta[i].value.ptr = value_copy;
  meta[i].value.len = value.len;
  if (i == event->meta_count) event->meta_count++;
  return true;
}

SLUICE__API bool sluice_meta_set(sluice_out *out, const char *key, const char *value) {
  return sluice_meta_set_bytes(out, sluice_str(key), sluice_str(value));
}

SLUICE__API bool sluice_meta_remove(sluice_out *out, const char *key) {
  sluice_meta *meta = sluice__meta_own(out, 0);
  if (meta == NULL) return false;
  sluice_event *event = &out->events[out->count - 1];
  size_t kept = 0;
  for (size_t i = 0; i < event->meta_count; i++)
    if (!sluice_bytes_equal(meta[i].key, key)) meta[kept++] = meta[i];
  event->meta_count = kept;
  return true;
}

SLUICE__API bool sluice_meta_clear(sluice_out *out) {
  if (sluice__meta_own(out, 0) == NULL) return false;
  out->events[out->count - 1].meta_count = 0;
  return true;
}

SLUICE__API int sluice_fail(sluice_out *out, const char *message) {
  sluice__set_error(&out->error, &out->error_len, message, strlen(message));
  return -1;
}

SLUICE__API int sluice_failf(sluice_out *out, const char *format, ...) {
  va_list args;
  va_start(args, format);
  sluice__set_errorv(&out->error, &out->error_len, format, args);
  va_end(args);
  return -1;
}

SLUICE__API int sluice_init_fail(sluice_init *init, const char *message) {
  sluice__set_error(&init->error, &init->error_len, message, strlen(message));
  return -1;
}

SLUICE__API int sluice_init_failf(sluice_init *init, const char *format, ...) {
  va_list args;
  va_start(args, format);
  sluice__set_errorv(&init->error, &init->error_len, format, args);
  va_end(args);
  return -1;
}

SLUICE__API const char *sluice_config_get(const char *key) {
  for (size_t i = 0; i < sluice__config.count; i++)
    if (strcmp(sluice__config.pairs[2 * i], key) == 0) return sluice__config.pairs[2 * i + 1];
  return NULL;
}

SLUICE__API const char *sluice_config_or(const char *key, const char *fallback) {
  const char *value = sluice_config_get(key);
  return value != NULL ? value : fallback;
}

SLUICE__API void sluice__config_free(void) {
  for (size_t i = 0; i < 2 * sluice__config.count; i++) free(sluice__config.pairs[i]);
  free(sluice__config.pairs);
  sluice__config.pairs = NULL;
  sluice__config.count = 0;
}

SLUICE__API char *sluice__strndup(sluice_bytes bytes) {
  char *copy = malloc(bytes.len + 1);
  if (copy == NULL) return NULL;
  if (bytes.len > 0) memcpy(copy, bytes.ptr, bytes.len);
  copy[bytes.len] = '\0';
  return copy;
}

/* Fills the result area as err(message) or ok(events) and returns its address. */
SLUICE__API void *sluice__finish(const char *error, size_t error_len, const void *ptr, size_t len) {
  if (sluice__arena.out_of_memory) {
    error = sluice__oom;
    error_len = sizeof sluice__oom - 1;
  }
  if (error != NULL) {
    sluice__result.discriminant = 1;
    sluice__result.ptr = error;
    sluice__result.len = error_len;
  } else {
    sluice__result.discriminant = 0;
    sluice__result.ptr = ptr;
    sluice__result.len = len;
  }
  return &sluice__result;
}

/* init: copies the configuration out of the arena (which cabi_post_init releases), then
 * runs the processor's init function, if any. */
SLUICE__API void *sluice__init(const sluice_meta *config, size_t count) {
  sluice_init init = {NULL, 0};
  sluice__config_free();
  sluice__config.pairs = calloc(2 * count + 1, sizeof(char *));
  if (sluice__config.pairs == NULL)
    return sluice__finish(sluice__oom, sizeof sluice__oom - 1, NULL, 0);
  for (size_t i = 0; i < count; i++) {
    char *key = sluice__strndup(config[i].key);
    char *value = sluice__strndup(config[i].value);
    sluice__config.pairs[2 * i] = key;
    sluice__config.pairs[2 * i + 1] = value;
    sluice__config.count = i + 1;
    if (key == NULL || value == NULL) {
      sluice__config_free();
      return sluice__finish(sluice__oom, sizeof sluice__oom - 1, NULL, 0);
    }
  }
  int status = sluice__init_hook != NULL ? sluice__init_hook(&init) : 0;
  if (status != 0 && init.error == NULL) sluice_init_fail(&init, "init failed");
  return sluice__finish(init.error, init.error_len, NULL, 0);
}

SLUICE__API void *sluice__process(sluice_process_fn fn, const uint8_t *payload, size_t payload_len,
                             const sluice_meta *meta, size_t meta_count) {
  sluice_event input = {{payload, payload_len}, meta, meta_count};
  sluice_out *out = &sluice__out;
  memset(out, 0, sizeof *out);
  out->input = &input;
  int status = fn(&input, out);
  if (status != 0 && out->error == NULL) sluice_fail(out, "processor failed");
  return sluice__finish(out->error, out->error_len, out->events, out->count);
}

#endif
