/*
 * host_call.h - what every capability import (host_*.c) does on the way in and out.
 *
 *   void sl_host_x(void *ctx, u32 a, ...) {
 *     sl_instance *inst = sl__host_enter(ctx);
 *     ... read arguments (sl__host_arg_*: a bad span traps with bad-import-call) ...
 *     ... do the work; park any host allocation with sl__host_park ...
 *     ... lower results (sl__guest_alloc may call the guest and trap) ...
 *     ... write the return area last (sl__host_ret) ...
 *     sl__host_leave(inst);
 *   }
 *
 * Host code runs with in_guest cleared, so a fault in it is a host bug and crashes loudly
 * instead of being blamed on the guest. Nothing may be locked or unparked when lowering
 * starts: a trap there jumps straight back to the call guard.
 */
#ifndef SL_WASM_HOST_CALL_H
#define SL_WASM_HOST_CALL_H

#include "wasm/guest_memory.h"

static inline sl_instance *sl__host_enter(void *ctx) {
  sl_instance *inst = ctx;
  inst->thread->in_guest = 0;
  if (inst->host.pending) {
    inst->host.pending_free(inst->host.pending);
    inst->host.pending = NULL;
  }
  return inst;
}

static inline void sl__host_leave(sl_instance *inst) { inst->thread->in_guest = 1; }

/* Keeps `pending` until the next import call or the instance's end (see instance.h). */
static inline void sl__host_park(sl_instance *inst, void *pending, void (*free_fn)(void *)) {
  inst->host.pending = pending;
  inst->host.pending_free = free_fn;
}

/* Guest bytes passed to an import. */
static inline const uint8_t *sl__host_arg_bytes(sl_instance *inst, uint32_t ptr, uint32_t len,
                                                const char *what) {
  sl_span_label none = {NULL, -1};
  return sl__guest_span_as(inst, SL_FAULT_BAD_IMPORT_CALL, ptr, len, 1, what, none);
}

/* A string argument: bytes that must be valid UTF-8 (the canonical ABI traps otherwise). */
const uint8_t *sl__host_arg_string(sl_instance *inst, uint32_t ptr, uint32_t len,
                                   const char *what);

/* The return area the guest passed: `size` bytes, `align`-aligned, zeroed. */
static inline uint8_t *sl__host_ret(sl_instance *inst, uint32_t ptr, uint32_t size,
                                    uint32_t align) {
  sl_span_label none = {NULL, -1};
  uint8_t *area =
      sl__guest_span_as(inst, SL_FAULT_BAD_IMPORT_CALL, ptr, size, align, "return area", none);
  memset(area, 0, size);
  return area;
}

/* Lowers a string (ptr, len) into guest memory; returns the pointer. */
static inline uint32_t sl__host_lower_string(sl_instance *inst, const char *s, size_t len) {
  return sl__guest_lower_bytes(inst, s, len, "string");
}

#endif
