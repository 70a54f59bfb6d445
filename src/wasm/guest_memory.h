/*
 * guest_memory.h - reading and writing a guest's linear memory from host code, for the
 * canonical ABI on both sides: exports the host calls (abi.c) and imports the guest calls
 * (host_*.c).
 *
 * Every access is bounds-checked against the current memory size; a bad span traps the
 * call (longjmp) with the fault kind the caller names. Host pointers into guest memory are
 * valid only until the next guest call: memory may grow, and move, whenever guest code
 * runs, cabi_realloc included.
 */
#ifndef SL_WASM_GUEST_MEMORY_H
#define SL_WASM_GUEST_MEMORY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/utf8.h"
#include "sluice/event.h"
#include "wasm/instance.h"
#include "wasm/runtime.h"

/* Calls into the guest with in_guest set, so a fault inside is the guest's, while one in
 * host code between calls still crashes loudly as a host bug would. */
#define GUEST_CALL(inst, expr)                                                                     \
  ({                                                                                               \
    (inst)->thread->in_guest = 1;                                                                  \
    __typeof__(expr) r_ = (expr);                                                                  \
    (inst)->thread->in_guest = 0;                                                                  \
    r_;                                                                                            \
  })
#define GUEST_CALL_VOID(inst, expr)                                                                \
  do {                                                                                             \
    (inst)->thread->in_guest = 1;                                                                  \
    expr;                                                                                          \
    (inst)->thread->in_guest = 0;                                                                  \
  } while (0)

/* Names what a check was about, formatted only when the check fails (the success path
 * runs per event and must not pay for messages). `index` < 0 means "no event number". */
typedef struct sl_span_label {
  const char *what;
  long index;
} sl_span_label;

/* Traps the current call with `kind` and a formatted detail; never returns. */
__attribute__((noreturn, format(printf, 2, 3))) void sl__guest_trap(sl_fault_kind kind,
                                                                    const char *fmt, ...);

__attribute__((noreturn)) void sl__guest_span_failed(sl_instance *inst, sl_fault_kind kind,
                                                     sl_span_label label, const char *what,
                                                     uint32_t ptr, uint64_t len, uint32_t align,
                                                     bool misaligned);

/* A host pointer to guest bytes [ptr, ptr+len), or a trap with `kind`. */
static inline uint8_t *sl__guest_span_as(sl_instance *inst, sl_fault_kind kind, uint32_t ptr,
                                         uint64_t len, uint32_t align, const char *what,
                                         sl_span_label label) {
  if (__builtin_expect((uint64_t)ptr + len > inst->memory->size, 0))
    sl__guest_span_failed(inst, kind, label, what, ptr, len, align, false);
  if (align > 1 && __builtin_expect(ptr & (align - 1), 0))
    sl__guest_span_failed(inst, kind, label, what, ptr, len, align, true);
  return inst->memory->data + ptr;
}

static inline uint32_t sl__read_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline void sl__write_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static inline bool sl__valid_utf8(const uint8_t *s, size_t len) {
  return sl__utf8_valid(s, len, NULL);
}

/* Allocates `size` bytes in the guest through its cabi_realloc; traps with out-of-memory
 * when it cannot. `what` names the allocation in that message. */
uint32_t sl__guest_alloc(sl_instance *inst, uint32_t align, uint64_t size, const char *what);

/* Copies bytes into a fresh guest allocation; returns its address. */
uint32_t sl__guest_lower_bytes(sl_instance *inst, const void *bytes, size_t len, const char *what);

/* list<tuple<string, string>> from host pairs: `keys[i]`/`values[i]` are sl_bytes spaced
 * `stride` bytes apart. Returns the list's address (allocated even when empty). */
uint32_t sl__guest_lower_pairs(sl_instance *inst, const sl_bytes *keys, const sl_bytes *values,
                               size_t stride, size_t count);

#endif
