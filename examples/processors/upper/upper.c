/*
 * upper.c - uppercases the payload (ASCII letters only; other bytes pass as they are).
 * The output keeps the input's metadata.
 *
 *     sluice invoke upper.wasm --payload hello      ->  HELLO
 */
#include "sluice.h"

static int upper(const sluice_event *in, sluice_out *out) {
  /* Write straight into the output payload: one pass, no intermediate copy. */
  uint8_t *payload = sluice_emit_alloc(out, in->payload.len);
  if (payload == NULL) return -1;
  for (size_t i = 0; i < in->payload.len; i++) {
    uint8_t c = in->payload.ptr[i];
    payload[i] = (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
  }
  return 0;
}

SLUICE_PROCESSOR(upper)
