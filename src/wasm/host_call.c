/*
 * host_call.c - helpers shared by the capability imports (see host_call.h).
 */
#include "wasm/host_call.h"

_Static_assert(offsetof(sl_instance, wasi) == 0,
               "WASI imports receive the instance as their sl_wasi (instance.h)");

const uint8_t *sl__host_arg_string(sl_instance *inst, uint32_t ptr, uint32_t len,
                                   const char *what) {
  const uint8_t *s = sl__host_arg_bytes(inst, ptr, len, what);
  if (!sl__valid_utf8(s, len))
    sl__guest_trap(SL_FAULT_BAD_IMPORT_CALL, "%s is not valid UTF-8", what);
  return s;
}

