/*
 * guest_memory.c - bounds-checked access to guest memory (see guest_memory.h).
 */
#include "wasm/guest_memory.h"

#include <stdarg.h>
#include <stdio.h>

void sl__guest_trap(sl_fault_kind kind, const char *fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  sl__rt_trap(kind, detail);
}

void sl__guest_span_failed(sl_instance *inst, sl_fault_kind kind, sl_span_label label,
                           const char *what, uint32_t ptr, uint64_t len, uint32_t align,
                           bool misaligned) {
  char name[96];
  if (label.index >= 0)
    snprintf(name, sizeof name, "event %ld %s", label.index, what);
  else
    snprintf(name, sizeof name, "%s", what);
  if (misaligned) sl__guest_trap(kind, "%s at %u is not %u-byte aligned", name, ptr, align);
  sl__guest_trap(kind, "%s [ptr=%u, len=%llu] lies outside the %llu-byte linear memory", name, ptr,
                 (unsigned long long)len, (unsigned long long)inst->memory->size);
}


uint32_t sl__guest_alloc(sl_instance *inst, uint32_t align, uint64_t size, const char *what) {
  if (size > UINT32_MAX)
    sl__guest_trap(SL_FAULT_OUT_OF_MEMORY, "%s of %llu bytes does not fit in 32-bit guest memory",
                   what, (unsigned long long)size);
  uint32_t ptr = GUEST_CALL(inst, inst->api->realloc(inst->guest, 0, 0, align, (uint32_t)size));
  if (ptr == 0 && size > 0)
    sl__guest_trap(SL_FAULT_OUT_OF_MEMORY, "cabi_realloc could not allocate %llu bytes for the %s",
                   (unsigned long long)size, what);
  sl_span_label none = {NULL, -1};
  sl__guest_span_as(inst, SL_FAULT_BAD_RESULT, ptr, size, align, "cabi_realloc's allocation", none);
  return ptr;
}

uint32_t sl__guest_lower_bytes(sl_instance *inst, const void *bytes, size_t len, const char *what) {
  uint32_t ptr = sl__guest_alloc(inst, 1, len, what);
  if (len) memcpy(inst->memory->data + ptr, bytes, len);
  return ptr;
}

uint32_t sl__guest_lower_pairs(sl_instance *inst, const sl_bytes *keys, const sl_bytes *values,
                               size_t stride, size_t count) {
  /* Like other component hosts, the list is allocated even when empty (size 0). */
  uint32_t array = sl__guest_alloc(inst, 4, (uint64_t)count * 16, "list of pairs");
  for (size_t i = 0; i < count; i++) {
    const sl_bytes *k = (const sl_bytes *)((const char *)keys + i * stride);
    const sl_bytes *v = (const sl_bytes *)((const char *)values + i * stride);
    uint32_t kp = sl__guest_lower_bytes(inst, k->ptr, k->len, "key");
    uint32_t vp = sl__guest_lower_bytes(inst, v->ptr, v->len, "value");
    /* Re-derive the host pointer: the allocations above may have grown memory. */
    uint8_t *rec = inst->memory->data + array + i * 16;
    sl__write_u32(rec, kp);
    sl__write_u32(rec + 4, (uint32_t)k->len);
    sl__write_u32(rec + 8, vp);
    sl__write_u32(rec + 12, (uint32_t)v->len);
  }
  return array;
}
