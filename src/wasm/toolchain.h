/*
 * toolchain.h - runs wasm2c and the C compiler, and names the toolchain for the cache key.
 */
#ifndef SL_WASM_TOOLCHAIN_H
#define SL_WASM_TOOLCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/status.h"

/* Runs argv[0] (searched in PATH) with stdout and stderr captured into `log_path`.
 * Returns SL_OK when it exits with status 0; otherwise SL_IO (could not run) or
 * SL_DECLINED (ran and failed), with the first lines of its output in `err`. */
sl_status sl__run_tool(char *const argv[], const char *log_path, sl_error *err);

/* Runs `count` (at most 16) tools at once, each with its own log, and waits for all.
 * Returns the first failure, as sl__run_tool would report it. */
sl_status sl__run_tools(char **const argvs[], char *const log_paths[], int count, sl_error *err);

/* Appends to `out` (size `cap`) a description of `program` that changes whenever the
 * program does: its resolved path, size, modification time and inode. Cheap (stat only),
 * so it can run on every load without spawning anything. */
void sl__tool_identity(const char *program, char *out, size_t cap);


#endif
