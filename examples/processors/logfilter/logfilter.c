/*
 * logfilter.c - drops debug lines from NDJSON logs and upper-cases each line's "msg".
 * The transform itself lives in logfilter_transform.h, shared with the native benchmark
 * baseline.
 *
 *     sluice invoke logfilter.wasm --payload '{"level":"info","msg":"disk full"}'
 *         -> {"level":"info","msg":"DISK FULL"}
 *     sluice invoke logfilter.wasm --payload '{"level":"debug","msg":"x"}'   -> (no event)
 */
#include "logfilter_transform.h"
#include "sluice.h"

static int logfilter(const sluice_event *in, sluice_out *out) {
  if (!logfilter_keep((const char *)in->payload.ptr, in->payload.len)) return 0; /* dropped */
  uint8_t *copy = sluice_emit_alloc(out, in->payload.len);
  if (!copy) return -1;
  memcpy(copy, in->payload.ptr, in->payload.len);
  logfilter_rewrite((char *)copy, in->payload.len);
  return 0;
}

SLUICE_PROCESSOR(logfilter)
