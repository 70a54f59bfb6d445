/*
 * module_info.h - what a WebAssembly binary imports and exports, read without compiling it.
 *
 * The engine checks a module against the processor contract (required exports and their
 * signatures, imports the host provides) before spending time on wasm2c and the C
 * compiler, so a wrong module is refused at once with the offending name. Full validation
 * of the code is wasm2c's job.
 */
#ifndef SL_WASM_MODULE_INFO_H
#define SL_WASM_MODULE_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

enum { SL_EXTERN_FUNC = 0, SL_EXTERN_TABLE = 1, SL_EXTERN_MEMORY = 2, SL_EXTERN_GLOBAL = 3 };

/* A function signature as text: parameter letters, ':', result letters, with
 * i = i32, I = i64, f = f32, F = f64, v = v128, r = a reference. "iiii:i" is process. */
#define SL_SIG_MAX 48

typedef struct sl_wasm_import {
  char *module;
  char *name;
  uint8_t kind;
  char sig[SL_SIG_MAX]; /* functions only */
} sl_wasm_import;

typedef struct sl_wasm_export {
  char *name;
  uint8_t kind;
  uint32_t index;       /* in the function/table/memory/global index space */
  char sig[SL_SIG_MAX]; /* functions only */
} sl_wasm_export;

typedef struct sl_module_info {
  sl_wasm_import *imports;
  size_t import_count;
  sl_wasm_export *exports;
  size_t export_count;
  size_t function_count; /* defined (not imported) functions */
} sl_module_info;

/* Parses the sections that matter. SL_BAD_MODULE with a message naming the byte offset
 * when the binary is malformed. On success the caller frees with sl__module_info_free. */
sl_status sl__module_info_parse(const uint8_t *wasm, size_t len, sl_module_info *info,
                                sl_error *err);
void sl__module_info_free(sl_module_info *info);

/* The export called `name`, or NULL. */
const sl_wasm_export *sl__module_info_export(const sl_module_info *info, const char *name);

#endif
