/*
 * instance.h - one live instance of a guest module.
 *
 * Memory layout: one 64-byte-aligned block holding the control block the inserted checks
 * read, then wasm2c's instance struct (see guest_prelude.h).
 *
 * The instance is also the context every host import receives: wasm2c passes one pointer
 * per import module, and the shim passes the instance for all of them (codegen.c). WASI
 * functions take it as an sl_wasi, which is why `wasi` must stay the first member.
 */
#ifndef SL_WASM_INSTANCE_H
#define SL_WASM_INSTANCE_H

#include "wasm-rt.h"
#include "wasm/guest_prelude.h"
#include "wasm/runtime.h"
#include "wasm/wasi.h"

struct sl_node_caps;
struct sl_kv_bucket;

/* What the capability imports keep per instance. */
typedef struct sl_host_state {
  const struct sl_node_caps *caps; /* NULL: nothing granted but logging and config */
  const sl_kv *config;             /* the node's config (wasi:config/store), the pool's */
  size_t config_count;
  /* Open bucket handles: handle h is buckets[h - 1]; NULL slots are free. */
  struct sl_kv_bucket **buckets;
  uint32_t bucket_slots;
  /* A host result waiting to be lowered into the guest. Lowering calls cabi_realloc, which
   * may trap and jump past the host function's end, so the result is parked here and
   * freed by the next import call or with the instance, never leaked. */
  void *pending;
  void (*pending_free)(void *pending);
} sl_host_state;

typedef struct sl_instance {
  sl_wasi wasi; /* first: see above */
  const sl_guest_api *api;
  void *block; /* owns ctl and guest */
  sl_guest_ctl *ctl;
  void *guest; /* the wasm2c instance struct */
  wasm_rt_memory_t *memory;
  sl_rt_thread *thread; /* the thread running the current call */
  sl_host_state host;
  uint64_t calls;
} sl_instance;

#endif
