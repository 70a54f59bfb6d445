/*
 * guest_abi.h - the few lines of canonical-ABI glue the C benchmark guests need, written
 * out here (rather than taken from sdk/c) so the benchmarks measure the engine, not
 * whichever SDK version is checked out. The layouts are those of wit/processor.wit:
 * event = 16 bytes, tuple<string,string> = 16 bytes, result<list<event>, string> = 12.
 *
 * Memory for the host's lowering comes from a static bump arena that cabi_post_process
 * resets after every call, so nothing accumulates across events.
 */
#ifndef BENCH_GUEST_ABI_H
#define BENCH_GUEST_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GUEST_EXPORT(name) __attribute__((export_name(name)))

typedef struct guest_bytes {
  const uint8_t *ptr;
  size_t len;
} guest_bytes;

typedef struct guest_meta {
  guest_bytes key, value;
} guest_meta;

typedef struct guest_event {
  guest_bytes payload;
  const guest_meta *meta;
  size_t meta_count;
} guest_event;

/* result<list<event>, string> and result<_, string>: u8 tag at 0, (ptr, len) at 4. */
typedef struct guest_result {
  uint8_t tag;
  const void *ptr;
  size_t len;
} guest_result;

_Static_assert(sizeof(guest_event) == 16 && sizeof(guest_meta) == 16, "ABI layout");
_Static_assert(sizeof(guest_result) == 12, "ABI layout");

#ifndef GUEST_ARENA_BYTES
#define GUEST_ARENA_BYTES (256u << 10)
#endif

static _Alignas(16) uint8_t guest_arena[GUEST_ARENA_BYTES];
static size_t guest_arena_used;
static guest_result guest_result_area;

GUEST_EXPORT("cabi_realloc")
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t size) {
  size_t at = (guest_arena_used + align - 1) & ~(align - 1);
  if (at > GUEST_ARENA_BYTES || size > GUEST_ARENA_BYTES - at) return NULL; /* host: OOM */
  guest_arena_used = at + size;
  if (old) memcpy(guest_arena + at, old, old_size < size ? old_size : size);
  return guest_arena + at;
}

GUEST_EXPORT("cabi_post_process")
void cabi_post_process(guest_result *result) {
  (void)result;
  guest_arena_used = 0;
}

static inline guest_result *guest_ok(const guest_event *events, size_t count) {
  guest_result_area = (guest_result){0, events, count};
  return &guest_result_area;
}

static inline guest_result *guest_err(const char *message) {
  guest_result_area = (guest_result){1, message, strlen(message)};
  return &guest_result_area;
}

#endif
