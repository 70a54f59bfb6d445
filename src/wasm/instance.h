/*
 * instance.h - one live instance of a guest module.
 *
 * Memory layout: one 64-byte-aligned block holding the control block the inserted checks
 * read, then wasm2c's instance struct (see guest_prelude.h).
 */
#ifndef SL_WASM_INSTANCE_H
#define SL_WASM_INSTANCE_H

#include "wasm-rt.h"
#include "wasm/guest_prelude.h"
#include "wasm/runtime.h"
#include "wasm/wasi.h"

typedef struct sl_instance {
  const sl_guest_api *api;
  void *block; /* owns ctl and guest */
  sl_guest_ctl *ctl;
  void *guest; /* the wasm2c instance struct */
  wasm_rt_memory_t *memory;
  sl_rt_thread *thread; /* the thread running the current call */
  sl_wasi wasi;
  uint64_t calls;
} sl_instance;

#endif
