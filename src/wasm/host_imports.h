/*
 * host_imports.h - every function Sluice provides to processors besides WASI preview 1:
 * the capability interfaces of the processor world (wit/processor.wit).
 *
 * One table drives three things: the load check (an import not in the table, or with
 * another core signature, is refused with its name), the shim's trampolines (codegen.c
 * defines each import wasm2c expects as a call to `host_symbol`), and the grant check
 * (an import whose capability the node was not granted is refused by the pipeline).
 */
#ifndef SL_WASM_HOST_IMPORTS_H
#define SL_WASM_HOST_IMPORTS_H

#include <stddef.h>

typedef enum sl_capability {
  SL_CAP_LOGGING,
  SL_CAP_CONFIG,
  SL_CAP_KEYVALUE,
  SL_CAP_HTTP,
  SL_CAP_COUNT
} sl_capability;

typedef struct sl_host_import {
  const char *module;      /* the core import module: "wasi:keyvalue/store@0.2.0-draft2" */
  const char *name;        /* the core import name: "[method]bucket.get" */
  const char *sig;         /* core signature, module_info.h form: "iiii:" */
  const char *host_symbol; /* the host function the trampoline calls */
  /* The same function: referencing it keeps it in the executable (guests find it by
   * name, so nothing else would pull its object file out of the library). */
  const void *host_fn;
  sl_capability capability;
  /* The function's component-level type in component.c's rendering, for checking a
   * component's imports; NULL where component.c has not described it. */
  const char *component_type;
} sl_host_import;

/* The entry for (module, name), or NULL when Sluice does not provide it. */
const sl_host_import *sl__host_import_find(const char *module, const char *name);

/* The whole table; `*count` entries. */
const sl_host_import *sl__host_imports(size_t *count);

/* "logging", "config", "keyvalue", "http": the key of the grant in the pipeline file. */
const char *sl__capability_name(sl_capability capability);

/* The interface a capability's imports come from, for messages. */
const char *sl__capability_interface(sl_capability capability);

#endif
