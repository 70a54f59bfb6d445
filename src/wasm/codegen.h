/*
 * codegen.h - turns wasm2c's output into a guest shared object's source.
 *
 * Two steps: insert the interruption and stack checks into the generated C (wasm2c has
 * neither), then write the shim that includes it and exports one `sl_guest_api` table,
 * so the host never depends on wasm2c's symbol names or instance struct layout.
 */
#ifndef SL_WASM_CODEGEN_H
#define SL_WASM_CODEGEN_H

#include <stdbool.h>

#include "sluice/status.h"
#include "wasm/module_info.h"

/* True for wasm2c's declaration or definition of a module function:
 * `static <type> w2c_<name>(Z_guest_instance_t* ...` (a definition ends with ") {"). */
bool sl__codegen_is_function_line(const char *line);

/* Copies `generated_c` to `instrumented_c`, adding SL_ENTRY_CHECK() after every function
 * prologue and SL_LOOP_CHECK() at every loop header. Fails (SL_COMPILE) if the input does
 * not have the shape this wasm2c version produces, rather than emitting unchecked code. */
sl_status sl__codegen_instrument(const char *generated_c, const char *instrumented_c,
                                 sl_error *err);

/* Writes the shim translation unit that #includes `instrumented_name` (relative to the
 * shim's folder). `info` says which optional exports and which imports exist. */
sl_status sl__codegen_shim(const char *shim_path, const char *instrumented_name,
                           const sl_module_info *info, bool checks, sl_error *err);

/* Writes the translation unit for one more part (see split.h): the prelude, then
 * #include of `part_name`. */
sl_status sl__codegen_part_shim(const char *shim_path, const char *part_name, bool checks,
                                sl_error *err);

#endif
