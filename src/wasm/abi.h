/*
 * abi.h - the canonical ABI lowering and lifting of the processor world (contracts.md §2).
 *
 * Every function here runs inside a call guard and may trap (longjmp out) with
 * SL_FAULT_BAD_RESULT or SL_FAULT_OUT_OF_MEMORY. Guest memory is touched only through
 * the bounds-checked helpers in abi.c, and never remembered across a guest call: memory
 * may grow (and a host pointer into it go stale) whenever guest code runs.
 */
#ifndef SL_WASM_ABI_H
#define SL_WASM_ABI_H

#include "sluice/engine.h"
#include "wasm/instance.h"

/* Caps on what one call may return; beyond them the result is a bad-result fault. */
#define SL_ABI_MAX_EVENTS 1000000u
#define SL_ABI_MAX_OUTPUT_BYTES ((uint64_t)256 << 20)

/* Lowers an event and calls process. On an ok result, appends the events to `out`; on an
 * err result, copies the guest's message into `error` (NUL-terminated) and returns false.
 * Calls cabi_post_process either way. */
bool sl__abi_process(sl_instance *inst, const sl_event *in, sl_event_list *out, char *error,
                     size_t error_cap);

/* Lowers the config pairs and calls init (when exported). Returns false with the guest's
 * message in `error` when init returns err. */
bool sl__abi_init(sl_instance *inst, const sl_kv *config, size_t count, char *error,
                  size_t error_cap);

#endif
