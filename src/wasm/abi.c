/*
 * abi.c - canonical ABI lowering (host -> guest) and lifting (guest -> host).
 *
 * Layouts (little-endian, wasm32): string and list<T> are (i32 ptr, i32 len);
 * tuple<string,string> is 16 bytes; event is 16 bytes (payload list, metadata list);
 * result<list<event>, string> and result<_, string> are 12 bytes with a u8 discriminant
 * at 0 and the case's (ptr, len) at 4. docs/reference/processor-abi.md has the details.
 */
#include "wasm/abi.h"

#include "wasm/guest_memory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- bounds-checked guest memory access (guest_memory.h) --------------------------- */

#define bad_result(inst, ...) ((void)(inst), sl__guest_trap(SL_FAULT_BAD_RESULT, __VA_ARGS__))

typedef sl_span_label span_label;
static const span_label NO_EVENT = {NULL, -1};

static inline const uint8_t *guest_span_at(sl_instance *inst, uint32_t ptr, uint64_t len,
                                           uint32_t align, const char *what, span_label label) {
  return sl__guest_span_as(inst, SL_FAULT_BAD_RESULT, ptr, len, align, what, label);
}

static inline const uint8_t *guest_span(sl_instance *inst, uint32_t ptr, uint64_t len,
                                        uint32_t align, const char *what) {
  return guest_span_at(inst, ptr, len, align, what, NO_EVENT);
}

/* ---- lowering ---------------------------------------------------------------------- */

/* ---- lifting ----------------------------------------------------------------------- */

typedef struct lift_budget {
  uint64_t bytes;
} lift_budget;

static void charge(sl_instance *inst, lift_budget *budget, uint64_t bytes) {
  budget->bytes += bytes;
  if (budget->bytes > SL_ABI_MAX_OUTPUT_BYTES)
    bad_result(inst, "the result holds more than %llu MiB of data",
               (unsigned long long)(SL_ABI_MAX_OUTPUT_BYTES >> 20));
}

static sl_bytes lift_string(sl_instance *inst, sl_event_list *out, lift_budget *budget,
                            uint32_t ptr, uint32_t len, const char *what, uint32_t index) {
  span_label label = {NULL, (long)index};
  const uint8_t *s = guest_span_at(inst, ptr, len, 1, what, label);
  if (!sl__valid_utf8(s, len)) bad_result(inst, "event %u %s is not valid UTF-8", index, what);
  charge(inst, budget, len);
  sl_bytes copy;
  if (sl_event_list_copy(out, s, len, &copy) != SL_OK) abort(); /* host out of memory */
  return copy;
}

static void lift_events(sl_instance *inst, uint32_t list, uint32_t count, sl_event_list *out) {
  if (count > SL_ABI_MAX_EVENTS)
    bad_result(inst, "the result has %u events; at most %u are allowed per call", count,
               SL_ABI_MAX_EVENTS);
  guest_span(inst, list, (uint64_t)count * 16, 4, "event list");
  lift_budget budget = {(uint64_t)count * 16};
  for (uint32_t i = 0; i < count; i++) {
    span_label label = {NULL, (long)i};
    const uint8_t *rec = inst->memory->data + list + (uint64_t)i * 16; /* checked above */
    uint32_t pp = sl__read_u32(rec), pl = sl__read_u32(rec + 4);
    uint32_t mp = sl__read_u32(rec + 8), mc = sl__read_u32(rec + 12);
    const uint8_t *payload = guest_span_at(inst, pp, pl, 1, "payload", label);
    guest_span_at(inst, mp, (uint64_t)mc * 16, 4, "metadata list", label);
    charge(inst, &budget, pl + (uint64_t)mc * 16);

    uint8_t *payload_copy;
    sl_meta *meta;
    if (sl_event_list_push(out, pl, mc, &payload_copy, &meta) != SL_OK) abort();
    if (pl) memcpy(payload_copy, payload, pl);
    for (uint32_t m = 0; m < mc; m++) {
      const uint8_t *pair = inst->memory->data + mp + (uint64_t)m * 16;
      meta[m].key = lift_string(inst, out, &budget, sl__read_u32(pair), sl__read_u32(pair + 4),
                                "metadata key", i);
      meta[m].value = lift_string(inst, out, &budget, sl__read_u32(pair + 8),
                                  sl__read_u32(pair + 12), "metadata value", i);
    }
  }
}

static void lift_error(sl_instance *inst, uint32_t ptr, uint32_t len, char *error, size_t cap) {
  const uint8_t *s = guest_span(inst, ptr, len, 1, "error string");
  size_t n = len < cap - 1 ? len : cap - 1;
  memcpy(error, s, n);
  error[n] = '\0';
  /* Keep what is printable; an error message is for people and logs. */
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)error[i] < 0x20 && error[i] != '\t') error[i] = ' ';
}

/* Reads a 12-byte result area; returns the discriminant (0 or 1), traps otherwise. */
static uint8_t read_result(sl_instance *inst, uint32_t ptr, uint32_t *a, uint32_t *b) {
  const uint8_t *r = guest_span(inst, ptr, 12, 4, "result area");
  uint8_t disc = r[0];
  if (disc > 1) bad_result(inst, "result discriminant is %u; expected 0 (ok) or 1 (err)", disc);
  *a = sl__read_u32(r + 4);
  *b = sl__read_u32(r + 8);
  return disc;
}

bool sl__abi_process(sl_instance *inst, const sl_event *in, sl_event_list *out, char *error,
                     size_t error_cap) {
  const sl_guest_api *api = inst->api;
  uint32_t payload = sl__guest_lower_bytes(inst, in->payload.ptr, in->payload.len, "payload");
  static const sl_meta no_meta;
  const sl_meta *pairs = in->meta_count ? in->meta : &no_meta;
  uint32_t meta =
      sl__guest_lower_pairs(inst, &pairs[0].key, &pairs[0].value, sizeof(sl_meta), in->meta_count);
  uint32_t result = GUEST_CALL(inst, api->process(inst->guest, payload, (uint32_t)in->payload.len,
                                                  meta, (uint32_t)in->meta_count));
  uint32_t a, b;
  bool ok = read_result(inst, result, &a, &b) == 0;
  if (ok)
    lift_events(inst, a, b, out);
  else
    lift_error(inst, a, b, error, error_cap);
  if (api->post_process) GUEST_CALL_VOID(inst, api->post_process(inst->guest, result));
  return ok;
}

bool sl__abi_init(sl_instance *inst, const sl_kv *config, size_t count, char *error,
                  size_t error_cap) {
  const sl_guest_api *api = inst->api;
  if (!api->init) return true;
  sl_bytes pairs[count ? count * 2 : 1];
  for (size_t i = 0; i < count; i++) {
    pairs[2 * i] = sl_bytes_from_cstr(config[i].key);
    pairs[2 * i + 1] = sl_bytes_from_cstr(config[i].value);
  }
  uint32_t list = sl__guest_lower_pairs(inst, &pairs[0], &pairs[1], 2 * sizeof(sl_bytes), count);
  uint32_t result = GUEST_CALL(inst, api->init(inst->guest, list, (uint32_t)count));
  uint32_t a, b;
  bool ok = read_result(inst, result, &a, &b) == 0;
  if (!ok) lift_error(inst, a, b, error, error_cap);
  if (api->post_init) GUEST_CALL_VOID(inst, api->post_init(inst->guest, result));
  return ok;
}
