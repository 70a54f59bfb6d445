/*
 * engine_internal.h - the engine and module structs, shared by module.c, pool.c and abi.c.
 */
#ifndef SL_WASM_ENGINE_INTERNAL_H
#define SL_WASM_ENGINE_INTERNAL_H

#include <limits.h>
#include <stdatomic.h>

#include "sluice/engine.h"
#include "wasm/cache.h"
#include "wasm/guest_prelude.h"
#include "wasm/host_imports.h"

struct sl_engine {
  atomic_int refs; /* the owner's, plus one per loaded module */
  char home[PATH_MAX];
  sl_cache cache;
  char cc[256];
  char wasm2c[256];
  char cflags[256];
  bool checks;
  char toolchain_id[2048]; /* part of every cache key */
  sl_log_fn log;
  void *log_user;
};

struct sl_module {
  atomic_int refs;
  sl_engine *engine;
  void *dl;                /* dlopen handle of the verified artifact */
  int so_fd;               /* the memfd `dl` was loaded from; open while `dl` is */
  const sl_guest_api *api; /* the shim's table inside `dl` */
  char name[256];          /* for messages: the file name the module came from */
  char hash[65];
  /* Per capability (host_imports.h), the first import that needs it ("module name"), or
   * "" when the module does not import that capability. */
  char capability_import[SL_CAP_COUNT][256];
};

void sl__engine_release(sl_engine *engine);

/* Logs an engine notice through the engine's log function. */
void sl__engine_notice(sl_engine *engine, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
